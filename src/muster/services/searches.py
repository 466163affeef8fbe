"""search_resources: POST /.search at the SCIM root, over Users and Groups together.

RFC 7644 §3.4.3 lets a client search "all resource types" at the root. Muster lists them in
one fixed order — every matching User (in creation order), then every matching Group (in
creation order) — so index and cursor pages both cut one well-defined sequence:
totalResults is the users' count plus the groups' count, startIndex counts through the users
first and on into the groups.

A filter is applied to each type it fits. One that names attributes of one type only
(`userName sw "a"`, `members.value eq "…"`) simply finds nothing of the other type; one that
fits neither is 400 invalidFilter. sortBy is refused (the two types share no sort order).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from muster.db.filter_sql import group_filter, group_order, user_filter, user_order
from muster.db.unit_of_work import UnitOfWork
from muster.errors import ScimError, ScimType
from muster.scim.cursors import Cursor, encode_cursor, read_cursor
from muster.scim.listing import ListQuery
from muster.scim.records import StoredGroup, StoredUser

ROOT = "root"
USER, GROUP = "User", "Group"


@dataclass(slots=True)
class RootPage:
    """One page of the root search: its users, then its groups."""

    total: int
    users: list[StoredUser] = field(default_factory=list)
    groups: list[StoredGroup] = field(default_factory=list)
    members: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    next_cursor: str | None = None


def _translate(translate: Callable[[Any], Any], node: Any) -> tuple[bool, Any, ScimError | None]:
    """(applies, where-clause, why not) for one resource type."""
    if node is None:
        return True, None, None
    try:
        return True, translate(node), None
    except ScimError as error:
        if error.scim_type != ScimType.INVALID_FILTER:
            raise
        return False, None, error


def _wheres(query: ListQuery) -> tuple[bool, Any, bool, Any]:
    users_apply, user_where, user_error = _translate(user_filter, query.filter)
    groups_apply, group_where, group_error = _translate(group_filter, query.filter)
    if not (users_apply or groups_apply):
        assert user_error is not None and group_error is not None
        raise ScimError.invalid_filter(
            f"the filter fits neither Users ({user_error.detail}) nor Groups ({group_error.detail})"
        )
    return users_apply, user_where, groups_apply, group_where


def search_resources(
    uow: UnitOfWork, query: ListQuery, *, with_groups: bool, with_members: bool
) -> RootPage:
    """Search Users and Groups together (RFC 7644 §3.4.3); by index or by cursor (RFC 9865)."""
    if query.sort_by is not None:
        raise ScimError.invalid_value(
            "sortBy is not supported on the root search; search /Users/.search or "
            "/Groups/.search to sort"
        )
    users_apply, user_where, groups_apply, group_where = _wheres(query)
    with uow.reading():
        if query.cursor is not None:
            page = _by_cursor(uow, query, users_apply, user_where, groups_apply, group_where)
        else:
            page = _by_index(uow, query, users_apply, user_where, groups_apply, group_where)
        if with_groups and page.users:
            found = uow.groups.groups_of_users([u.user_id for u in page.users])
            for user in page.users:
                user.groups = found[user.user_id]
        if with_members and page.groups:
            page.members = uow.groups.members_of_groups([g.group_id for g in page.groups])
    return page


def _by_index(
    uow: UnitOfWork,
    query: ListQuery,
    users_apply: bool,
    user_where: Any,
    groups_apply: bool,
    group_where: Any,
) -> RootPage:
    offset, count = query.offset, query.count
    user_total, users = 0, list[StoredUser]()
    if users_apply:
        user_total, users = uow.users.search(user_where, offset=offset, limit=count)
    group_total, groups = 0, list[StoredGroup]()
    if groups_apply:
        group_total, groups = uow.groups.search(
            group_where, offset=max(0, offset - user_total), limit=count - len(users)
        )
    return RootPage(user_total + group_total, users, groups)


def _by_cursor(
    uow: UnitOfWork,
    query: ListQuery,
    users_apply: bool,
    user_where: Any,
    groups_apply: bool,
    group_where: Any,
) -> RootPage:
    cursor = read_cursor(query.cursor, scope=ROOT, sort_by=None, descending=False)
    if cursor is not None and (cursor.backward or cursor.key not in (USER, GROUP)):
        raise ScimError.invalid_cursor("the cursor is not one this server issued")
    in_groups = cursor is not None and cursor.key == GROUP
    known = cursor.total if cursor is not None else None
    # A later page repeats the total counted on the first (see scim/cursors.py): no COUNT.
    skip_count = 0 if known is not None else None
    count = query.count
    page = RootPage(0)
    last: tuple[str, str] | None = None
    more = False
    user_total = group_total = 0
    if users_apply:
        found = uow.users.seek(
            user_where,
            order=user_order(None, False),
            position=(None, cursor.last_id) if cursor is not None and not in_groups else None,
            ascending=True,
            limit=0 if in_groups else count,
            known_total=skip_count,
        )
        user_total, page.users = found.total, found.items
        if page.users:
            last = (USER, page.users[-1].user_id)
        more = found.has_more
    if groups_apply:
        room = 0 if more else count - len(page.users)
        found = uow.groups.seek(
            group_where,
            order=group_order(None, False),
            position=(None, cursor.last_id) if cursor is not None and in_groups else None,
            ascending=True,
            limit=room,
            known_total=skip_count,
        )
        group_total, page.groups = found.total, found.items
        if page.groups:
            last = (GROUP, page.groups[-1].group_id)
            more = found.has_more
        elif room == 0 and not in_groups and count > 0 and not more:
            # The page filled up with users exactly: do groups follow? (The count tells on a
            # first page; later pages skip counting, so look for one.)
            more = found.total > 0 if known is None else _any_group(uow, group_where)
    page.total = known if known is not None else user_total + group_total
    if more and last is not None:
        page.next_cursor = encode_cursor(
            Cursor(ROOT, "", False, last[0], last[1], total=page.total)
        )
    return page


def _any_group(uow: UnitOfWork, where: Any) -> bool:
    first = uow.groups.seek(
        where, order=group_order(None, False), position=None, ascending=True, limit=1,
        known_total=0,
    )  # fmt: skip
    return bool(first.items)
