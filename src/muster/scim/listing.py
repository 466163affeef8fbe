"""ListQuery from ?filter&startIndex&count&cursor (RFC 7644 §3.4.2, RFC 9865); ListResponse."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from scim2_models import ScimFilter
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    Not,
    Present,
    ValuePath,
)

from muster.errors import ScimError
from muster.scim.cursors import CursorKeys
from muster.scim.schemas import LIST_RESPONSE_URN, SEARCH_REQUEST_URN

# The longest filter read: scim2-models' grammar reads ~2 µs a character (~9 µs inside nested
# parentheses). Okta's and Entra's filters are under 200 characters.
MAX_FILTER_LENGTH = 4096
# Comparisons and presence tests one filter may hold. Each becomes SQL evaluated on every
# candidate row (~0.6 µs a row on SQLite for one on the JSON document) and costs ~0.3 ms to
# build, ~0.7 ms over a multi-valued attribute. IdPs send one to three.
MAX_FILTER_TERMS = 32
# The largest startIndex read. RFC 7644 §3.4.2.4 sets no upper bound, but an OFFSET must fit
# the databases' 64-bit integers; no tenant has two billion users, and it is the largest index
# a client with 32-bit integers (Java's and .NET's int) can send.
MAX_START_INDEX = 2**31 - 1
_INTEGER = re.compile(r"\s*([+-]?)([0-9]+)\s*")


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A parsed list request: a filter tree (or None) and a 1-based page."""

    filter: FilterNode | None
    start_index: int
    count: int
    sort_by: str | None = None  # an attribute path, e.g. "userName" or "meta.lastModified"
    sort_descending: bool = False
    # RFC 9865: None is index pagination; "" asks for the first page by cursor; else a token.
    cursor: str | None = None
    # What a cursor is signed with and bound to (scim/cursors.py): the server's keys, the
    # tenant whose rows are listed, and the filter as sent. A cursor query needs all three.
    cursor_keys: CursorKeys | None = None
    tenant_id: str | None = None
    filter_text: str = ""

    @property
    def offset(self) -> int:
        return self.start_index - 1


