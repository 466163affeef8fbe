"""ListQuery from ?filter&startIndex&count (RFC 7644 §3.4.2); the ListResponse envelope."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scim2_models import ScimFilter
from scim2_models.path import FilterNode

from muster.errors import ScimError
from muster.scim.schemas import LIST_RESPONSE_URN


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A parsed list request: a filter tree (or None) and a 1-based page."""

    filter: FilterNode | None
    start_index: int
    count: int

    @property
    def offset(self) -> int:
        return self.start_index - 1


def parse_filter(text: str) -> FilterNode:
    """Parse RFC 7644 §3.4.2.2 filter text into scim2-models' tree; bad syntax -> invalidFilter."""
    try:
        return ScimFilter(text).ast
    except Exception as error:  # scim2-models raises its own exception types for bad filters
        raise ScimError.invalid_filter(f"filter {text!r} is not valid: {error}") from error


def _integer(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ScimError.invalid_value(f"{name} must be an integer, got {raw!r}") from None


def parse_list_query(params: Mapping[str, str], *, default_count: int, max_count: int) -> ListQuery:
    """Read filter, startIndex and count; out-of-range numbers are clamped as §3.4.2.4 says."""
    text = params.get("filter")
    node = parse_filter(text) if text else None
    start = _integer(params, "startIndex")
    count = _integer(params, "count")
    start = 1 if start is None or start < 1 else start
    count = default_count if count is None else max(0, min(count, max_count))
    return ListQuery(node, start, count)


def list_response(total: int, start_index: int, resources: list[dict[str, Any]]) -> dict[str, Any]:
    """Build the ListResponse body; every number is a JSON integer (Okta checks)."""
    return {
        "schemas": [LIST_RESPONSE_URN],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }
