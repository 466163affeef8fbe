"""services.provisioning_log: what each SCIM request did, redacted, newest first, pruned."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from muster.db.unit_of_work import UnitOfWork
from muster.scim.records import TenantInfo
from muster.services import provisioning_log
from muster.services.clock import utcnow
from muster.services.provisioning_log import LogEntry
from tests.factories import given_tenant

pytestmark = pytest.mark.service

UowFactory = Callable[..., UnitOfWork]
TOKEN = "mst_0123456789abcdef0123456789abcdef_Zx9-secretPart_Qq"


def _entry(**overrides: object) -> LogEntry:
    values: dict[str, object] = {
        "at": utcnow(),
        "method": "POST",
        "path": "/scim/v2/Users",
        "resource_type": "User",
        "resource_id": None,
        "status": 201,
        "scim_type": None,
        "detail": None,
        "duration_ms": 1.25,
        "user_agent": "Okta SCIM Client 1.0.0",
        "request_id": "r1",
    }
    values.update(overrides)
    return LogEntry(**values)  # type: ignore[arg-type]


def _record(
    uow: UnitOfWork, entry: LogEntry, *, max_entries: int = 1000, retention_days: int = 30
) -> None:
    provisioning_log.record_request(
        uow, entry, retention_days=retention_days, max_entries=max_entries
    )


def _record_in_order(uow: UnitOfWork, count: int, **overrides: object) -> None:
    for n in range(count):
        _record(uow, _entry(request_id=f"r{n}", **overrides))
        time.sleep(0.002)  # ids are time-ordered to the millisecond


def test_record_request_keeps_what_the_admin_needs(uow: UnitOfWork) -> None:
    _record(
        uow,
        _entry(
            status=409,
            scim_type="uniqueness",
            resource_id="u1",
            detail="userName is already in use in this tenant",
            client_quirks="entra_string_boolean",
        ),
    )

    [entry] = provisioning_log.list_entries(uow)

    assert (entry.method, entry.path, entry.status) == ("POST", "/scim/v2/Users", 409)
    assert (entry.scim_type, entry.detail) == (
        "uniqueness",
        "userName is already in use in this tenant",
    )
    assert entry.user_agent == "Okta SCIM Client 1.0.0"
    assert entry.resource_id == "u1"
    assert entry.client_quirks == "entra_string_boolean"


def test_list_entries_gives_the_newest_first(uow: UnitOfWork) -> None:
    _record_in_order(uow, 3)

    assert [e.request_id for e in provisioning_log.list_entries(uow)] == ["r2", "r1", "r0"]


def test_list_entries_can_show_failures_only(uow: UnitOfWork) -> None:
    for status in (201, 400, 200, 401, 500):
        _record(uow, _entry(status=status))

    failed = provisioning_log.list_entries(uow, failed_only=True)

    assert sorted(e.status for e in failed) == [400, 401, 500]


def test_list_entries_honours_the_limit(uow: UnitOfWork) -> None:
    _record_in_order(uow, 4)

    assert [e.request_id for e in provisioning_log.list_entries(uow, limit=2)] == ["r3", "r2"]


@pytest.mark.parametrize(
    "detail",
    [
        "password=hunter2-Secret",
        "password: hunter2-Secret",
        '{"password": "hunter2-Secret"}',
        "Password hunter2-Secret",
    ],
)
def test_record_request_redacts_passwords_in_the_detail(uow: UnitOfWork, detail: str) -> None:
    _record(uow, _entry(status=400, detail=detail))

    [entry] = provisioning_log.list_entries(uow)

    assert entry.detail is not None
    assert "hunter2" not in entry.detail
    assert "[redacted]" in entry.detail


def test_record_request_redacts_tokens_in_the_detail_and_path(uow: UnitOfWork) -> None:
    _record(
        uow,
        _entry(
            status=401,
            path=f"/scim/v2/Users?access_token={TOKEN}",
            detail=f"the bearer token {TOKEN} is not valid",
        ),
    )

    [entry] = provisioning_log.list_entries(uow)

    for text in (entry.path, entry.detail or ""):
        assert "secretPart" not in text
        assert "[redacted]" in text


def test_record_request_truncates_a_huge_detail(uow: UnitOfWork) -> None:
    _record(uow, _entry(status=400, detail="x" * 50_000))

    [entry] = provisioning_log.list_entries(uow)

    assert entry.detail is not None and len(entry.detail) <= 2000


def test_prune_keeps_only_the_newest_entries(uow: UnitOfWork) -> None:
    _record_in_order(uow, 5)

    removed = provisioning_log.prune(uow, retention_days=30, max_entries=3)

    assert removed == 2
    assert [e.request_id for e in provisioning_log.list_entries(uow)] == ["r4", "r3", "r2"]


def test_prune_drops_entries_older_than_the_retention(uow: UnitOfWork) -> None:
    _record(uow, _entry(request_id="old", at=utcnow() - timedelta(days=31)))
    _record(uow, _entry(request_id="new"))

    removed = provisioning_log.prune(uow, retention_days=30, max_entries=100)

    assert removed == 1
    assert [e.request_id for e in provisioning_log.list_entries(uow)] == ["new"]


def test_record_request_prunes_by_count_as_it_goes(
    uow: UnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provisioning_log, "PRUNE_INTERVAL", timedelta(0))

    for n in range(5):
        _record(uow, _entry(request_id=f"r{n}"), max_entries=2)
        time.sleep(0.002)

    assert [e.request_id for e in provisioning_log.list_entries(uow)] == ["r4", "r3"]


def test_prune_touches_only_its_own_tenant(uow: UnitOfWork, uow_factory: UowFactory) -> None:
    other = given_tenant(uow_factory())
    other_uow = uow_factory(other.tenant_id)
    _record_in_order(other_uow, 3)
    _record_in_order(uow, 3)

    provisioning_log.prune(uow, retention_days=30, max_entries=1)

    assert len(provisioning_log.list_entries(uow)) == 1
    assert len(provisioning_log.list_entries(other_uow)) == 3


def test_list_entries_never_shows_other_tenants_entries(
    uow: UnitOfWork, uow_factory: UowFactory
) -> None:
    other = given_tenant(uow_factory())
    _record(uow_factory(other.tenant_id), _entry(request_id="theirs"))
    _record(uow, _entry(request_id="mine"))

    assert [e.request_id for e in provisioning_log.list_entries(uow)] == ["mine"]


def test_record_request_for_a_tenant_that_does_not_exist_is_dropped(
    uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    ghost = "01234567-89ab-7def-8123-456789abcdef"

    provisioning_log.record_request(
        uow_factory(ghost),
        _entry(status=401),
        retention_days=30,
        max_entries=100,
        tenant_may_not_exist=True,
    )

    assert provisioning_log.list_entries(uow_factory(ghost)) == []
    assert provisioning_log.list_entries(uow_factory(tenant.tenant_id)) == []


def test_record_request_prunes_at_most_once_per_interval(
    uow: UnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provisioning_log, "PRUNE_INTERVAL", timedelta(hours=1))
    monkeypatch.setattr(provisioning_log, "_last_pruned", {})

    for n in range(4):
        _record(uow, _entry(request_id=f"r{n}"), max_entries=2)
        time.sleep(0.002)

    # The first write starts the interval; none of the later ones is due to prune.
    assert len(provisioning_log.list_entries(uow)) == 4


def test_a_nul_or_lone_surrogate_from_a_client_is_stored_as_an_escape(uow: UnitOfWork) -> None:
    # PostgreSQL refuses NUL in text and nothing encodes a lone surrogate: either one used to
    # fail the whole batch of the tenant's entries, again at every retry (the fuzz load).
    _record(uow, _entry(status=404, path="/scim/v2/Users/a\x00b", detail="bad \ud800 value"))

    [entry] = provisioning_log.list_entries(uow)
    assert entry.path == "/scim/v2/Users/a\\x00b"
    assert entry.detail == "bad \\ud800 value"
