"""services.event_log: pages of a tenant's events by cursor, and retention in bounded batches."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from muster.db.unit_of_work import UnitOfWork
from muster.errors import ScimError
from muster.scim.records import TenantInfo
from muster.services import event_log, events
from muster.services.clock import utcnow
from tests.factories import given_tenant, given_user

pytestmark = pytest.mark.service

UowFactory = Callable[..., UnitOfWork]
NOW = datetime(2026, 11, 29, 12, 0, 0)


def _given_events(uow: UnitOfWork, *times: datetime) -> None:
    """One account-level event per time, each in its own transaction, numbered in order."""
    for at in times:
        with uow:
            events.tenant_event(uow, events.SCIM_ENABLED, at)
            uow.commit()


def _position(uow: UnitOfWork) -> tuple[int, int]:
    with uow.reading():
        return uow.events.position()


def _sequences(page: event_log.EventPage) -> list[int]:
    return [event["sequence"] for event in page.events]


def _read_all(uow: UnitOfWork, after: int | None = None, limit: int = 3) -> list[int]:
    seen: list[int] = []
    while True:
        page = event_log.read_events(uow, after=after, limit=limit)
        seen += _sequences(page)
        after = page.next_cursor
        if not page.has_more:
            return seen


def test_pages_follow_the_cursor_oldest_first_in_public_form(uow: UnitOfWork) -> None:
    user = given_user(uow)
    _given_events(uow, NOW, NOW)

    first = event_log.read_events(uow, after=None, limit=2)
    second = event_log.read_events(uow, after=first.next_cursor, limit=2)

    assert (_sequences(first), first.next_cursor, first.has_more) == ([1, 2], 2, True)
    assert (_sequences(second), second.next_cursor, second.has_more) == ([3], 3, False)
    created = first.events[0]
    assert created["type"] == "user.created" and created["resource"]["id"] == user.user_id
    assert created["id"] == events.event_id(uow.tenant_id or "", 1)
    assert created["tenantId"] == uow.tenant_id and created["time"].endswith("Z")


def test_nothing_new_keeps_the_cursor_given(uow: UnitOfWork) -> None:
    empty = event_log.read_events(uow, after=None)
    _given_events(uow, NOW, NOW)
    caught_up = event_log.read_events(uow, after=2)

    assert (empty.events, empty.next_cursor, empty.has_more) == ([], 0, False)
    assert (caught_up.events, caught_up.next_cursor, caught_up.has_more) == ([], 2, False)


def test_a_page_holds_exactly_the_limit_and_has_more_tells_the_truth(uow: UnitOfWork) -> None:
    _given_events(uow, *[NOW] * 4)

    exact = event_log.read_events(uow, after=0, limit=4)
    one = event_log.read_events(uow, after=3, limit=1)

    assert (_sequences(exact), exact.has_more) == ([1, 2, 3, 4], False)
    assert (_sequences(one), one.has_more) == ([4], False)


@pytest.mark.parametrize("limit", [0, -1, event_log.MAX_LIMIT + 1])
def test_a_limit_out_of_bounds_is_refused(uow: UnitOfWork, limit: int) -> None:
    with pytest.raises(ScimError) as caught:
        event_log.read_events(uow, after=None, limit=limit)
    assert caught.value.status == 400 and "limit" in caught.value.detail


def test_a_cursor_past_the_newest_event_is_refused(uow: UnitOfWork) -> None:
    _given_events(uow, NOW)

    with pytest.raises(ScimError) as caught:
        event_log.read_events(uow, after=2)

    assert caught.value.status == 400 and "after=2" in caught.value.detail


def test_a_tenant_reads_only_its_own_events(uow_factory: UowFactory, tenant: TenantInfo) -> None:
    other = given_tenant(uow_factory())
    _given_events(uow_factory(other.tenant_id), NOW, NOW, NOW)
    _given_events(uow_factory(tenant.tenant_id), NOW)

    page = event_log.read_events(uow_factory(tenant.tenant_id), after=None)

    assert {e["tenantId"] for e in page.events} == {tenant.tenant_id}
    assert _sequences(page) == [1]


def test_retention_removes_old_events_in_batches_and_never_reuses_numbers(
    uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    uow = uow_factory(tenant.tenant_id)
    old, young = NOW - timedelta(days=31), NOW - timedelta(days=29)
    _given_events(uow, *[old] * 5, young, young)

    removed = event_log.prune_events(uow_factory, now=NOW, retention_days=30, batch_size=2)
    _given_events(uow, NOW)

    assert removed == 5
    assert _position(uow) == (8, 5)  # the counter went on; only pruned_through moved
    assert _read_all(uow) == [6, 7, 8]
    assert event_log.prune_events(uow_factory, now=NOW, retention_days=30) == 0


def test_retention_stops_at_the_first_event_young_enough_to_keep(
    uow: UnitOfWork, uow_factory: UowFactory
) -> None:
    # Times follow numbers only roughly: an old event numbered after a young one stays until
    # the young one goes, so everything below pruned_through is gone and nothing above is.
    old, young = NOW - timedelta(days=40), NOW - timedelta(days=1)
    _given_events(uow, old, young, old)

    event_log.prune_events(uow_factory, now=NOW, retention_days=30)

    assert _position(uow) == (3, 1)
    assert _read_all(uow) == [2, 3]


def test_a_cursor_before_what_retention_removed_is_gone_with_410(
    uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    uow = uow_factory(tenant.tenant_id)
    _given_events(uow, *[NOW - timedelta(days=60)] * 3, NOW)
    event_log.prune_events(uow_factory, now=NOW, retention_days=30)

    with pytest.raises(ScimError) as caught:
        event_log.read_events(uow, after=1)
    from_pruned = event_log.read_events(uow, after=3)
    from_default = event_log.read_events(uow, after=None)

    assert caught.value.status == 410
    assert "retention" in caught.value.detail and "after=3" in caught.value.detail
    assert _sequences(from_pruned) == _sequences(from_default) == [4]


def test_retention_visits_every_tenant(uow_factory: UowFactory, tenant: TenantInfo) -> None:
    other = given_tenant(uow_factory())
    for tenant_id in (tenant.tenant_id, other.tenant_id):
        _given_events(uow_factory(tenant_id), NOW - timedelta(days=31), NOW)

    assert event_log.prune_events(uow_factory, now=NOW, retention_days=30) == 2
    assert _position(uow_factory(other.tenant_id)) == (2, 1)
    assert _position(uow_factory(tenant.tenant_id)) == (2, 1)


def test_retention_by_the_real_clock_keeps_todays_events(
    uow: UnitOfWork, uow_factory: UowFactory
) -> None:
    given_user(uow)

    assert event_log.prune_events(uow_factory, now=utcnow(), retention_days=1) == 0
    assert (
        event_log.prune_events(uow_factory, now=utcnow() + timedelta(days=2), retention_days=1) == 1
    )


def test_retention_keeps_events_an_enabled_webhook_has_not_queued_yet(
    uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    from muster.services import webhook_delivery, webhooks

    uow = uow_factory(tenant.tenant_id)
    old = NOW - timedelta(days=31)
    _given_events(uow, old)  # 1: before the endpoint
    live = webhooks.create_endpoint(uow, "https://hooks.example.com/live").endpoint
    paused = webhooks.create_endpoint(uow, "https://hooks.example.com/paused").endpoint
    webhooks.set_endpoint_enabled(uow, paused.endpoint_id, False)
    _given_events(uow, old, old)  # 2, 3: the worker was down

    event_log.prune_events(uow_factory, now=NOW, retention_days=30)
    assert _position(uow)[1] == 1  # 2 and 3 wait for the live endpoint; the paused one waits not

    webhook_delivery.fan_out(uow_factory(None))
    event_log.prune_events(uow_factory, now=NOW, retention_days=30)
    assert _position(uow)[1] == 3
    queued = webhooks.deliveries_page(uow, live.endpoint_id).items
    assert sorted(d.event_seq for d in queued) == [2, 3]
