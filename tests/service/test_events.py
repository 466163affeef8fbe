"""services.events: every change writes its event in its own transaction, numbered in order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from muster.db.unit_of_work import UnitOfWork
from muster.errors import ScimError
from muster.scim.records import TenantInfo
from muster.services import api_tokens, events, groups, sign_in_log, users
from tests.factories import build_user, given_tenant, given_user, patch_op
from tests.group_factories import build_group, given_group, given_local_user, given_users, members

pytestmark = pytest.mark.service

UowFactory = Callable[..., UnitOfWork]


def _events(uow: UnitOfWork, after: int = 0) -> list[Any]:
    with uow.reading():
        return list(uow.events.after(after, 1_000_000))


def _types(uow: UnitOfWork, after: int = 0) -> list[str]:
    return [e.type for e in _events(uow, after)]


def _last(uow: UnitOfWork) -> int:
    with uow.reading():
        return uow.events.position()[0]


def _patch_user(uow: UnitOfWork, user_id: str, *operations: dict[str, Any]) -> None:
    users.patch_user(uow, user_id, patch_op(*operations), if_match=None)


def test_a_user_lifecycle_writes_one_event_per_change_numbered_from_one(uow: UnitOfWork) -> None:
    body = build_user()
    user = users.create_user(uow, body).user
    users.replace_user(uow, user.user_id, body, if_match=None)  # Okta's unchanged PUT
    _patch_user(uow, user.user_id, {"op": "replace", "value": {"active": False}})
    _patch_user(uow, user.user_id, {"op": "replace", "path": "active", "value": True})
    _patch_user(uow, user.user_id, {"op": "replace", "path": "title", "value": "CTO"})
    users.delete_user(uow, user.user_id)

    found = _events(uow)
    assert [e.type for e in found] == [
        "user.created",
        "user.deactivated",
        "user.reactivated",
        "user.updated",
        "user.deleted",
    ]
    assert [e.seq for e in found] == [1, 2, 3, 4, 5]
    assert {e.resource_id for e in found} == {user.user_id}
    created = found[0].data
    assert created["userName"] == body["userName"]
    assert created["email"] == body["userName"]
    assert created["changed"]["name"] == body["name"]
    assert "password" not in created["changed"]
    assert found[1].data["changed"] == {"active": False}
    assert found[3].data["changed"] == {"title": "CTO", "active": True}


def test_a_post_that_revives_a_deactivated_user_is_a_reactivation(uow: UnitOfWork) -> None:
    body = build_user()
    user = users.create_user(uow, body).user
    _patch_user(uow, user.user_id, {"op": "replace", "value": {"active": False}})
    users.create_user(uow, {**body, "displayName": "Ann Again"})
    last = _events(uow)[-1]
    assert (last.type, last.resource_id) == ("user.reactivated", user.user_id)
    assert last.data["changed"]["displayName"] == "Ann Again"


def test_a_refused_request_writes_no_event(uow_factory: UowFactory, tenant: TenantInfo) -> None:
    small = given_tenant(uow_factory(), seats=1)
    uow = uow_factory(small.tenant_id)
    given_user(uow)
    with pytest.raises(ScimError):
        given_user(uow)  # no seat left
    with pytest.raises(ScimError):
        users.create_user(uow, build_user(name={"givenName": "A@b"}))
    assert _types(uow) == ["user.created"]
    assert _last(uow) == 1


def test_a_group_patch_rolled_back_by_its_last_operation_leaves_no_event(
    uow: UnitOfWork,
) -> None:
    group = given_group(uow)
    (member,) = given_users(uow, 1)
    before = _last(uow)
    with pytest.raises(ScimError):
        groups.patch_group(
            uow,
            group.group_id,
            patch_op(
                {"op": "add", "path": "members", "value": members(member.user_id)},
                {"op": "add", "path": "members", "value": members("no-such-user")},
            ),
            if_match=None,
        )
    assert _last(uow) == before
    assert _events(uow, before) == []


def test_membership_events_come_from_rows_one_per_membership_changed(uow: UnitOfWork) -> None:
    a, b, c = given_users(uow, 3)
    local = given_local_user(uow)
    start = _last(uow)
    group = groups.create_group(
        uow, build_group(members=members(a.user_id, b.user_id, local.user_id))
    ).group
    found = _events(uow, start)
    assert [e.type for e in found] == ["group.created", "group.member_added", "group.member_added"]
    assert [e.seq for e in found] == [start + 1, start + 2, start + 3]
    added = {e.data["userId"]: e.data for e in found[1:]}
    assert set(added) == {a.user_id, b.user_id}  # never the user made by hand
    assert added[a.user_id]["userName"] == a.document["userName"]
    assert added[a.user_id]["source"] == "idp"

    mark = _last(uow)
    groups.replace_group(
        uow,
        group.group_id,
        build_group(
            displayName=group.document["displayName"], members=members(b.user_id, c.user_id)
        ),
        if_match=None,
    )
    changed = [(e.type, e.data["userId"]) for e in _events(uow, mark)]
    assert changed == [("group.member_removed", a.user_id), ("group.member_added", c.user_id)]

    mark = _last(uow)
    groups.patch_group(
        uow,
        group.group_id,
        patch_op(
            {"op": "remove", "path": f'members[value eq "{b.user_id}"]'},
            {"op": "replace", "path": "displayName", "value": "Renamed"},
        ),
        if_match=None,
    )
    renamed = _events(uow, mark)
    assert [(e.type, (e.data or {}).get("userId")) for e in renamed] == [
        ("group.member_removed", b.user_id),
        ("group.renamed", None),
    ]
    assert renamed[1].data["previousDisplayName"] == group.document["displayName"]

    mark = _last(uow)
    groups.patch_group(
        uow, group.group_id, patch_op({"op": "remove", "path": "members"}), if_match=None
    )
    groups.delete_group(uow, group.group_id)
    assert [(e.type, (e.data or {}).get("userId")) for e in _events(uow, mark)] == [
        ("group.member_removed", c.user_id),
        ("group.deleted", None),
    ]


def test_a_large_replace_numbers_every_membership_event_without_gaps(uow: UnitOfWork) -> None:
    people = given_users(uow, 20)
    group = given_group(uow, members=members(*(p.user_id for p in people[:12])))
    mark = _last(uow)
    groups.replace_group(
        uow,
        group.group_id,
        build_group(
            displayName=group.document["displayName"],
            members=members(*(p.user_id for p in people[8:])),
        ),
        if_match=None,
    )
    found = _events(uow, mark)
    assert [e.seq for e in found] == list(range(mark + 1, mark + 17))
    assert [e.type for e in found] == ["group.member_removed"] * 8 + ["group.member_added"] * 8
    assert _last(uow) == mark + 16


def test_manual_memberships_are_events_too(uow: UnitOfWork) -> None:
    group = given_group(uow)
    person = given_user(uow)
    mark = _last(uow)
    email = person.document["userName"]
    groups.add_manual_member(uow, group.document["displayName"], email)
    groups.remove_manual_member(uow, group.document["displayName"], email)
    found = _events(uow, mark)
    assert [(e.type, e.data["userId"], e.data["source"]) for e in found] == [
        ("group.member_added", person.user_id, "manual"),
        ("group.member_removed", person.user_id, "manual"),
    ]


def test_tokens_and_scim_switches_are_account_events(
    uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    first = api_tokens.issue_scim_token(uow_factory(), tenant.slug)
    second = api_tokens.issue_scim_token(uow_factory(), tenant.slug)
    api_tokens.turn_scim_off(uow_factory(), tenant.slug)
    api_tokens.turn_scim_off(uow_factory(), tenant.slug)  # already off: no change
    api_tokens.turn_scim_on(uow_factory(), tenant.slug)
    found = _events(uow_factory(tenant.tenant_id))
    assert [(e.type, (e.data or {}).get("prefix")) for e in found] == [
        ("scim_token.issued", first.prefix),
        ("scim.enabled", None),
        ("scim_token.revoked", first.prefix),
        ("scim_token.issued", second.prefix),
        ("scim.disabled", None),
        ("scim.enabled", None),
    ]
    assert {e.resource_type for e in found} == {"Tenant"}
    assert all(second.secret not in str(e.data) for e in found)


def test_a_refused_sign_in_is_an_event_an_admitted_one_is_not(uow: UnitOfWork) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    sign_in_log.record_attempt(
        uow, at=now, email="a@example.com", code=None, detail=None, flow="idp"
    )
    sign_in_log.record_attempt(
        uow, at=now, email="B@example.com", code="NOT_IN_ACCESS_GROUPS", detail=None, flow="sp"
    )
    (event,) = _events(uow)
    assert (event.type, event.resource_type, event.resource_id) == (
        "sign_in.refused",
        "SignIn",
        "b@example.com",
    )
    assert event.data["code"] == "NOT_IN_ACCESS_GROUPS"


def test_tenants_number_their_events_separately(uow_factory: UowFactory, uow: UnitOfWork) -> None:
    other = uow_factory(given_tenant(uow_factory()).tenant_id)
    given_user(uow)
    given_user(other)
    given_user(other)
    assert [e.seq for e in _events(uow)] == [1]
    assert [e.seq for e in _events(other)] == [1, 2]


def test_an_event_reads_the_same_every_time_with_a_stable_id(uow: UnitOfWork) -> None:
    user = given_user(uow)
    (row,) = _events(uow)
    assert uow.tenant_id is not None
    first = events.public_event(uow.tenant_id, row)
    assert first == events.public_event(uow.tenant_id, _events(uow)[0])
    assert first["sequence"] == 1 and first["type"] == "user.created"
    assert first["resource"] == {"type": "User", "id": user.user_id}
    assert first["time"].endswith("Z")
    assert first["id"] != events.event_id(uow.tenant_id, 2)
