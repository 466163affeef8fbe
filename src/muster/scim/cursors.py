"""Keyset cursors (RFC 9865): a signed, opaque token saying where a page ended, and which way to go.

A cursor holds the sort value and id of the last (or first) row a client saw, never an offset
and never server-side state: the next page is "the rows after this key", so rows added or
removed between requests shift nothing, and a cursor never expires (no cursorTimeout) while
the key that signed it is kept.

It also carries the totalResults counted when the walk began (on the page read with an empty
cursor): counting a million rows costs far more than seeking to a page, so later pages repeat
that number instead of counting again. It is the size of the result when paging started.

The token is base64url (RFC 3986 unreserved characters only, as RFC 9865 §2.1 asks) of a
small JSON list and an HMAC-SHA256 tag (RFC 2104, truncated to 128 bits) under a server key.
The tag covers more than the token holds: the tenant and the filter text of the listing it was
issued for (a `Listing`). So a cursor works only for the tenant and the query it came from —
another tenant's cursor, or one sent with another filter, is 400 invalidCursor — and nobody
without the key can edit one: not its position, and not the total that later pages echo.
The keys are arguments (`CursorKeys`): the first signs and every one verifies, so a key can be
rotated without cutting the walks in progress (services/paging.py says where keys come from).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson

from muster.errors import ScimError

VERSION = 2  # 1: the unkeyed checksum; such a cursor is refused, and the client starts again
TAG_BYTES = 16
_MAX_TOKEN = 2048
_ID = re.compile(r"[0-9A-Za-z-]{1,64}")
_START_AGAIN = "; ask for the first page again with an empty cursor"
_NOT_OURS = "the cursor is not one this server issued" + _START_AGAIN
# What the key of each sort is. The values come from the columns db/filter_sql.py sorts on;
# a signed cursor always fits, and checking it here keeps a mistyped key out of the SQL.
_DATE_SORTS = frozenset({"meta.created", "meta.lastmodified"})
_BOOLEAN_SORTS = frozenset({"active"})
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CursorKeys:
    """The server keys cursors are signed with: the first signs, every one verifies."""

    keys: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("cursors need at least one key")

    def sign(self, message: bytes) -> bytes:
        return hmac.digest(self.keys[0], message, "sha256")[:TAG_BYTES]

    def verify(self, message: bytes, tag: bytes) -> bool:
        # Constant-time compares: response times must not tell how much of a tag was right.
        return any(
            hmac.compare_digest(hmac.digest(key, message, "sha256")[:TAG_BYTES], tag)
            for key in self.keys
        )


@dataclass(frozen=True, slots=True)
class Listing:
    """The query a cursor is bound to: its tenant, resource type, filter and sort, and the keys."""

    keys: CursorKeys
    tenant_id: str
    scope: str  # "User", "Group" or "root" (the root search)
    filter_text: str  # the filter as the client sent it ("" for none)
    sort_by: str  # normalised by sort_name ("" for creation order)
    descending: bool

    def message(self, payload: bytes) -> bytes:
        # The tenant and filter are signed, not carried: the token stays short, and a cursor
        # presented with another tenant's token or another filter fails the check.
        return orjson.dumps(["muster-cursor", self.tenant_id, self.filter_text]) + payload


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: the edge row's sort value and id, for one listing and sort."""

    scope: str  # "User", "Group" or "root"
    sort_by: str  # the normalised sortBy the pages are ordered by ("" for creation order)
    descending: bool
    key: Any  # the edge row's sort value: str, bool, datetime or None
    last_id: str
    backward: bool = False  # a previousCursor: the page of rows before the key
    total: int | None = None  # totalResults as counted on the walk's first page


@dataclass(slots=True)
class CursorPage(Generic[T]):
    """One cursor-paginated page, with the cursors a ListResponse carries."""

    total: int
    items: list[T]
    next_cursor: str | None = None
    previous_cursor: str | None = None
    # Each item's (sort value, id), in list order, and the listing: enough to cut the page.
    keys: list[tuple[Any, str]] = field(default_factory=list)
    listing: Listing | None = None

    def cut(self, kept: int) -> CursorPage[T]:
        """Keep the first `kept` items; nextCursor then points just after the last of them.

        A page cut short (its response would have been too large) goes on where it stopped,
        whichever way it was read; previousCursor still points before its first item.
        """
        if kept >= len(self.items) or kept < 1 or self.listing is None:
            return self
        next_cursor = next_cursor_after(self.listing, self.keys[kept - 1], self.total)
        return replace(
            self, items=self.items[:kept], keys=self.keys[:kept], next_cursor=next_cursor
        )


def sort_name(sort_by: str | None) -> str:
    return (sort_by or "").strip().lower()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _tag(value: Any) -> list[Any]:
    if value is None:
        return ["n", None]
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, datetime):
        return ["t", value.isoformat()]
    if isinstance(value, str):
        return ["s", value]
    raise TypeError(f"a cursor cannot hold a {type(value).__name__}")