# `attr eq "value"` / `attr.sub eq "value"`: Okta's and Entra's existence checks, sent with a
# new value every time, so scim2-models' parse cache never hits and its LALR parse costs ~50 µs.
# This shape is read directly into the same tree; every other filter goes to scim2-models.
_SIMPLE_EQ = re.compile(
    r'\s*([A-Za-z][\w$-]*)(?:\.([A-Za-z][\w$-]*))?\s+[eE][qQ]\s+"((?:[^"\\]|\\.)*)"\s*',
    re.ASCII,
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_WORD = re.compile(r'[^\s()\[\]"]+')


def _simple_equality(text: str) -> FilterNode | None:
    match = _SIMPLE_EQ.fullmatch(text)
    if match is None:
        return None
    attr, sub_attr, raw = match.groups()
    if attr.lower() in ("and", "or", "not"):
        return None
    try:
        value = orjson.loads(f'"{raw}"') if "\\" in raw else raw
    except orjson.JSONDecodeError:
        return None  # let the full parser say what is wrong
    try:
        path = AttrPath(attr, sub_attr)
    except ValueError as error:
        raise ScimError.invalid_filter(f"{attr!r} is not an attribute name: {error}") from None
    return Comparison(path, CompareOperator.eq, value)


def _require_ascii_names(text: str) -> None:
    """Refuse a filter with a non-ASCII word outside its quoted strings, naming the word."""
    if text.isascii():
        return
    for word in _WORD.findall(_STRING.sub(" ", text)):
        if not word.isascii():
            raise ScimError.invalid_filter(
                f"filter has {word!r} outside a quoted string, which is not an attribute "
                "name: attribute names are ASCII letters, digits, '$', '-' and '_' "
                "(RFC 7643 §2.1), and string values go in double quotes"
            )


def _require_storable_values(node: FilterNode) -> None:
    """Refuse string values no database can compare: NUL, or half a UTF-16 surrogate pair.

    scim2-models reads `"\\ud800"` as a lone surrogate, which no UTF-8 driver can send, and
    PostgreSQL has no NUL in text.
    """
    for item in _terms(node):
        if isinstance(item, Comparison) and isinstance(item.value, str):
            value = item.value
            if "\x00" in value or not (value.isascii() or _is_utf8(value)):
                raise ScimError.invalid_filter(
                    f"the value compared with {item.attr_path} holds a NUL character or "
                    "an unpaired UTF-16 surrogate (a \\uD800-\\uDFFF escape on its own)"
                )


def _is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_filter(text: str) -> FilterNode:
    """Parse RFC 7644 §3.4.2.2 filter text into scim2-models' tree; bad syntax -> invalidFilter.

    A filter longer than MAX_FILTER_LENGTH or with more than MAX_FILTER_TERMS terms -> tooMany.
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise ScimError.too_many(
            f"filter is {len(text)} characters long; at most {MAX_FILTER_LENGTH} are accepted"
        )
    if "\x00" in text:
        raise ScimError.invalid_filter("filter holds a NUL character")
    _require_ascii_names(text)
    simple = _simple_equality(text)
    if simple is not None:
        _require_storable_values(simple)
        return simple
    try:
        node: FilterNode = ScimFilter(text).ast
    except Exception as error:  # scim2-models raises its own exception types for bad filters
        raise ScimError.invalid_filter(f"filter {text!r} is not valid: {error}") from error
    terms = count_terms(node)
    if terms > MAX_FILTER_TERMS:
        raise ScimError.too_many(
            f"filter has {terms} comparisons and presence tests; at most {MAX_FILTER_TERMS} "
            "are accepted"
        )
    _require_storable_values(node)
    return node


def count_terms(node: FilterNode) -> int:
    """Count the comparisons and presence tests of a filter tree."""
    return sum(1 for _ in _terms(node))


def _terms(node: FilterNode) -> Iterator[Comparison | Present]:
    """The comparisons and presence tests of a filter tree, walked without recursion."""
    stack: list[Any] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Comparison | Present):
            yield item
        elif isinstance(item, LogicalExpr):
            stack.extend(item.terms)
        elif isinstance(item, Not):
            stack.append(item.expr)
        elif isinstance(item, ValuePath):
            stack.append(item.val_filter)


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= 40 else raw[:40] + "…")


def _integer(params: Mapping[str, str], name: str) -> int | None:
    """A decimal integer parameter, or None when absent.

    Past 19 digits only the sign matters: the value is read as ±10**19, past every bound, so it
    is refused (startIndex) or clamped (count) and never reaches SQL; a 5,000-digit string costs
    no more to read than a short one.
    """
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    match = _INTEGER.fullmatch(raw)
    if match is None:
        raise ScimError.invalid_value(f"{name} must be an integer, got {_shown(raw)}")
    sign, digits = match.groups()
    digits = digits.lstrip("0") or "0"
    magnitude = int(digits) if len(digits) <= 19 else 10**19
    return -magnitude if sign == "-" else magnitude


def parse_list_query(
    params: Mapping[str, str],
    *,
    default_count: int,
    max_count: int,
    cursor_keys: CursorKeys | None = None,
    tenant_id: str | None = None,
) -> ListQuery:
    """Read filter, startIndex, count and cursor (RFC 7644 §3.4.2.4, RFC 9865).

    Out-of-range numbers are read as the RFC says: a startIndex below 1 as 1, a negative count
    as 0, and a count above the maximum page size as the maximum (RFC 9865 §2.1). A startIndex
    above MAX_START_INDEX is 400 invalidValue: no page lies there, and no database OFFSET
    could say so.
    """
    text = params.get("filter")
    node = parse_filter(text) if text else None
    start = _integer(params, "startIndex")
    cursor = params.get("cursor")
    if cursor is not None and start is not None:
        raise ScimError.invalid_value(
            "startIndex and cursor cannot be used together: page by index or by cursor"
        )
    if start is not None and start > MAX_START_INDEX:
        raise ScimError.invalid_value(
            f"startIndex must be at most {MAX_START_INDEX}, got {_shown(params['startIndex'])}"
        )
    count = _integer(params, "count")
    start = 1 if start is None or start < 1 else start
    count = default_count if count is None else max(0, min(count, max_count))
    sort_by = params.get("sortBy") or None
    order = (params.get("sortOrder") or "ascending").lower()
    if order not in ("ascending", "descending"):
        raise ScimError.invalid_value(
            f"sortOrder must be ascending or descending, got {_shown(order)}"
        )
    return ListQuery(
        node,
        start,
        count,
        sort_by,
        order == "descending",
        cursor,
        cursor_keys=cursor_keys,
        tenant_id=tenant_id,
        filter_text=(text or "").strip(),
    )


def search_request_params(payload: Any) -> dict[str, str]:
    """Read a POST /.search SearchRequest (RFC 7644 §3.4.3) into list query parameters."""
    if not isinstance(payload, dict):
        raise ScimError.invalid_syntax("the request body must be a JSON object")
    fields = {k.lower(): v for k, v in payload.items()}
    schemas = fields.get("schemas")
    if not isinstance(schemas, list) or SEARCH_REQUEST_URN not in schemas:
        raise ScimError.invalid_value(f"schemas must be [{SEARCH_REQUEST_URN!r}]")
    params: dict[str, str] = {}
    names = {
        "filter": "filter",
        "startindex": "startIndex",
        "count": "count",
        "sortby": "sortBy",
        "sortorder": "sortOrder",
        "attributes": "attributes",
        "excludedattributes": "excludedAttributes",
        "cursor": "cursor",
    }
    for key, name in names.items():
        value = fields.get(key)
        if value is None:
            continue
        if isinstance(value, list) and name in ("attributes", "excludedAttributes"):
            if not all(isinstance(v, str) for v in value):
                raise ScimError.invalid_value(f"{name} must be a list of attribute names")
            params[name] = ",".join(value)
        elif isinstance(value, bool) or not isinstance(value, str | int):
            raise ScimError.invalid_value(f"{name} has the wrong type")
        else:
            params[name] = str(value)
    return params


def list_response(
    total: int,
    start_index: int | None,
    resources: Sequence[Any],
    *,
    next_cursor: str | None = None,
    previous_cursor: str | None = None,
) -> dict[str, Any]:
    """Build the ListResponse body; every number is a JSON integer (Okta checks).

    `resources` are the resources' bodies, or each one's JSON already encoded (web/ encodes
    them one by one to keep a page within its byte budget). A page read by cursor has no
    startIndex, and carries nextCursor / previousCursor when
    there is such a page (RFC 9865 §2.2).
    """
    body: dict[str, Any] = {"schemas": [LIST_RESPONSE_URN], "totalResults": total}
    if start_index is not None:
        body["startIndex"] = start_index
    body["itemsPerPage"] = len(resources)
    if next_cursor is not None:
        body["nextCursor"] = next_cursor
    if previous_cursor is not None:
        body["previousCursor"] = previous_cursor
    body["Resources"] = resources
    return body


class CursorPage(Protocol):
    """What a page read by cursor tells its ListResponse (RFC 9865)."""

    @property
    def total(self) -> int: ...
    @property
    def next_cursor(self) -> str | None: ...
    @property
    def previous_cursor(self) -> str | None: ...


def cursor_list_response(page: CursorPage, resources: Sequence[Any]) -> dict[str, Any]:
    """The ListResponse body of a page read by cursor: no startIndex, the cursors around it."""
    return list_response(
        page.total,
        None,
        resources,
        next_cursor=page.next_cursor,
        previous_cursor=page.previous_cursor,
    )
