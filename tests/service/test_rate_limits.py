"""The per-token limit: counted per process, shared through the database, per fixed window."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, text

from muster.db.unit_of_work import UnitOfWork
from muster.scim.records import TenantInfo
from muster.services.rate_limits import RateLimiter

NOW = 1_800_000_010.0  # 10 s into a 60 s window (1_800_000_000 is a multiple of 60)


def _admitted(limiter: RateLimiter, tenant: TenantInfo, count: int, now: float = NOW) -> int:
    return sum(limiter.admit(tenant.tenant_id, "tok1", now) is None for _ in range(count))


def test_one_process_refuses_the_request_past_the_limit_until_the_window_ends(
    tenant: TenantInfo,
) -> None:
    limiter = RateLimiter(limit=5, window_seconds=60)

    assert _admitted(limiter, tenant, 5) == 5
    assert limiter.admit(tenant.tenant_id, "tok1", NOW) == 50  # seconds left in the window
    assert limiter.admit(tenant.tenant_id, "tok1", NOW + 49.5) == 1
    assert limiter.admit(tenant.tenant_id, "tok1", NOW + 50) is None  # the next window


def test_tokens_are_limited_separately(tenant: TenantInfo) -> None:
    limiter = RateLimiter(limit=1, window_seconds=60)

    assert limiter.admit(tenant.tenant_id, "tok1", NOW) is None
    assert limiter.admit(tenant.tenant_id, "tok2", NOW) is None
    assert limiter.admit(tenant.tenant_id, "tok1", NOW) is not None


def test_two_processes_under_the_limit_each_are_over_it_together(
    uow_factory: Callable[[str | None], UnitOfWork], tenant: TenantInfo
) -> None:
    first, second = RateLimiter(10, 60), RateLimiter(10, 60)
    assert _admitted(first, tenant, 6) == 6
    assert _admitted(second, tenant, 6) == 6

    first.sync(uow_factory(None), NOW)
    second.sync(uow_factory(None), NOW)

    # The second learnt the total (12); the first learns it at its next sync.
    assert second.admit(tenant.tenant_id, "tok1", NOW) is not None
    first.sync(uow_factory(None), NOW)  # nothing to add: it still knows only its own 6
    assert first.admit(tenant.tenant_id, "tok1", NOW) is None
    first.sync(uow_factory(None), NOW)
    assert first.admit(tenant.tenant_id, "tok1", NOW) is not None


def test_sync_adds_each_process_delta_to_one_shared_row(
    uow_factory: Callable[[str | None], UnitOfWork], tenant: TenantInfo, engine: Engine
) -> None:
    first, second = RateLimiter(100, 60), RateLimiter(100, 60)
    _admitted(first, tenant, 3)
    first.sync(uow_factory(None), NOW)
    _admitted(second, tenant, 4)
    second.sync(uow_factory(None), NOW)
    _admitted(first, tenant, 2)
    first.sync(uow_factory(None), NOW)

    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT tenant_id, token_id, window_start, count FROM rate_limits")
        ).all()
    assert [tuple(row) for row in rows] == [(tenant.tenant_id, "tok1", 1_800_000_000, 9)]


def test_old_windows_are_pruned(
    uow_factory: Callable[[str | None], UnitOfWork], tenant: TenantInfo, engine: Engine
) -> None:
    limiter = RateLimiter(100, 60)
    for minute in range(4):
        _admitted(limiter, tenant, 1, now=NOW + 60 * minute)
        limiter.sync(uow_factory(None), NOW + 60 * minute)

    with engine.connect() as conn:
        starts = conn.execute(text("SELECT window_start FROM rate_limits")).scalars().all()
    # The current window and the one before it; older ones are gone.
    assert sorted(starts) == [1_800_000_120, 1_800_000_180]


def test_a_sync_of_many_tokens_adds_every_delta_and_learns_every_total(
    uow_factory: Callable[[str | None], UnitOfWork], tenant: TenantInfo, engine: Engine
) -> None:
    # More tokens than the one-row-at-a-time path takes: the multi-row upsert runs.
    first, second = RateLimiter(3, 60), RateLimiter(3, 60)
    tokens = [f"tok{i:02d}" for i in range(12)]
    for token in tokens:
        assert first.admit(tenant.tenant_id, token, NOW) is None
        assert second.admit(tenant.tenant_id, token, NOW) is None
        assert second.admit(tenant.tenant_id, token, NOW) is None
    first.sync(uow_factory(None), NOW)
    second.sync(uow_factory(None), NOW)

    with engine.connect() as conn:
        counts = dict(conn.execute(text("SELECT token_id, count FROM rate_limits")).all())
    assert counts == dict.fromkeys(tokens, 3)
    assert all(second.admit(tenant.tenant_id, token, NOW) is not None for token in tokens)