def _kinds(sort_by: str) -> tuple[str, ...]:
    """The tags a key of this sort may have: a date, a boolean, or a string (perhaps absent)."""
    attribute = sort_by.rsplit(":", 1)[-1]  # without a schema URN
    if attribute in _DATE_SORTS:
        return ("t",)
    if attribute in _BOOLEAN_SORTS:
        return ("b",)
    return ("s", "n")


def _untag(tag: Any, value: Any, sort_by: str) -> Any:
    if tag not in _kinds(sort_by):
        raise ScimError.invalid_cursor(_NOT_OURS)
    if tag == "n" and value is None:
        return None
    if tag == "b" and isinstance(value, bool):
        return value
    if tag == "s" and isinstance(value, str) and "\x00" not in value:
        return value
    if tag == "t" and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is None:  # stored times are naive UTC
            return moment
    raise ScimError.invalid_cursor(_NOT_OURS)


def encode_cursor(cursor: Cursor, listing: Listing) -> str:
    """Turn a Cursor into its opaque token, signed for `listing`."""
    flags = (1 if cursor.descending else 0) | (2 if cursor.backward else 0)
    payload = orjson.dumps(
        [
            VERSION,
            cursor.scope,
            cursor.sort_by,
            flags,
            *_tag(cursor.key),
            cursor.last_id,
            cursor.total,
        ]
    )
    return _b64(payload + listing.keys.sign(listing.message(payload)))


def decode_cursor(token: str, listing: Listing) -> Cursor:
    """Read a token back; 400 invalidCursor unless it is intact, ours, and fits this listing."""
    if len(token) > _MAX_TOKEN:
        raise ScimError.invalid_cursor("the cursor is too long" + _START_AGAIN)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise ScimError.invalid_cursor("the cursor is not valid base64url" + _START_AGAIN) from None
    payload, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
    if len(raw) <= TAG_BYTES or not listing.keys.verify(listing.message(payload), tag):
        raise ScimError.invalid_cursor(
            "the cursor does not fit this request: it was altered or cut short, issued for "
            "another tenant or another filter, or signed with a key this server no longer "
            "holds" + _START_AGAIN
        )
    try:
        fields = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise ScimError.invalid_cursor(_NOT_OURS) from None
    if not (isinstance(fields, list) and len(fields) == 8 and fields[0] == VERSION):
        raise ScimError.invalid_cursor(_NOT_OURS)
    _, cursor_scope, cursor_sort, flags, tag_name, value, last_id, total = fields
    if cursor_scope != listing.scope:
        raise ScimError.invalid_cursor(
            f"the cursor belongs to another listing ({cursor_scope}), not {listing.scope}"
            + _START_AGAIN
        )
    if type(flags) is not int or flags not in (0, 1, 2, 3):
        raise ScimError.invalid_cursor(_NOT_OURS)
    if cursor_sort != listing.sort_by or bool(flags & 1) != listing.descending:
        raise ScimError.invalid_cursor(
            "the cursor was issued for another sortBy or sortOrder; keep them the same on "
            "every page" + _START_AGAIN
        )
    if not (isinstance(last_id, str) and _ID.fullmatch(last_id)) or not (
        total is None or (type(total) is int and total >= 0)
    ):
        raise ScimError.invalid_cursor(_NOT_OURS)
    key = _untag(tag_name, value, listing.sort_by)
    return Cursor(
        listing.scope, listing.sort_by, listing.descending, key, last_id, bool(flags & 2), total
    )


def read_cursor(token: str | None, listing: Listing) -> Cursor | None:
    """The position a request's `cursor` names; None for the first page (an empty cursor)."""
    if not token:
        return None
    return decode_cursor(token, listing)


def next_cursor_after(listing: Listing, edge: tuple[Any, str], total: int | None) -> str:
    """The nextCursor of a page whose last row is `edge` (its sort value and id)."""
    cursor = Cursor(
        listing.scope, listing.sort_by, listing.descending, edge[0], edge[1], False, total
    )
    return encode_cursor(cursor, listing)


def page_cursors(
    request: Cursor | None,
    listing: Listing,
    *,
    first: tuple[Any, str] | None,
    last: tuple[Any, str] | None,
    has_more: bool,
    total: int | None = None,
) -> tuple[str | None, str | None]:
    """Return (nextCursor, previousCursor) for a page read from `request`'s position.

    `first`/`last` are the (sort value, id) of the page's first and last rows in list order;
    `has_more` says rows lie beyond the page in the direction it was read.
    """

    def token(edge: tuple[Any, str], backward: bool) -> str:
        cursor = Cursor(
            listing.scope, listing.sort_by, listing.descending, edge[0], edge[1], backward, total
        )
        return encode_cursor(cursor, listing)

    backward = request is not None and request.backward
    next_cursor = previous_cursor = None
    if backward:
        # Read from a previousCursor: the rows after this page are the page the client left.
        if has_more and first is not None:
            previous_cursor = token(first, True)
        if last is not None:
            next_cursor = token(last, False)
    else:
        if has_more and last is not None:
            next_cursor = token(last, False)
        if request is not None:
            # Rows before this page existed when the client read them (the cursor's own row).
            edge = first if first is not None else (request.key, request.last_id)
            previous_cursor = token(edge, True)
    return next_cursor, previous_cursor
