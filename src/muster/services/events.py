"""The change events every use case records in its own transaction (the outbox).

Each function here decides which event a change is and what it carries, then appends it through
the unit of work, so the event commits or rolls back with the change. Events carry ids, names
and the attributes that changed, never a password or a token.

Implied changes are not repeated: `user.deleted` ends all of that user's memberships and
`group.deleted` all of that group's, without one event per membership.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from muster.db import statements as sql
from muster.db.unit_of_work import UnitOfWork
from muster.scim.resources import identity_email

USER, GROUP, TENANT, SIGN_IN = "User", "Group", "Tenant", "SignIn"
USER_CREATED = "user.created"
USER_UPDATED = "user.updated"
USER_DEACTIVATED = "user.deactivated"
USER_REACTIVATED = "user.reactivated"
USER_DELETED = "user.deleted"
GROUP_CREATED = "group.created"
GROUP_RENAMED = "group.renamed"
GROUP_UPDATED = "group.updated"
GROUP_DELETED = "group.deleted"
MEMBER_ADDED = "group.member_added"
MEMBER_REMOVED = "group.member_removed"
SIGN_IN_REFUSED = "sign_in.refused"
SCIM_TOKEN_ISSUED = "scim_token.issued"
SCIM_TOKEN_REVOKED = "scim_token.revoked"
EVENTS_KEY_ISSUED = "events_key.issued"
EVENTS_KEY_REVOKED = "events_key.revoked"
SCIM_ENABLED = "scim.enabled"
SCIM_DISABLED = "scim.disabled"
EVENT_TYPES = (
    USER_CREATED,
    USER_UPDATED,
    USER_DEACTIVATED,
    USER_REACTIVATED,
    USER_DELETED,
    GROUP_CREATED,
    GROUP_RENAMED,
    GROUP_UPDATED,
    GROUP_DELETED,
    MEMBER_ADDED,
    MEMBER_REMOVED,
    SIGN_IN_REFUSED,
    SCIM_TOKEN_ISSUED,
    SCIM_TOKEN_REVOKED,
    EVENTS_KEY_ISSUED,
    EVENTS_KEY_REVOKED,
    SCIM_ENABLED,
    SCIM_DISABLED,
)
# Event ids are derived from (tenant, number): stable, unique, and never stored twice.
_EVENT_IDS = uuid.UUID("5f0c2b7e-3a51-4d6e-9b1f-6c2d8e4a7f10")
# Never in an event: secrets, and what the server computes rather than the IdP sends.
_NOT_ATTRIBUTES = frozenset({"password", "meta", "id", "groups", "schemas"})


def _tenant(uow: UnitOfWork) -> str:
    assert uow.tenant_id is not None
    return uow.tenant_id


def _user_summary(document: Mapping[str, Any], active: bool) -> dict[str, Any]:
    return {
        "userName": document.get("userName"),
        "email": identity_email(document) or None,
        "externalId": document.get("externalId"),
        "active": active,
    }


def user_created(
    uow: UnitOfWork, user_id: str, document: Mapping[str, Any], active: bool, at: datetime
) -> None:
    """A new user; `changed` holds every attribute it was created with."""
    data = _user_summary(document, active)
    data["changed"] = {k: v for k, v in document.items() if k not in _NOT_ATTRIBUTES}
    uow.events.append(USER_CREATED, at, USER, user_id, data)


def user_changed(
    uow: UnitOfWork,
    user_id: str,
    before: Mapping[str, Any],
    was_active: bool,
    after: Mapping[str, Any],
    is_active: bool,
    at: datetime,
) -> None:
    """A user written again: deactivated, reactivated or updated; nothing when nothing changed."""
    changed = {
        key: after.get(key)
        for key in before.keys() | after.keys()
        if key not in _NOT_ATTRIBUTES and before.get(key) != after.get(key)
    }
    if was_active and not is_active:
        type_ = USER_DEACTIVATED
    elif is_active and not was_active:
        type_ = USER_REACTIVATED
    elif changed:
        type_ = USER_UPDATED
    else:
        return  # Okta's PUT of an unchanged profile is no change
    changed["active"] = is_active
    data = _user_summary(after, is_active)
    data["changed"] = changed
    uow.events.append(type_, at, USER, user_id, data)


def user_deleted(uow: UnitOfWork, user_id: str, document: Mapping[str, Any], at: datetime) -> None:
    """A user removed for good, with all their memberships."""
    uow.events.append(USER_DELETED, at, USER, user_id, _user_summary(document, False))


def _group_summary(document: Mapping[str, Any]) -> dict[str, Any]:
    return {"displayName": document.get("displayName"), "externalId": document.get("externalId")}


def group_created(
    uow: UnitOfWork, group_id: str, document: Mapping[str, Any], at: datetime
) -> None:
    """A new group (its first members follow as group.member_added events)."""
    uow.events.append(GROUP_CREATED, at, GROUP, group_id, _group_summary(document))


def group_changed(
    uow: UnitOfWork,
    group_id: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    at: datetime,
) -> None:
    """A group renamed (group.renamed) or given another externalId (group.updated)."""
    data = _group_summary(after)
    if before.get("displayName") != after.get("displayName"):
        data["previousDisplayName"] = before.get("displayName")
        uow.events.append(GROUP_RENAMED, at, GROUP, group_id, data)
    elif before.get("externalId") != after.get("externalId"):
        uow.events.append(GROUP_UPDATED, at, GROUP, group_id, data)


def group_deleted(
    uow: UnitOfWork, group_id: str, document: Mapping[str, Any], at: datetime
) -> None:
    """A group removed, with all its memberships."""
    uow.events.append(GROUP_DELETED, at, GROUP, group_id, _group_summary(document))


def member_added(
    uow: UnitOfWork, group_id: str, user_id: str, user_name: str, source: str, at: datetime
) -> None:
    """One membership made by hand (the console or the CLI)."""
    data = {"userId": user_id, "userName": user_name, "source": source}
    uow.events.append(MEMBER_ADDED, at, GROUP, group_id, data, member_id=user_id)


def member_removed(
    uow: UnitOfWork, group_id: str, user_id: str, user_name: str, source: str, at: datetime
) -> None:
    """One membership ended by hand."""
    data = {"userId": user_id, "userName": user_name, "source": source}
    uow.events.append(MEMBER_REMOVED, at, GROUP, group_id, data, member_id=user_id)


def members_about_to_change(
    uow: UnitOfWork,
    group_id: str,
    action: str,
    *,
    source: str,
    at: datetime,
    skip_sources: tuple[str, ...] = (),
) -> int:
    """Record one event per membership that a staged change is about to add or remove.

    Runs just before the membership statement with the same rows in view (the group row is
    locked), so each membership the change makes or ends gets exactly one event, written by
    the database: `add`, `remove` (staged users), `remove_unstaged` (a replace) or `remove_all`.
    """
    params: dict[str, Any] = {"b_id": group_id, "b_source": source, "b_now": at}
    statement: Any
    if action == "add":
        statement = sql.ADDED_MEMBER_EVENTS
        params["b_skipped_sources"] = list(skip_sources)
    else:
        statement = {
            "remove": sql.REMOVED_STAGED_EVENTS,
            "remove_unstaged": sql.REMOVED_UNSTAGED_EVENTS,
            "remove_all": sql.REMOVED_ALL_EVENTS,
        }[action]
    return uow.events.append_selected(statement, params)


def sign_in_refused(
    uow: UnitOfWork,
    *,
    email: str | None,
    user_id: str | None,
    code: str,
    detail: str | None,
    flow: str,
    at: datetime,
) -> None:
    """A SAML sign-in refused (NOT_IN_ACCESS_GROUPS, USER_DEACTIVATED, a bad signature, ...)."""
    data = {"email": email, "userId": user_id, "code": code, "detail": detail, "flow": flow}
    resource = user_id or (email or "").lower() or "unknown"
    uow.events.append(SIGN_IN_REFUSED, at, SIGN_IN, resource, data)


def tenant_event(uow: UnitOfWork, type_: str, at: datetime, **data: Any) -> None:
    """An account-level change: a SCIM token or events key issued or revoked, SCIM on or off."""
    tenant_id = _tenant(uow)
    uow.events.append(type_, at, TENANT, tenant_id, data or None)


def event_id(tenant_id: str, seq: int) -> str:
    """The event's stable id (a UUIDv5 of its tenant and number)."""
    return str(uuid.uuid5(_EVENT_IDS, f"{tenant_id}/{seq}"))


def public_event(tenant_id: str, row: Any) -> dict[str, Any]:
    """An event row as the events API lists it and a webhook receives it (JSON-ready)."""
    return {
        "id": event_id(tenant_id, row.seq),
        "sequence": row.seq,
        "type": row.type,
        "time": row.occurred_at.isoformat(timespec="milliseconds") + "Z",
        "tenantId": tenant_id,
        "resource": {"type": row.resource_type, "id": row.resource_id},
        "data": row.data or {},
    }
