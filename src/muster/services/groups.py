"""create_group, get_group, list_groups, replace_group, patch_group, delete_group, members.

Membership changes are set-based statements on membership rows: a group's member list never
passes through Python objects, so a change costs the same in any size of group.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from muster.db.filter_sql import group_filter, group_order
from muster.db.ids import new_id
from muster.db.unit_of_work import UnitOfWork
from muster.errors import ScimError
from muster.scim import patching, versioning
from muster.scim.cursors import CursorPage
from muster.scim.groups import (
    GroupChange,
    GroupInput,
    MemberStep,
    could_be_id,
    parse_group,
    plan_group_patch,
)
from muster.scim.listing import ListQuery
from muster.scim.records import StoredGroup
from muster.services import events, paging
from muster.services.clock import utcnow
from muster.services.pages import PAGE_SIZE, Page, offset_of

IDP, MANUAL = "idp", "manual"
LOCAL_USERS = ("local",)
MEMBER_BATCH = 1000
NESTED_GROUP = (
    "members: {ids} is a group; nested (linked) groups are not supported. Assign each group "
    "to the application directly"
)


@dataclass(slots=True)
class GroupOutcome:
    """A written group and the client quirks absorbed on the way."""

    group: StoredGroup
    quirks: list[str]


def _check_members(uow: UnitOfWork, user_ids: Sequence[str]) -> None:
    """Stage the ids and refuse the request if any is not a user of this tenant."""
    impossible = [u for u in user_ids if not could_be_id(u)]
    if impossible:
        shown = impossible[0][:40] + "…"
        raise ScimError.invalid_value(f"members: no user with id {shown!r} in this tenant")
    uow.groups.stage(user_ids)
    unknown = uow.groups.unknown_staged()
    if not unknown:
        return
    nested = uow.groups.groups_among(unknown)
    if nested:
        raise ScimError.invalid_value(NESTED_GROUP.format(ids=", ".join(map(repr, nested))))
    raise ScimError.invalid_value(
        f"members: no user with id {', '.join(map(repr, unknown))} in this tenant"
    )


def _apply_step(uow: UnitOfWork, group_id: str, step: MemberStep) -> None:
    # Each statement is preceded by the one that records an event per membership it changes.
    now = utcnow()
    if step.action == "remove_all":
        events.members_about_to_change(uow, group_id, "remove_all", source=IDP, at=now)
        uow.groups.remove_all(group_id, source=IDP)
        return
    if step.action == "remove":
        # Removing someone who is not a member is a no-op, as Okta and Entra expect.
        uow.groups.stage([u for u in step.user_ids if could_be_id(u)])
        events.members_about_to_change(uow, group_id, "remove", source=IDP, at=now)
        uow.groups.remove_staged(group_id, source=IDP)
        return
    _check_members(uow, step.user_ids)
    if step.action == "replace":
        # Only memberships the IdP made are replaced; an admin's manual ones stay.
        events.members_about_to_change(uow, group_id, "remove_unstaged", source=IDP, at=now)
        uow.groups.remove_unstaged(group_id, source=IDP)
    # Users made by hand are never added to a group by the IdP (the product rule).
    events.members_about_to_change(
        uow, group_id, "add", source=IDP, at=now, skip_sources=LOCAL_USERS
    )
    uow.groups.add_staged(group_id, source=IDP, now=now, skip_sources=LOCAL_USERS)


def _bump(
    uow: UnitOfWork, group: StoredGroup, document: dict[str, Any] | None = None
) -> StoredGroup:
    now = utcnow()
    document = document if document is not None else group.document
    values: dict[str, Any] = {
        "last_modified": now,
        "version": group.version + 1,
        "document": document,
    }
    name = document["displayName"]
    values["display_name"], values["display_name_key"] = name, name.lower()
    values["external_id"] = document.get("externalId")
    if not uow.groups.change(group.group_id, values, read_version=group.version):
        raise versioning.changed_since_read("Group", group.group_id)
    events.group_changed(uow, group.group_id, group.document, document, now)
    return StoredGroup(group.group_id, document, group.created, now, group.version + 1)


def _require_free_name(uow: UnitOfWork, name: str, group_id: str | None) -> None:
    holder = uow.groups.holder_of_name(name.lower())
    if holder is not None and holder != group_id:
        raise ScimError.uniqueness("displayName")


def create_group(uow: UnitOfWork, payload: Any) -> GroupOutcome:
    """Create a group, with its initial members if the body lists any."""
    incoming = parse_group(payload)
    with uow:
        _require_free_name(uow, incoming.display_name, None)
        now = utcnow()
        group_id = new_id()
        uow.groups.add(
            {
                "id": group_id,
                "display_name": incoming.display_name,
                "display_name_key": incoming.display_name.lower(),
                "external_id": incoming.external_id,
                "document": incoming.document,
                "created_at": now,
                "last_modified": now,
                "version": 1,
            }
        )
        events.group_created(uow, group_id, incoming.document, now)
        if incoming.members:
            _apply_step(uow, group_id, MemberStep("add", tuple(incoming.members)))
        uow.commit()
    return GroupOutcome(StoredGroup(group_id, incoming.document, now, now, 1), incoming.quirks)


def get_group(uow: UnitOfWork, group_id: str) -> StoredGroup:
    """Return one group's attributes (its members are read separately, in batches)."""
    with uow.reading():
        group = uow.groups.get(group_id)
    if group is None:
        raise ScimError.not_found("Group", group_id)
    return group


