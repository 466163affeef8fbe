"""seek_page: one keyset page of a repository for a ListQuery's cursor (RFC 9865)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from muster.db.repositories import SeekPage
from muster.scim.cursors import CursorPage, page_cursors, read_cursor
from muster.scim.listing import ListQuery


class Seekable(Protocol):
    def seek(
        self,
        where: Any,
        *,
        order: Sequence[Any],
        position: tuple[Any, str] | None,
        ascending: bool,
        limit: int,
        known_total: int | None = None,
    ) -> SeekPage: ...


def seek_page(
    repository: Seekable,
    scope: str,
    query: ListQuery,
    where: Any,
    order: Sequence[Any],
) -> CursorPage[Any]:
    """Read the page a cursor names (inside the caller's transaction) and the next cursors."""
    # sortOrder without sortBy changes nothing, as for index pages (creation order).
    descending = query.sort_descending and query.sort_by is not None
    cursor = read_cursor(query.cursor, scope=scope, sort_by=query.sort_by, descending=descending)
    backward = cursor is not None and cursor.backward
    found = repository.seek(
        where,
        order=order,
        position=(cursor.key, cursor.last_id) if cursor is not None else None,
        ascending=descending == backward,  # the direction rows are read in
        limit=query.count,
        known_total=cursor.total if cursor is not None else None,
    )
    items, keys = found.items, found.keys
    if backward:  # read towards the start: put the page back in list order
        items, keys = items[::-1], keys[::-1]
    next_cursor, previous_cursor = page_cursors(
        cursor,
        scope=scope,
        sort_by=query.sort_by,
        descending=descending,
        first=keys[0] if keys else None,
        last=keys[-1] if keys else None,
        has_more=found.has_more,
        total=found.total,
    )
    return CursorPage(found.total, items, next_cursor, previous_cursor)
