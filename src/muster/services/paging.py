"""seek_page: one keyset page of a repository for a ListQuery's cursor (RFC 9865); CursorKeyring.

Where the keys that sign cursors come from (CursorKeyring). MUSTER_CURSOR_KEYS, when set: a
comma-separated list whose first key signs and every key verifies, so a key is rotated by
putting a new one first and dropping the old one once the walks signed with it are over.

When it is unset, every process and instance of one deployment must still agree on a key, or
a cursor issued by one instance would be refused by the next behind the load balancer (so a
random key per process will not do), and the key must be a secret (so not a constant). The
only thing all instances already share is the database: the first process that needs a key
stores a random one in `server_secrets`, and every process reads that one (once, then it keeps
it). It goes with the database in a backup; nothing else holds it.

What a forged cursor could do is small in any case (the tenant comes from the bearer token and
the filter is applied on every page): start a page elsewhere, or report a wrong totalResults
to the very client that forged it.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from muster.db.repositories import SeekPage
from muster.db.unit_of_work import UnitOfWork
from muster.scim.cursors import (
    CursorKeys,
    CursorPage,
    Listing,
    page_cursors,
    read_cursor,
    sort_name,
)
from muster.scim.listing import ListQuery
from muster.services.clock import utcnow

# A shorter key is refused: `openssl rand -hex 32` gives 64 characters.
MIN_KEY_LENGTH = 32


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


def listing_of(scope: str, query: ListQuery) -> Listing:
    """What this request's cursors are bound to: its tenant and its query's own terms."""
    if query.cursor_keys is None or query.tenant_id is None:
        raise ValueError("a ListQuery read by cursor needs cursor_keys and tenant_id")
    return Listing(
        query.cursor_keys,
        query.tenant_id,
        scope,
        query.filter_text,
        sort_name(query.sort_by),
        # sortOrder without sortBy changes nothing, as for index pages (creation order).
        query.sort_descending and query.sort_by is not None,
    )


def seek_page(
    repository: Seekable,
    scope: str,
    query: ListQuery,
    where: Any,
    order: Sequence[Any],
) -> CursorPage[Any]:
    """Read the page a cursor names (inside the caller's transaction) and the next cursors."""
    listing = listing_of(scope, query)
    cursor = read_cursor(query.cursor, listing)
    backward = cursor is not None and cursor.backward
    found = repository.seek(
        where,
        order=order,
        position=(cursor.key, cursor.last_id) if cursor is not None else None,
        ascending=listing.descending == backward,  # the direction rows are read in
        limit=query.count,
        known_total=cursor.total if cursor is not None else None,
    )
    items, keys = found.items, found.keys
    if backward:  # read towards the start: put the page back in list order
        items, keys = items[::-1], keys[::-1]
    next_cursor, previous_cursor = page_cursors(
        cursor,
        listing,
        first=keys[0] if keys else None,
        last=keys[-1] if keys else None,
        has_more=found.has_more,
        total=found.total,
    )
    return CursorPage(found.total, items, next_cursor, previous_cursor, keys, listing)


CURSOR_KEY = "cursor_key"


def configured_keys(configured: str | None) -> CursorKeys | None:
    """MUSTER_CURSOR_KEYS read; None when unset. ValueError, one line, for a key too short."""
    if configured is None or not configured.strip():
        return None
    keys = [key.strip() for key in configured.split(",") if key.strip()]
    for number, key in enumerate(keys, 1):
        if len(key) < MIN_KEY_LENGTH:
            raise ValueError(
                f"MUSTER_CURSOR_KEYS: key {number} is shorter than {MIN_KEY_LENGTH} characters; "
                "make one with `openssl rand -hex 32`"
            )
    return CursorKeys(tuple(key.encode() for key in keys))


class CursorKeyring:
    """The keys cursors are signed with: the configured ones, else the database's (above)."""

    def __init__(self, configured: str | None, uow_factory: Callable[[None], UnitOfWork]) -> None:
        self._keys = configured_keys(configured)
        self._uow_factory = uow_factory
        self._lock = threading.Lock()

    def keys(self) -> CursorKeys:
        """The keys, read from the database on the first call of this process if need be."""
        keys = self._keys
        if keys is None:
            with self._lock:
                if self._keys is None:
                    self._keys = CursorKeys((self._stored_key(),))
                keys = self._keys
        return keys

    def _stored_key(self) -> bytes:
        uow = self._uow_factory(None)
        with uow:  # a transaction of its own: the request's may be a read
            key = uow.server_secrets.get_or_add(CURSOR_KEY, secrets.token_hex(32), utcnow())
            uow.commit()
        return key.encode()