def iter_members(uow: UnitOfWork, group_id: str) -> Iterator[list[tuple[str, str]]]:
    """Yield a group's members as (user id, userName) batches from one read transaction."""
    with uow.reading():
        yield from uow.groups.member_batches(group_id, MEMBER_BATCH)


def list_groups(
    uow: UnitOfWork, query: ListQuery, *, with_members: bool
) -> tuple[int, list[StoredGroup], dict[str, list[tuple[str, str]]]]:
    """Return (total, one page, members by group id when asked for)."""
    where = group_filter(query.filter, _tenant_of(uow)) if query.filter is not None else None
    order = group_order(query.sort_by, query.sort_descending)
    with uow.reading():
        total, page = uow.groups.search(where, offset=query.offset, limit=query.count, order=order)
        members = (
            uow.groups.members_of_groups([g.group_id for g in page])
            if with_members and page
            else {}
        )
    return total, page, members


def list_groups_by_cursor(
    uow: UnitOfWork, query: ListQuery, *, with_members: bool
) -> tuple[CursorPage[StoredGroup], dict[str, list[tuple[str, str]]]]:
    """Return one page read by cursor (RFC 9865) and, when asked for, its groups' members."""
    where = group_filter(query.filter, _tenant_of(uow)) if query.filter is not None else None
    order = group_order(query.sort_by, query.sort_descending)
    with uow.reading():
        page: CursorPage[StoredGroup] = paging.seek_page(uow.groups, "Group", query, where, order)
        members = (
            uow.groups.members_of_groups([g.group_id for g in page.items])
            if with_members and page.items
            else {}
        )
    return page, members


def replace_group(
    uow: UnitOfWork, group_id: str, payload: Any, *, if_match: str | None
) -> GroupOutcome:
    """Replace a group's name, externalId and IdP-made members (RFC 7644 §3.5.1)."""
    incoming: GroupInput = parse_group(payload)
    with uow:
        group = uow.groups.get(group_id, for_update=True)
        if group is None:
            raise ScimError.not_found("Group", group_id)
        versioning.require_match(group.version, if_match)
        _require_free_name(uow, incoming.display_name, group_id)
        _apply_step(uow, group_id, MemberStep("replace", tuple(incoming.members or ())))
        updated = _bump(uow, group, incoming.document)
        uow.commit()
    return GroupOutcome(updated, incoming.quirks)


def patch_group(
    uow: UnitOfWork, group_id: str, payload: Any, *, if_match: str | None
) -> GroupOutcome:
    """Apply a PatchOp to a group: renames and membership steps, in order, all or nothing."""
    quirks: list[str] = []
    change: GroupChange = plan_group_patch(patching.parse_patch(payload, quirks), quirks)
    with uow:
        group = uow.groups.get(group_id, for_update=True)
        if group is None:
            raise ScimError.not_found("Group", group_id)
        versioning.require_match(group.version, if_match)
        for step in change.steps:
            _apply_step(uow, group_id, step)
        document = dict(group.document)
        if change.display_name is not None:
            _require_free_name(uow, change.display_name, group_id)
            document["displayName"] = change.display_name
        if change.external_id is not None:
            document["externalId"] = change.external_id
        elif change.clears_external_id:
            document.pop("externalId", None)
        updated = _bump(uow, group, document)
        uow.commit()
    return GroupOutcome(updated, quirks)


