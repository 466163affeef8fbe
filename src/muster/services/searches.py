"""search_resources: the root query (GET /?filter=…, POST /.search) over Users and Groups.

RFC 7644 §3.4.2.1 and §3.4.3 let a client query "all resource types" at the root, by GET or
by POST alike. Muster lists them in one fixed order — every matching User (in creation order),
then every matching Group (in creation order) — so index and cursor pages both cut one
well-defined sequence: totalResults is the users' count plus the groups' count, startIndex
counts through the users first and on into the groups.

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
from muster.scim.cursors import Listing, next_cursor_after, page_cursors, read_cursor
from muster.scim.listing import ListQuery
from muster.scim.records import StoredGroup, StoredUser
from muster.services.paging import listing_of

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
    previous_cursor: str | None = None
    listing: Listing | None = None  # a page read by cursor: what its cursors are bound to

    def cut(self, kept: int) -> RootPage:
        """Keep the first `kept` resources (users first); a cursor page then goes on after them."""
        if kept >= len(self.users) + len(self.groups) or kept < 1:
            return self
        users, groups = self.users[:kept], self.groups[: max(0, kept - len(self.users))]
        page = RootPage(
            self.total, users, groups, self.members, previous_cursor=self.previous_cursor
        )
        if self.listing is not None:
            edge = (GROUP, groups[-1].group_id) if groups else (USER, users[-1].user_id)
            page.next_cursor = next_cursor_after(self.listing, edge, self.total)
            page.listing = self.listing
        return page


def _translate(
    translate: Callable[[Any, str], Any], node: Any, tenant_id: str
) -> tuple[bool, Any, ScimError | None]:
    """(applies, where-clause, why not) for one resource type."""
    if node is None:
        return True, None, None
    try:
        return True, translate(node, tenant_id), None
    except ScimError as error:
        if error.scim_type != ScimType.INVALID_FILTER:
            raise
        return False, None, error


def _wheres(query: ListQuery, tenant_id: str) -> tuple[bool, Any, bool, Any]:
    users_apply, user_where, user_error = _translate(user_filter, query.filter, tenant_id)
    groups_apply, group_where, group_error = _translate(group_filter, query.filter, tenant_id)
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
    assert uow.tenant_id is not None  # searches run with a tenant's unit of work
    users_apply, user_where, groups_apply, group_where = _wheres(query, uow.tenant_id)
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


@dataclass(frozen=True, slots=True)
class _Segment:
    """One resource type's stretch of the root listing: its rows, in creation order."""

    name: str  # USER or GROUP: the cursor's key says which segment its position is in
    repository: Any
    where: Any
    order: Any


def _by_cursor(
    uow: UnitOfWork,
    query: ListQuery,
    users_apply: bool,
    user_where: Any,
    groups_apply: bool,
    group_where: Any,
) -> RootPage:
    """Read a page of the sequence users-then-groups forward (or backward) from a cursor."""
    listing = listing_of(ROOT, query)
    cursor = read_cursor(query.cursor, listing)
    if cursor is not None and cursor.key not in (USER, GROUP):
        raise ScimError.invalid_cursor("the cursor is not one this server issued")
    segments = [
        segment
        for segment, applies in (
            (_Segment(USER, uow.users, user_where, user_order(None, False)), users_apply),
            (_Segment(GROUP, uow.groups, group_where, group_order(None, False)), groups_apply),
        )
        if applies
    ]
    if cursor is not None and cursor.total is not None:
        total = cursor.total  # counted on the first page (see scim/cursors.py)
    else:
        total = sum(_count(segment) for segment in segments)
    if query.count == 0:
        return RootPage(total, listing=listing)
    backward = cursor is not None and cursor.backward
    # Walk the segments in the read direction, starting in the cursor's own segment.
    order = list(reversed(segments)) if backward else segments
    if cursor is not None:
        names = [segment.name for segment in order]
        order = order[names.index(cursor.key) :] if cursor.key in names else order
    rows: list[tuple[str, Any]] = []
    more = False
    for segment in order:
        room = query.count - len(rows)
        if room <= 0:
            # The page is full at a segment's end: does anything lie in the next ones?
            more = more or _any_row(segment)
            continue
        here = cursor is not None and segment.name == cursor.key
        found = segment.repository.seek(
            segment.where,
            order=segment.order,
            position=(None, cursor.last_id) if here and cursor is not None else None,
            ascending=not backward,
            limit=room,
            known_total=0,  # the total is known above; never count here
        )
        rows += [(segment.name, item) for item in found.items]
        more = found.has_more
    if backward:
        rows.reverse()
    page = RootPage(total, listing=listing)
    page.users = [item for name, item in rows if name == USER]
    page.groups = [item for name, item in rows if name == GROUP]
    edges = [(name, _id_of(item)) for name, item in (rows[:1] + rows[-1:])]
    next_cursor, previous_cursor = page_cursors(
        cursor,
        listing,
        first=edges[0] if edges else None,
        last=edges[-1] if edges else None,
        has_more=more,
        total=total,
    )
    page.next_cursor, page.previous_cursor = next_cursor, previous_cursor
    return page


def _id_of(item: Any) -> str:
    return str(item.user_id if isinstance(item, StoredUser) else item.group_id)


def _count(segment: _Segment) -> int:
    found = segment.repository.seek(
        segment.where, order=segment.order, position=None, ascending=True, limit=0
    )
    return int(found.total)


def _any_row(segment: _Segment) -> bool:
    found = segment.repository.seek(
        segment.where, order=segment.order, position=None, ascending=True, limit=1,
        known_total=0,
    )  # fmt: skip
    return bool(found.items)
