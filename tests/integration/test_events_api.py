"""GET /api/v1/events over HTTP: the events key, cursors, limits, isolation, retention's 410."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from muster.db.unit_of_work import UnitOfWork
from muster.scim.records import TenantInfo
from muster.services import api_tokens, event_log, events
from muster.services.clock import utcnow
from tests.factories import OKTA_HEADERS, build_user, given_tenant, given_user

pytestmark = pytest.mark.integration

UowFactory = Callable[..., UnitOfWork]
EVENTS = "/api/v1/events"


@pytest.fixture
def events_key(uow_factory: UowFactory, tenant: TenantInfo) -> str:
    return api_tokens.issue_events_key(uow_factory(), tenant.slug).secret


def _get(client: TestClient, key: str | None, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.get(EVENTS, params=params, headers=headers)


def _error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == code
    return str(body["detail"])


def test_pages_resume_from_next_cursor(
    client: TestClient, events_key: str, uow: UnitOfWork, tenant: TenantInfo
) -> None:
    made = [given_user(uow) for _ in range(3)]

    first = _get(client, events_key, limit=2)
    second = _get(client, events_key, limit=2, after=first.json()["nextCursor"])
    third = _get(client, events_key, after=second.json()["nextCursor"])

    assert first.status_code == 200 and first.headers["content-type"] == "application/json"
    assert first.headers["cache-control"] == "no-store"
    page = first.json()
    # The key's own issue event comes first: events_key.issued, then the three users.
    assert [e["sequence"] for e in page["data"]] == [1, 2]
    assert (page["nextCursor"], page["hasMore"]) == ("2", True)
    assert page["data"][0]["type"] == "events_key.issued"
    assert page["data"][1]["resource"] == {"type": "User", "id": made[0].user_id}
    assert page["data"][1]["tenantId"] == tenant.tenant_id
    assert [e["sequence"] for e in second.json()["data"]] == [3, 4]
    assert second.json()["hasMore"] is False
    assert third.json() == {"data": [], "nextCursor": "4", "hasMore": False}


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Basic dXNlcjpwYXNz", "Bearer mev_nonsense", "Bearer mst_x_y"],
)
def test_no_or_bad_credentials_are_401_with_www_authenticate(
    client: TestClient, events_key: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get(EVENTS, headers=headers)

    detail = _error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    assert detail and events_key not in response.text


def test_a_revoked_or_replaced_key_and_a_scim_token_are_refused(
    client: TestClient, uow_factory: UowFactory, tenant: TenantInfo, events_key: str
) -> None:
    scim = api_tokens.issue_scim_token(uow_factory(), tenant.slug).secret
    replacement = api_tokens.issue_events_key(uow_factory(), tenant.slug).secret
    works = _get(client, replacement)
    api_tokens.revoke_events_key(uow_factory(), tenant.slug)

    assert works.status_code == 200
    for refused in (events_key, replacement, scim):
        _error(_get(client, refused), 401, "unauthorized")
    # ...and an events key is no SCIM token either.
    scim_answer = client.get(
        "/scim/v2/Users", headers={**OKTA_HEADERS, "Authorization": f"Bearer {replacement}"}
    )
    assert scim_answer.status_code == 401


def test_a_key_sees_only_its_own_tenants_events(
    client: TestClient, uow_factory: UowFactory, tenant: TenantInfo, events_key: str
) -> None:
    other = given_tenant(uow_factory())
    theirs = api_tokens.issue_events_key(uow_factory(), other.slug).secret
    for _ in range(3):
        given_user(uow_factory(other.tenant_id))
    given_user(uow_factory(tenant.tenant_id))

    ours = _get(client, events_key).json()["data"]
    their_page = _get(client, theirs).json()["data"]

    assert {e["tenantId"] for e in ours} == {tenant.tenant_id} and len(ours) == 2
    assert {e["tenantId"] for e in their_page} == {other.tenant_id} and len(their_page) == 4
    # Their cursor (4) is past our newest event: refused, never someone else's stream.
    assert "after" in _error(_get(client, events_key, after=4), 400, "invalid_cursor")


def test_reading_page_by_page_while_changes_arrive_sees_each_event_once(
    client: TestClient, events_key: str, scim_token: str
) -> None:
    scim = {**OKTA_HEADERS, "Authorization": f"Bearer {scim_token}"}
    seen: list[int] = []
    cursor: str | None = None
    for round_ in range(12):
        if round_ < 8:
            # Okta keeps provisioning between (and while) the consumer reads.
            created = client.post("/scim/v2/Users", json=build_user(), headers=scim)
            assert created.status_code == 201
            client.patch(
                f"/scim/v2/Users/{created.json()['id']}",
                json={
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "value": {"active": False}}],
                },
                headers=scim,
            )
        params = {"limit": 3} if cursor is None else {"limit": 3, "after": cursor}
        page = _get(client, events_key, **params).json()
        seen += [e["sequence"] for e in page["data"]]
        cursor = page["nextCursor"]

    # events_key.issued, scim_token.issued, scim.enabled, then 8 x (created, deactivated).
    assert seen == list(range(1, 3 + 16 + 1))
    assert cursor == str(3 + 16)


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "ten", "", "1e3"])
def test_a_limit_out_of_bounds_or_malformed_is_400(
    client: TestClient, events_key: str, limit: str
) -> None:
    detail = _error(_get(client, events_key, limit=limit), 400, "invalid_parameter")
    assert "limit" in detail


def test_the_limit_defaults_to_100_and_may_be_1000(
    client: TestClient, events_key: str, uow: UnitOfWork
) -> None:
    with uow:  # more events than seats: account-level ones, in one transaction
        for _ in range(104):
            events.tenant_event(uow, events.SCIM_ENABLED, utcnow())
        uow.commit()

    default = _get(client, events_key).json()
    largest = _get(client, events_key, limit=1000).json()
    one = _get(client, events_key, limit=1).json()

    assert (len(default["data"]), default["nextCursor"], default["hasMore"]) == (100, "100", True)
    assert (len(largest["data"]), largest["hasMore"]) == (105, False)
    assert (len(one["data"]), one["nextCursor"]) == (1, "1")


@pytest.mark.parametrize("after", ["abc", "-1", "1.5", "", " 1", "9" * 19, "0x10"])
def test_a_malformed_cursor_is_400_naming_after(
    client: TestClient, events_key: str, after: str
) -> None:
    detail = _error(_get(client, events_key, after=after), 400, "invalid_cursor")
    assert "after" in detail


def test_a_cursor_before_what_retention_removed_is_410_saying_where_to_restart(
    client: TestClient, events_key: str, uow: UnitOfWork, uow_factory: UowFactory
) -> None:
    for _ in range(3):
        given_user(uow)
    with uow.reading():
        assert uow.events.position() == (4, 0)
    assert (
        event_log.prune_events(uow_factory, now=utcnow() + timedelta(days=31), retention_days=30)
        == 4
    )
    given_user(uow)

    gone = _get(client, events_key, after=2)
    restart = _get(client, events_key, after=4).json()
    oldest = _get(client, events_key).json()

    detail = _error(gone, 410, "cursor_expired")
    assert "retention" in detail and "after=4" in detail
    assert [e["sequence"] for e in restart["data"]] == [5]
    assert oldest == restart


def test_the_keys_last_use_is_recorded(
    client: TestClient, events_key: str, uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    before = api_tokens.current_events_key(uow_factory(tenant.tenant_id))
    _get(client, events_key)
    after = api_tokens.current_events_key(uow_factory(tenant.tenant_id))

    assert before is not None and before.last_used is None
    assert after is not None and after.last_used is not None


def test_wait_returns_as_soon_as_an_event_commits(
    client: TestClient, events_key: str, uow: UnitOfWork
) -> None:
    writer = threading.Timer(0.3, lambda: given_user(uow))
    started = time.monotonic()
    writer.start()
    try:
        page = _get(client, events_key, after=1, wait=5).json()
    finally:
        writer.join()

    assert [e["type"] for e in page["data"]] == ["user.created"]
    assert time.monotonic() - started < 4


def test_wait_is_bounded(client: TestClient, events_key: str) -> None:
    assert "wait" in _error(_get(client, events_key, wait=31), 400, "invalid_parameter")
    started = time.monotonic()
    empty = _get(client, events_key, after=1, wait=1).json()
    assert empty == {"data": [], "nextCursor": "1", "hasMore": False}
    assert 0.9 <= time.monotonic() - started < 3
