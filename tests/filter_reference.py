"""A reference filter evaluator in plain Python over served SCIM JSON (RFC 7644 §3.4.2.2).

Written apart from src/ on purpose: it reads the resources as GET returns them and the
attribute facts it needs (caseExact, types) from its own small table, so it can disagree with
the SQL translation. The semantics it encodes are the ones the README documents:

- a comparison with an absent value is false (`ne` too); `not` is the exact complement;
- on a multi-valued attribute any one element matching is a match;
- `x eq null` is `not (x pr)`, `x ne null` is `x pr`;
- `pr`: a non-empty string, any value of another type, a list with an element, a complex
  value with any present sub-attribute;
- caseExact=false strings compare after str.lower(); order is by code point;
- dateTimes compare as instants.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE = {
    "User": "urn:ietf:params:scim:schemas:core:2.0:User",
    "Group": "urn:ietf:params:scim:schemas:core:2.0:Group",
}
ENTERPRISE_NAMES = {
    "employeenumber",
    "costcenter",
    "organization",
    "division",
    "department",
    "manager",
}
CASE_EXACT = {
    "id",
    "externalid",
    "groups.value",
    "members.value",
    "manager.value",
    "profileurl",
    "photos.value",
    "groups.$ref",
    "members.$ref",
    "manager.$ref",
}
DATE_TIMES = {"meta.created", "meta.lastmodified"}


def _get(container: Any, name: str) -> Any:
    if not isinstance(container, dict):
        return None
    for key, value in container.items():
        if key.lower() == name.lower():
            return value
    return None


def _host(resource: dict[str, Any], path: AttrPath, resource_type: str) -> dict[str, Any]:
    if path.uri is not None and path.uri.lower() == ENTERPRISE.lower():
        return _get(resource, ENTERPRISE) or {}
    if path.uri is None and resource_type == "User" and path.attr.lower() in ENTERPRISE_NAMES:
        return _get(resource, ENTERPRISE) or {}  # Entra's bare enterprise names
    return resource


def _values(top: Any, sub: str | None) -> list[Any]:
    """The leaf values an attribute path reaches; a complex value stands for its `value`."""
    items = top if isinstance(top, list) else [top]
    found = []
    for item in items:
        if sub is not None:
            found.append(_get(item, sub))
        elif isinstance(item, dict):
            found.append(_get(item, "value"))
        else:
            found.append(item)
    return [v for v in found if v is not None]


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return value != ""
    if isinstance(value, list):
        return len(value) > 0
    if isinstance(value, dict):
        return any(_present(v) for v in value.values())
    return True


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _compare(actual: Any, op: CompareOperator, wanted: Any, key: str) -> bool:
    if key in DATE_TIMES:
        left, right = _instant(actual), _instant(wanted)
    elif isinstance(actual, bool) or isinstance(wanted, bool):
        if isinstance(wanted, str):
            wanted = {"true": True, "false": False}.get(wanted.lower())
        left, right = actual, wanted
    else:
        left, right = actual, wanted
        if key not in CASE_EXACT:
            left, right = left.lower(), right.lower()
    match op:
        case CompareOperator.eq:
            return bool(left == right)
        case CompareOperator.ne:
            return bool(left != right)
        case CompareOperator.co:
            return right in left
        case CompareOperator.sw:
            return bool(left.startswith(right))
        case CompareOperator.ew:
            return bool(left.endswith(right))
        case CompareOperator.gt:
            return bool(left > right)
        case CompareOperator.ge:
            return bool(left >= right)
        case CompareOperator.lt:
            return bool(left < right)
        case CompareOperator.le:
            return bool(left <= right)
    raise AssertionError(op)


def matches(
    resource: dict[str, Any], node: FilterNode, resource_type: str, parent: str | None = None
) -> bool:
    """Does this served resource (or, under a value filter, this element) match the filter?"""
    if isinstance(node, LogicalExpr):
        results = [matches(resource, t, resource_type, parent) for t in node.terms]
        return all(results) if node.op == LogicalOperator.and_ else any(results)
    if isinstance(node, Not):
        return not matches(resource, node.expr, resource_type, parent)
    if isinstance(node, ValuePath):
        name = node.attr_path.attr
        elements = _get(_host(resource, node.attr_path, resource_type), name) or []
        return any(matches(e, node.val_filter, resource_type, name.lower()) for e in elements)
    assert isinstance(node, Present | Comparison)
    path = node.attr_path
    if parent is not None:  # inside name[...]: the element is the container
        top, sub, key = _get(resource, path.attr), None, f"{parent}.{path.attr.lower()}"
        leaves = [] if top is None else [top]
    else:
        top = _get(_host(resource, path, resource_type), path.attr)
        sub = path.sub_attr
        key = path.attr.lower() if sub is None else f"{path.attr.lower()}.{sub.lower()}"
        if sub is None and isinstance(top, dict | list) and key not in DATE_TIMES:
            key = f"{key}.value"
        leaves = _values(top, sub) if top is not None else []
    if isinstance(node, Present):
        if parent is None and sub is None:
            return _present(top)
        return any(_present(v) for v in leaves)
    if node.value is None:
        present = any(_present(v) for v in leaves)
        return present if node.op == CompareOperator.ne else not present
    return any(_compare(v, node.op, node.value, key) for v in leaves)
