"""Keyset cursors (RFC 9865): an opaque token saying where a page ended, and which way to go.

A cursor holds the sort value and id of the last (or first) row a client saw, never an offset
and never server-side state: the next page is "the rows after this key", so rows added or
removed between requests shift nothing, and a cursor never expires (no cursorTimeout).

It also carries the totalResults counted when the walk began (on the page read with an empty
cursor): counting a million rows costs far more than seeking to a page, so later pages repeat
that number instead of counting again. It is the size of the result when paging started.

The token is base64url (RFC 3986 unreserved characters only, as RFC 9865 §2.1 asks) of a
small JSON list plus a checksum. It is not signed: a cursor carries no authority — the tenant
comes from the bearer token and the filter is applied again on every page — so a forged one
can only start a page somewhere else, which a filter could do anyway. The checksum and the
strict checks below turn a truncated or edited token into 400 invalidCursor, not a 500 or a
silently wrong page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson

from muster.errors import ScimError

VERSION = 1
_CHECK_BYTES = 6
_MAX_TOKEN = 2048
_ID = re.compile(r"[0-9A-Za-z-]{1,64}")
_START_AGAIN = "; ask for the first page again with an empty cursor"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: the edge row's sort value and id, for one listing and sort."""

    scope: str  # "User", "Group" or "root" (POST /.search)
    sort_by: str  # the normalised sortBy the pages are ordered by ("" for creation order)
    descending: bool
    key: Any  # the edge row's sort value: str, bool, int, datetime or None
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


def sort_name(sort_by: str | None) -> str:
    return (sort_by or "").strip().lower()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _check(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=_CHECK_BYTES, person=b"muster-cursor").digest()


def _tag(value: Any) -> list[Any]:
    if value is None:
        return ["n", None]
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, int):
        return ["i", value]
    if isinstance(value, datetime):
        return ["t", value.isoformat()]
    if isinstance(value, str):
        return ["s", value]
    raise TypeError(f"a cursor cannot hold a {type(value).__name__}")


def _untag(tag: Any, value: Any) -> Any:
    if tag == "n" and value is None:
        return None
    if tag == "b" and isinstance(value, bool):
        return value
    if tag == "i" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tag == "s" and isinstance(value, str):
        return value
    if tag == "t" and isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise ScimError.invalid_cursor("the cursor is not one this server issued" + _START_AGAIN)


def encode_cursor(cursor: Cursor) -> str:
    """Turn a Cursor into its opaque token."""
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
    return _b64(payload + _check(payload))


def decode_cursor(token: str, *, scope: str, sort_by: str | None, descending: bool) -> Cursor:
    """Read a token back; 400 invalidCursor unless it is intact and fits this listing."""
    if len(token) > _MAX_TOKEN:
        raise ScimError.invalid_cursor("the cursor is too long" + _START_AGAIN)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise ScimError.invalid_cursor("the cursor is not valid base64url" + _START_AGAIN) from None
    payload, check = raw[:-_CHECK_BYTES], raw[-_CHECK_BYTES:]
    if len(raw) <= _CHECK_BYTES or _check(payload) != check:
        raise ScimError.invalid_cursor("the cursor was altered or cut short" + _START_AGAIN)
    try:
        fields = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise ScimError.invalid_cursor("the cursor is not one this server issued") from None
    if not (isinstance(fields, list) and len(fields) == 8 and fields[0] == VERSION):
        raise ScimError.invalid_cursor("the cursor is not one this server issued" + _START_AGAIN)
    _, cursor_scope, cursor_sort, flags, tag, value, last_id, total = fields
    if cursor_scope != scope:
        raise ScimError.invalid_cursor(
            f"the cursor belongs to another listing ({cursor_scope}), not {scope}" + _START_AGAIN
        )
    if not isinstance(flags, int) or flags not in (0, 1, 2, 3):
        raise ScimError.invalid_cursor("the cursor is not one this server issued" + _START_AGAIN)
    if cursor_sort != sort_name(sort_by) or bool(flags & 1) != descending:
        raise ScimError.invalid_cursor(
            "the cursor was issued for another sortBy or sortOrder; keep them the same on "
            "every page" + _START_AGAIN
        )
    if not (isinstance(last_id, str) and _ID.fullmatch(last_id)) or not (
        total is None or (type(total) is int and total >= 0)
    ):
        raise ScimError.invalid_cursor("the cursor is not one this server issued" + _START_AGAIN)
    key = _untag(tag, value)
    return Cursor(scope, cursor_sort, descending, key, last_id, bool(flags & 2), total)


def read_cursor(
    token: str | None, *, scope: str, sort_by: str | None, descending: bool
) -> Cursor | None:
    """The position a request's `cursor` names; None for the first page (an empty cursor)."""
    if not token:
        return None
    return decode_cursor(token, scope=scope, sort_by=sort_by, descending=descending)


def page_cursors(
    request: Cursor | None,
    *,
    scope: str,
    sort_by: str | None,
    descending: bool,
    first: tuple[Any, str] | None,
    last: tuple[Any, str] | None,
    has_more: bool,
    total: int | None = None,
) -> tuple[str | None, str | None]:
    """Return (nextCursor, previousCursor) for a page read from `request`'s position.

    `first`/`last` are the (sort value, id) of the page's first and last rows in list order;
    `has_more` says rows lie beyond the page in the direction it was read.
    """
    name = sort_name(sort_by)

    def token(edge: tuple[Any, str], backward: bool) -> str:
        return encode_cursor(Cursor(scope, name, descending, edge[0], edge[1], backward, total))

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