def delete_group(uow: UnitOfWork, group_id: str, *, if_match: str | None = None) -> None:
    """Delete a group; its membership rows go with it."""
    with uow:
        group = uow.groups.get(group_id, for_update=True)
        if group is None:
            raise ScimError.not_found("Group", group_id)
        versioning.require_match(group.version, if_match)
        if not uow.groups.remove(group_id, read_version=group.version):
            raise versioning.changed_since_read("Group", group_id)
        events.group_deleted(uow, group_id, group.document, utcnow())
        uow.commit()


def _group_by_name(uow: UnitOfWork, display_name: str) -> StoredGroup:
    group_id = uow.groups.holder_of_name(display_name.lower())
    group = uow.groups.get(group_id, for_update=True) if group_id else None
    if group is None:
        raise ScimError(404, f"no group named {display_name!r}")
    return group


def _user_name(uow: UnitOfWork, user_id: str) -> str:
    user = uow.users.get(user_id)
    assert user is not None  # found by email in this transaction
    return str(user.document.get("userName", ""))


def add_manual_member(uow: UnitOfWork, display_name: str, email: str) -> None:
    """Add a user to a group by hand; an IdP push will never remove this membership."""
    with uow:
        group = _group_by_name(uow, display_name)
        user_id = uow.users.id_by_email(email.lower())
        if user_id is None:
            raise ScimError(404, f"no user with email {email!r}")
        now = utcnow()
        if uow.groups.set_member(group.group_id, user_id, source=MANUAL, now=now):
            events.member_added(uow, group.group_id, user_id, _user_name(uow, user_id), MANUAL, now)
        _bump(uow, group)
        uow.commit()


def remove_manual_member(uow: UnitOfWork, display_name: str, email: str) -> None:
    """Take a user out of a group by hand, whoever added them."""
    with uow:
        group = _group_by_name(uow, display_name)
        user_id = uow.users.id_by_email(email.lower())
        source = uow.groups.remove_member(group.group_id, user_id) if user_id else None
        if user_id is None or source is None:
            raise ScimError(404, f"{email!r} is not a member of {display_name!r}")
        user_name = _user_name(uow, user_id)
        events.member_removed(uow, group.group_id, user_id, user_name, source, utcnow())
        _bump(uow, group)
        uow.commit()


# -- the console's views ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupSummary:
    """A group in the console's list: its member count is an SQL aggregate."""

    group_id: str
    display_name: str
    external_id: str | None
    member_count: int
    is_access_group: bool
    created: datetime
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class Member:
    """One membership: who, and whether the IdP or an admin (manual) added it."""

    user_id: str
    user_name: str
    is_active: bool
    user_source: str
    source: str
    added: datetime


@dataclass(frozen=True, slots=True)
class GroupDetail:
    """A group with one page of its members."""

    group: StoredGroup
    member_count: int
    is_access_group: bool
    members: Page[Member]


def groups_page(uow: UnitOfWork, *, text: str = "", page: int = 1) -> Page[GroupSummary]:
    """Groups by name with member counts, one page; fast for 100,000-member groups."""
    with uow.reading():
        total, rows = uow.console.groups_page(
            text=text.strip()[:255], offset=offset_of(page), limit=PAGE_SIZE
        )
    items = [
        GroupSummary(
            row.id,
            row.display_name,
            row.external_id,
            member_count,
            is_access_group,
            row.created_at,
            row.last_modified,
        )
        for row, member_count, is_access_group in rows
    ]
    return Page(items, total, max(page, 1))


def group_detail(uow: UnitOfWork, group_id: str, *, page: int = 1) -> GroupDetail:
    """Return a group of the tenant with one page of its members (never the whole list)."""
    with uow.reading():
        group = uow.groups.get(group_id)
        if group is None:
            raise ScimError.not_found("Group", group_id)
        count = uow.console.member_count(group_id)
        is_access_group = uow.console.is_access_group(group_id)
        rows = uow.console.members_page(group_id, offset=offset_of(page), limit=PAGE_SIZE)
    members = [
        Member(row.id, row.user_name, bool(row.active), row.user_source, row.source, row.added_at)
        for row in rows
    ]
    return GroupDetail(group, count, is_access_group, Page(members, count, max(page, 1)))


def group_choices(uow: UnitOfWork, limit: int = 500) -> list[str]:
    """The first groups' displayNames, by name, for a pick list."""
    with uow.reading():
        return uow.console.group_names(limit)


def _tenant_of(uow: UnitOfWork) -> str:
    assert uow.tenant_id is not None  # list use cases always run with a tenant's unit of work
    return uow.tenant_id
