"""A change event as a Security Event Token: RFC 9967 (SCIM profile) claims of RFC 8417 SETs.

Pure functions, no database and no clock: a public event (events.public_event) and the endpoint
it goes to become the SET's claims, and the claims a JWT signed with the endpoint's secret,
which the worker pushes as RFC 8935 prescribes (Content-Type: application/secevent+jwt).

Choices (docs/webhooks.md has the table):
- Attribute changes use the RFC's `notice` form: the names of the attributes, never their
  values; a receiver that needs the values reads the resource (its `sub_id.uri`) over SCIM.
- Memberships use `prov:patch:full` of the Group, the PatchOp that adds or removes the member:
  a notice would say only "members changed", not who.
- Muster does not record whether a change came by PUT or PATCH, so every update is a patch.
- Events with no RFC 9967 equivalent go under Muster's own URIs (urn:muster:event:...) with
  the event's JSON data as payload and an `opaque` subject (RFC 9493), not skipped: a SET
  endpoint filters types like any other.
- No `txn`: Muster does not record which events one SCIM request made.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jwt

from muster.config import DEFAULT_BASE_URL
from muster.services import events

MEDIA_TYPE = "application/secevent+jwt"
TYPE_HEADER = "secevent+jwt"  # RFC 8417 §2.3: the JWT's `typ`
ALGORITHM = "HS256"

_SCIM = "urn:ietf:params:scim:event:"
CREATE_NOTICE = _SCIM + "prov:create:notice"
PATCH_NOTICE = _SCIM + "prov:patch:notice"
PATCH_FULL = _SCIM + "prov:patch:full"
DELETE = _SCIM + "prov:delete"
ACTIVATE = _SCIM + "prov:activate"
DEACTIVATE = _SCIM + "prov:deactivate"
MUSTER_EVENT = "urn:muster:event:"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
# RFC 9967 §2.1: a SCIM subject's `uri` is the resource's path relative to the SCIM base URL.
_RESOURCE_PATHS = {events.USER: "/Users/", events.GROUP: "/Groups/"}


def issuer(public_url: str | None) -> str:
    """The SETs' `iss`: the SCIM base URL, so that `iss` + `sub_id.uri` is the resource's URL."""
    return (public_url or DEFAULT_BASE_URL).rstrip("/") + "/scim/v2"


def event_uri(type_: str) -> str:
    """The URI a Muster event type is sent under when it has no RFC 9967 equivalent."""
    return MUSTER_EVENT + type_.replace(".", ":")


def _notice(attributes: Any) -> dict[str, Any]:
    return {"attributes": sorted(attributes)}


def _membership(op: str, data: Mapping[str, Any]) -> dict[str, Any]:
    user_id = data.get("userId")
    if op == "add":
        member = {"value": user_id, "type": "User"}
        if data.get("userName"):
            member["display"] = data["userName"]
        operation = {"op": "add", "path": "members", "value": [member]}
    else:
        operation = {"op": "remove", "path": f'members[value eq "{user_id}"]'}
    return {"data": {"schemas": [PATCH_OP], "Operations": [operation]}}


def _user_events(type_: str, data: Mapping[str, Any]) -> dict[str, Any]:
    # `active` is always in `changed` (events.user_changed); it is its own event, not a patch.
    changed = set(data.get("changed") or {}) - {"active"}
    if type_ == events.USER_CREATED:
        return {CREATE_NOTICE: _notice(set(data.get("changed") or {}))}
    if type_ == events.USER_DELETED:
        return {DELETE: {}}
    if type_ == events.USER_UPDATED:
        return {PATCH_NOTICE: _notice(changed)}
    # Deactivated or reactivated, perhaps with other attributes in the same write: RFC 9967
    # lets one SET carry several events about one subject from one change.
    state = DEACTIVATE if type_ == events.USER_DEACTIVATED else ACTIVATE
    return {state: {}, PATCH_NOTICE: _notice(changed)} if changed else {state: {}}


def _group_events(type_: str, data: Mapping[str, Any]) -> dict[str, Any]:
    if type_ == events.GROUP_CREATED:
        named = {"displayName", *(["externalId"] if data.get("externalId") else [])}
        return {CREATE_NOTICE: _notice(named)}
    if type_ == events.GROUP_RENAMED:
        return {PATCH_NOTICE: _notice({"displayName"})}
    if type_ == events.GROUP_UPDATED:
        return {PATCH_NOTICE: _notice({"externalId"})}
    if type_ == events.GROUP_DELETED:
        return {DELETE: {}}
    return {PATCH_FULL: _membership("add" if type_ == events.MEMBER_ADDED else "remove", data)}


_USER_TYPES = frozenset(
    {
        events.USER_CREATED,
        events.USER_UPDATED,
        events.USER_DEACTIVATED,
        events.USER_REACTIVATED,
        events.USER_DELETED,
    }
)
_GROUP_TYPES = frozenset(
    {
        events.GROUP_CREATED,
        events.GROUP_RENAMED,
        events.GROUP_UPDATED,
        events.GROUP_DELETED,
        events.MEMBER_ADDED,
        events.MEMBER_REMOVED,
    }
)


def is_scim_event(type_: str) -> bool:
    """Tell whether a Muster event type has an RFC 9967 equivalent."""
    return type_ in _USER_TYPES or type_ in _GROUP_TYPES


def events_claim(event: Mapping[str, Any]) -> dict[str, Any]:
    """The SET's `events` claim: event URI -> payload, for one public event."""
    type_, data = event["type"], event.get("data") or {}
    if type_ in _USER_TYPES:
        return _user_events(type_, data)
    if type_ in _GROUP_TYPES:
        return _group_events(type_, data)
    return {event_uri(type_): dict(data)}


def subject(event: Mapping[str, Any]) -> dict[str, Any]:
    """The SET's `sub_id`: a `scim` subject for Users and Groups, an `opaque` one otherwise."""
    resource = event["resource"]
    path = _RESOURCE_PATHS.get(resource["type"])
    if path is None or not is_scim_event(event["type"]):
        return {"format": "opaque", "id": resource["id"]}
    sub_id = {"format": "scim", "uri": path + resource["id"]}
    external_id = (event.get("data") or {}).get("externalId")
    if external_id:
        sub_id["externalId"] = external_id
    return sub_id


def claims(
    event: Mapping[str, Any], *, issuer: str, audience: str, issued_at: int
) -> dict[str, Any]:
    """The SET's claims (RFC 8417 §2.2): `jti` is the event id, so retries share it."""
    occurred = datetime.fromisoformat(event["time"])
    return {
        "iss": issuer,
        "aud": audience,
        "iat": issued_at,
        "jti": event["id"],
        "toe": int(occurred.timestamp()),
        "sub_id": subject(event),
        "events": events_claim(event),
    }


def encode(set_claims: Mapping[str, Any], secret: str) -> str:
    """The SET's compact serialization, signed HS256 with the endpoint's secret."""
    return jwt.encode(dict(set_claims), secret, algorithm=ALGORITHM, headers={"typ": TYPE_HEADER})


def token(
    event: Mapping[str, Any], *, issuer: str, audience: str, secret: str, issued_at: int
) -> str:
    """One public event as a signed SET for the endpoint at `audience`."""
    return encode(claims(event, issuer=issuer, audience=audience, issued_at=issued_at), secret)
