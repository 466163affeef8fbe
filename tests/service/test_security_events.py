"""services.security_events: every event type, as the use cases record it, as an RFC 9967 SET."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest

from muster.db.unit_of_work import UnitOfWork
from muster.scim.records import TenantInfo
from muster.services import api_tokens, events, groups, sign_in_log, users
from muster.services import security_events as sets
from tests.factories import build_user, patch_op
from tests.group_factories import build_group, given_users, members

pytestmark = pytest.mark.service

UowFactory = Callable[..., UnitOfWork]
ISSUER = "https://muster.example.com/scim/v2"
AUDIENCE = "https://hooks.example.com/scim-events"
SECRET = "whsec_" + "s" * 43
P = "urn:ietf:params:scim:event:prov:"


def _patch_user(uow: UnitOfWork, user_id: str, *operations: dict[str, Any]) -> None:
    users.patch_user(uow, user_id, patch_op(*operations), if_match=None)


def _every_event(uow_factory: UowFactory, tenant: TenantInfo) -> list[dict[str, Any]]:
    """Make one change of every kind through the use cases; return the public events."""
    uow = uow_factory(tenant.tenant_id)
    body = build_user(externalId="ext-ann")
    ann = users.create_user(uow, body).user
    _patch_user(uow, ann.user_id, {"op": "replace", "path": "title", "value": "CTO"})
    _patch_user(
        uow,
        ann.user_id,
        {"op": "replace", "value": {"active": False, "title": "Former CTO"}},
    )
    _patch_user(uow, ann.user_id, {"op": "replace", "path": "active", "value": True})
    (bob,) = given_users(uow, 1)
    group = groups.create_group(
        uow, build_group(displayName="Engineering", externalId="g-1", members=members(bob.user_id))
    ).group
    rename = {"op": "replace", "path": "displayName", "value": "Platform"}
    groups.patch_group(uow, group.group_id, patch_op(rename), if_match=None)
    external = {"op": "replace", "path": "externalId", "value": "g-2"}
    groups.patch_group(uow, group.group_id, patch_op(external), if_match=None)
    leave = {"op": "remove", "path": f'members[value eq "{bob.user_id}"]'}
    groups.patch_group(uow, group.group_id, patch_op(leave), if_match=None)
    groups.delete_group(uow, group.group_id)
    users.delete_user(uow, ann.user_id)
    now = datetime.now(UTC).replace(tzinfo=None)
    sign_in_log.record_attempt(
        uow, at=now, email="c@example.com", code="NOT_IN_ACCESS_GROUPS", detail=None, flow="sp"
    )
    api_tokens.issue_scim_token(uow_factory(), tenant.slug)
    api_tokens.issue_scim_token(uow_factory(), tenant.slug)  # revokes the first
    api_tokens.turn_scim_off(uow_factory(), tenant.slug)
    api_tokens.issue_events_key(uow_factory(), tenant.slug)
    api_tokens.revoke_events_key(uow_factory(), tenant.slug)
    with uow.reading():
        rows = list(uow.events.after(0, 1000))
    return [events.public_event(tenant.tenant_id, row) for row in rows]


def _claims(event: dict[str, Any]) -> dict[str, Any]:
    return sets.claims(event, issuer=ISSUER, audience=AUDIENCE, issued_at=1_800_000_000)


def test_every_event_type_maps_to_its_rfc9967_event_or_a_muster_uri(
    uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    found = _every_event(uow_factory, tenant)
    assert {e["type"] for e in found} == set(events.EVENT_TYPES)  # none left untested
    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in found:
        by_type.setdefault(event["type"], []).append(_claims(event))

    def first(type_: str) -> dict[str, Any]:
        return by_type[type_][0]  # the first (bob's user.created is the second)

    created = first("user.created")
    assert list(created["events"]) == [P + "create:notice"]
    attributes = created["events"][P + "create:notice"]["attributes"]
    assert {"userName", "name", "emails", "externalId", "active"} <= set(attributes)
    assert "password" not in attributes and attributes == sorted(attributes)
    assert first("user.updated")["events"] == {P + "patch:notice": {"attributes": ["title"]}}
    # A deactivation that also changed the title: both events, in one SET about one user.
    assert first("user.deactivated")["events"] == {
        P + "deactivate": {},
        P + "patch:notice": {"attributes": ["title"]},
    }
    assert first("user.reactivated")["events"] == {P + "activate": {}}
    assert first("user.deleted")["events"] == {P + "delete": {}}
    ann_types = ("user.updated", "user.deactivated", "user.reactivated", "user.deleted")
    assert {first(t)["sub_id"]["uri"] for t in ann_types} == {created["sub_id"]["uri"]}
    assert created["sub_id"] == {
        "format": "scim",
        "uri": "/Users/" + found[0]["resource"]["id"],
        "externalId": "ext-ann",
    }

    group_created = first("group.created")
    assert group_created["events"] == {
        P + "create:notice": {"attributes": ["displayName", "externalId"]}
    }
    assert group_created["sub_id"]["uri"].startswith("/Groups/")
    assert group_created["sub_id"]["externalId"] == "g-1"
    assert first("group.renamed")["events"] == {P + "patch:notice": {"attributes": ["displayName"]}}
    assert first("group.updated")["events"] == {P + "patch:notice": {"attributes": ["externalId"]}}
    assert first("group.deleted")["events"] == {P + "delete": {}}
    bob_id = next(e["data"]["userId"] for e in found if e["type"] == "group.member_added")
    patch_op_urn = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
    added = first("group.member_added")
    assert added["sub_id"] == {"format": "scim", "uri": group_created["sub_id"]["uri"]}
    assert added["events"][P + "patch:full"]["data"]["schemas"] == [patch_op_urn]
    (add,) = added["events"][P + "patch:full"]["data"]["Operations"]
    assert add["op"] == "add" and add["path"] == "members"
    assert add["value"] == [
        {"value": bob_id, "type": "User", "display": add["value"][0]["display"]}
    ]
    assert add["value"][0]["display"]  # the member's userName
    removed = first("group.member_removed")["events"][P + "patch:full"]["data"]
    assert removed["Operations"] == [{"op": "remove", "path": f'members[value eq "{bob_id}"]'}]

    refused = first("sign_in.refused")
    assert refused["sub_id"] == {"format": "opaque", "id": "c@example.com"}
    assert refused["events"]["urn:muster:event:sign_in:refused"]["code"] == "NOT_IN_ACCESS_GROUPS"
    account = [e for e in found if e["resource"]["type"] == "Tenant"]
    assert {e["type"] for e in account} == {
        "scim_token.issued",
        "scim_token.revoked",
        "scim.enabled",
        "scim.disabled",
        "events_key.issued",
        "events_key.revoked",
    }
    for event in account:
        claims = _claims(event)
        assert claims["sub_id"] == {"format": "opaque", "id": tenant.tenant_id}
        # Muster's own URI, the JSON event's data as the payload.
        assert claims["events"] == {sets.event_uri(event["type"]): event["data"]}
    assert sets.event_uri("events_key.revoked") == "urn:muster:event:events_key:revoked"


def test_the_claims_name_the_event_the_endpoint_and_the_issuer(
    uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    event = _every_event(uow_factory, tenant)[0]
    claims = _claims(event)
    assert claims["iss"] == ISSUER and claims["aud"] == AUDIENCE
    assert claims["jti"] == event["id"]  # a retry is the same SET to a receiver that dedups
    assert claims["iat"] == 1_800_000_000
    occurred = datetime.fromisoformat(event["time"])
    assert claims["toe"] == int(occurred.timestamp())
    assert "txn" not in claims and "exp" not in claims and "sub" not in claims


def test_a_token_verifies_with_the_endpoint_secret_and_nothing_else(
    uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    event = _every_event(uow_factory, tenant)[0]
    token = sets.token(event, issuer=ISSUER, audience=AUDIENCE, secret=SECRET, issued_at=1)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "secevent+jwt"}
    decoded = jwt.decode(
        token,
        SECRET,
        algorithms=["HS256"],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"verify_iat": False},
    )
    assert decoded == _claims(event) | {"iat": 1}
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, SECRET + "x", algorithms=["HS256"], audience=AUDIENCE)
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, SECRET, algorithms=["HS256"], audience="https://elsewhere.example")
    with pytest.raises(jwt.InvalidIssuerError):
        jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE, issuer="https://x")


def test_the_issuer_is_the_scim_base_url_of_the_public_url() -> None:
    assert sets.issuer("https://muster.example.com/") == "https://muster.example.com/scim/v2"
    assert sets.issuer(None) == "http://127.0.0.1:8000/scim/v2"
