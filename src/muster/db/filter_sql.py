"""FilterExpr -> where-clause over users or groups, on indexed columns wherever one exists.

scim/filtering.py resolves the attributes; this module says where each one lives:

- columns: id, externalId, userName (its identity key), active, meta.created, meta.lastModified;
  Groups: id, externalId, displayName (lower-cased key), meta.created, meta.lastModified;
- index tables: `emails.value` (user_emails, by identity key), a user's `groups.value`/`display`
  and a group's `members.value` (memberships), as `id IN (subquery)` so the index drives;
- the JSON document: every other single-valued attribute (name.*, title, enterprise ones, ...)
  and the other multi-valued ones (phoneNumbers, addresses, emails.type, ...), the latter with
  json_each (SQLite) / jsonb_array_elements (PostgreSQL).

SQL's three-valued logic is kept out of the answer: a comparison with an absent value is false,
and `not` wraps its operand in coalesce(..., false) so it stays the exact complement.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from scim2_models.path import CompareOperator, Comparison, FilterNode
from sqlalchemy import (
    Boolean,
    ColumnElement,
    FunctionElement,
    String,
    Table,
    and_,
    bindparam,
    column,
    exists,
    false,
    func,
    literal_column,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal, _TraverseInternalsType

from muster.db.tables import Document, GroupRow, MembershipRow, UserEmailRow, UserRow
from muster.errors import ScimError
from muster.scim.filtering import (
    AllOf,
    AnyElement,
    AnyOf,
    Attribute,
    Compare,
    FilterExpr,
    Has,
    Negate,
    attributes_of,
    resolve,
)
from muster.scim.identities import identity_key
from muster.scim.schemas import ENTERPRISE_URN, GROUP_URN, USER_URN

users = cast(Table, UserRow.__table__)
user_emails = cast(Table, UserEmailRow.__table__)
groups = cast(Table, GroupRow.__table__)
memberships = cast(Table, MembershipRow.__table__)

Op = CompareOperator
_ORDERING = {Op.gt, Op.ge, Op.lt, Op.le}
_MILLISECOND = timedelta(milliseconds=1)


def user_filter(node: FilterNode, tenant_id: str) -> ColumnElement[bool]:
    """Translate a filter over one tenant's Users into SQL (RFC 7644 §3.4.2.2)."""
    return _UserSql(tenant_id).where(resolve(node, "User"))


def group_filter(node: FilterNode, tenant_id: str) -> ColumnElement[bool]:
    """Translate a filter over one tenant's Groups into SQL; `members.value eq` is indexed."""
    return _GroupSql(tenant_id).where(resolve(node, "Group"))


def indexed_equality(node: FilterNode | None) -> tuple[str, str] | None:
    """("externalId", value) or ("emails", the value's key) for a lone indexed `eq`, else None.

    IdPs check whether a user exists with these (and with userName, see below) on every push;
    they run on prebuilt statements instead of a where-clause built per request.
    """
    if (
        not isinstance(node, Comparison)
        or node.op != Op.eq
        or not isinstance(node.value, str)
        or "\x00" in node.value
        or (node.attr_path.uri is not None and node.attr_path.uri.lower() != USER_URN.lower())
    ):
        return None
    attr, sub = node.attr_path.attr.lower(), (node.attr_path.sub_attr or "").lower()
    if attr == "externalid" and not sub:
        return "externalId", node.value
    if attr == "emails" and sub in ("", "value"):
        return "emails", identity_key(node.value)
    return None


def user_name_equality(node: FilterNode | None) -> str | None:
    """The value of a lone `userName eq "…"` filter (Okta's existence check), else None."""
    if (
        isinstance(node, Comparison)
        and node.op == Op.eq
        and isinstance(node.value, str)
        and "\x00" not in node.value  # refused by resolve() as invalidFilter
        and node.attr_path.sub_attr is None
        and node.attr_path.attr.lower() == "username"
        and (node.attr_path.uri is None or node.attr_path.uri.lower() == USER_URN.lower())
    ):
        return node.value
    return None


# ---- dialect-specific pieces -------------------------------------------------------------


class _TextMatch(ColumnElement[bool]):
    """co / sw / ew, case-sensitive on both databases (SQLite's LIKE ignores ASCII case)."""

    inherit_cache = False  # the pattern is built per dialect at compile time
    type = Boolean()

    def __init__(self, expr: ColumnElement[Any], op: CompareOperator, value: str) -> None:
        self.expr, self.operator, self.value = expr, op, value

    @property
    def _from_objects(self) -> list[Any]:
        return self.expr._from_objects


def _pattern(op: CompareOperator, escaped: str, many: str) -> str:
    return {Op.co: f"{many}{escaped}{many}", Op.sw: f"{escaped}{many}", Op.ew: f"{many}{escaped}"}[
        op
    ]


@compiles(_TextMatch, "sqlite")
def _text_match_sqlite(element: _TextMatch, compiler: Any, **kw: Any) -> str:
    escaped = re.sub(r"([*?\[])", r"[\1]", element.value)  # GLOB: a class holds a literal
    pattern = bindparam(None, _pattern(element.operator, escaped, "*"), String())
    return f"({compiler.process(element.expr, **kw)} GLOB {compiler.process(pattern, **kw)})"


@compiles(_TextMatch)
def _text_match_default(element: _TextMatch, compiler: Any, **kw: Any) -> str:
    escaped = re.sub(r"([/%_])", r"/\1", element.value)
    pattern = bindparam(None, _pattern(element.operator, escaped, "%"), String())
    return (
        f"{compiler.process(element.expr, **kw)} LIKE {compiler.process(pattern, **kw)} ESCAPE '/'"
    )


class _CodepointOrder(ColumnElement[Any]):
    """A string compared by code point, as Python compares (PostgreSQL: COLLATE "C")."""

    inherit_cache = True
    _traverse_internals: _TraverseInternalsType = [("expr", InternalTraversal.dp_clauseelement)]  # noqa: RUF012

    def __init__(self, expr: ColumnElement[Any]) -> None:
        self.expr = expr
        self.type = String()

    @property
    def _from_objects(self) -> list[Any]:
        return self.expr._from_objects


@compiles(_CodepointOrder)
def _codepoint_default(element: _CodepointOrder, compiler: Any, **kw: Any) -> str:
    return cast(str, compiler.process(element.expr, **kw))  # SQLite's BINARY already is


@compiles(_CodepointOrder, "postgresql")
def _codepoint_postgresql(element: _CodepointOrder, compiler: Any, **kw: Any) -> str:
    return f'({compiler.process(element.expr, **kw)}) COLLATE "C"'


class _JsonFlag(ColumnElement[bool]):
    """A JSON boolean (extracted as text) is true / false; any other JSON value is neither."""

    inherit_cache = True
    type = Boolean()
    _traverse_internals: _TraverseInternalsType = [  # noqa: RUF012
        ("expr", InternalTraversal.dp_clauseelement),
        ("flag", InternalTraversal.dp_boolean),
    ]

    def __init__(self, expr: ColumnElement[Any], flag: bool) -> None:
        self.expr, self.flag = expr, flag

    @property
    def _from_objects(self) -> list[Any]:
        return self.expr._from_objects


@compiles(_JsonFlag, "sqlite")
def _json_flag_sqlite(element: _JsonFlag, compiler: Any, **kw: Any) -> str:
    # json_extract gives 1/0 for true/false, which the text extraction renders as '1'/'0'.
    return f"(({compiler.process(element.expr, **kw)}) = '{1 if element.flag else 0}')"


@compiles(_JsonFlag)
def _json_flag_default(element: _JsonFlag, compiler: Any, **kw: Any) -> str:
    return f"(({compiler.process(element.expr, **kw)}) = '{'true' if element.flag else 'false'}')"


class _Folded(ColumnElement[Any]):
    """lower() that folds all of Unicode on both databases (SQLite: engine.py's muster_lower)."""

    inherit_cache = True
    _traverse_internals: _TraverseInternalsType = [("expr", InternalTraversal.dp_clauseelement)]  # noqa: RUF012

    def __init__(self, expr: ColumnElement[Any]) -> None:
        self.expr = expr
        self.type = String()

    @property
    def _from_objects(self) -> list[Any]:
        return self.expr._from_objects


@compiles(_Folded, "sqlite")
def _folded_sqlite(element: _Folded, compiler: Any, **kw: Any) -> str:
    return f"muster_lower({compiler.process(element.expr, **kw)})"


@compiles(_Folded)
def _folded_default(element: _Folded, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.expr, **kw)})"


_KEY = re.compile(r"[A-Za-z][A-Za-z0-9]*")


class _JsonElements(FunctionElement[Any]):
    """The elements of a top-level JSON array of a document, one row each (`value`)."""

    name = "json_elements"
    inherit_cache = True


@compiles(_JsonElements, "sqlite")
def _json_elements_sqlite(element: _JsonElements, compiler: Any, **kw: Any) -> str:
    document, key = list(element.clauses)
    return f"json_each({compiler.process(document, **kw)}, '$.\"{key.name}\"')"


@compiles(_JsonElements)
def _json_elements_default(element: _JsonElements, compiler: Any, **kw: Any) -> str:
    document, key = list(element.clauses)
    array = f"{compiler.process(document, **kw)} -> '{key.name}'"
    # A document whose key holds no array yields no rows instead of an error.
    return f"jsonb_array_elements(CASE WHEN jsonb_typeof({array}) = 'array' THEN {array} END)"


def _elements(document: Any, key: str) -> Any:
    if not _KEY.fullmatch(key):  # names come from our schema, never from the request
        raise ValueError(key)
    return (
        _JsonElements(document, literal_column(key))
        .table_valued(column("value", Document))
        .alias("element")
    )


# ---- leaves ----------------------------------------------------------------------------

# How a stored value compares: "key" is a lower-cased column (caseExact=false, indexed),
# "identity" a column of identity keys (userName, emails: NFKC and case folded, see
# scim/identities.py), "fold" lower-cases at query time, "exact" is caseExact; "flag" a JSON
# boolean as text, "boolean" and "dateTime" typed columns.
Kind = str


def _not_filterable(attribute: Attribute, resource: str) -> ScimError:
    return ScimError.invalid_filter(f"{attribute} is not a filterable attribute of {resource}")


def _leaf(expr: Compare | Has, stored: Any, kind: Kind) -> ColumnElement[bool]:
    if isinstance(expr, Has):
        if kind in ("key", "identity", "fold", "exact"):
            return and_(stored.is_not(None), stored != "")
        return cast(ColumnElement[bool], stored.is_not(None))
    op, value = expr.op, expr.value
    if kind == "boolean":
        return cast(ColumnElement[bool], stored == value if op == Op.eq else stored != value)
    if kind == "flag":
        return _JsonFlag(stored, bool(value) if op == Op.eq else not value)
    if kind == "dateTime" and isinstance(value, datetime):
        return _served_time(stored, op, value)
    if not isinstance(value, str):
        raise ScimError.invalid_filter(f"{expr.attribute} needs a string value")
    if kind == "fold":
        stored, value = _Folded(stored), value.lower()
    elif kind == "key":
        value = value.lower()
    elif kind == "identity":
        value = identity_key(value)
    if op in (Op.co, Op.sw, Op.ew):
        return _TextMatch(stored, op, value)
    if op in _ORDERING:
        return _ordered(_CodepointOrder(stored), op, value)
    return cast(ColumnElement[bool], stored == value if op == Op.eq else stored != value)


def _served_time(stored: Any, op: CompareOperator, value: datetime) -> ColumnElement[bool]:
    """Compare a timestamp as it is served: meta.* go out at millisecond precision.

    Stored microseconds would otherwise make `meta.lastModified gt "<a served value>"` match
    the very resource that value was copied from.
    """
    floor = value.replace(microsecond=value.microsecond // 1000 * 1000)
    ceil = floor if floor == value else floor + _MILLISECOND
    after_floor = floor + _MILLISECOND
    conditions: dict[CompareOperator, Callable[[], Any]] = {
        Op.eq: lambda: and_(stored >= floor, stored < after_floor) if floor == value else false(),
        Op.ne: lambda: or_(stored < floor, stored >= after_floor) if floor == value else true(),
        Op.gt: lambda: stored >= after_floor,
        Op.ge: lambda: stored >= ceil,
        Op.lt: lambda: stored < ceil,
        Op.le: lambda: stored < after_floor,
    }
    if op not in conditions:
        raise ScimError.invalid_filter(f"{op.value} does not apply to a dateTime")
    return cast(ColumnElement[bool], conditions[op]())


def _ordered(stored: Any, op: CompareOperator, value: Any) -> ColumnElement[bool]:
    if isinstance(value, str) and not isinstance(stored, _CodepointOrder) and op in _ORDERING:
        stored = _CodepointOrder(stored)
    comparisons: dict[CompareOperator, Callable[[], Any]] = {
        Op.eq: lambda: stored == value,
        Op.ne: lambda: stored != value,
        Op.gt: lambda: stored > value,
        Op.ge: lambda: stored >= value,
        Op.lt: lambda: stored < value,
        Op.le: lambda: stored <= value,
    }
    if op not in comparisons:
        raise ScimError.invalid_filter(f"{op.value} does not apply here")
    return cast(ColumnElement[bool], comparisons[op]())


def _string_kind(attribute: Attribute) -> Kind:
    return "exact" if attribute.case_exact else "fold"


def _build(
    expr: FilterExpr,
    leaf: Callable[[Compare | Has], ColumnElement[bool]],
    elements: Callable[[AnyElement], ColumnElement[bool]],
) -> ColumnElement[bool]:
    match expr:
        case AllOf(terms=terms):
            return and_(*(_build(term, leaf, elements) for term in terms))
        case AnyOf(terms=terms):
            return or_(*(_build(term, leaf, elements) for term in terms))
        case Negate(expr=inner):
            # NULL (an absent value) means "no match": keep NOT its exact complement.
            return not_(func.coalesce(_build(inner, leaf, elements), false()))
        case AnyElement():
            return elements(expr)
        case Compare() | Has():
            return leaf(expr)
    raise AssertionError(expr)


def _only_subs(expr: FilterExpr, allowed: set[str]) -> bool:
    return all(a.sub in allowed for a in attributes_of(expr))


def _json_leaf(element: Any, resource: str) -> Callable[[Compare | Has], ColumnElement[bool]]:
    """Leaves over the sub-attributes of one JSON array element."""

    def leaf(expr: Compare | Has) -> ColumnElement[bool]:
        attribute = expr.attribute
        if attribute.sub is None:
            raise _not_filterable(attribute, resource)
        stored = element.c.value[attribute.sub].as_string()
        if attribute.type == "boolean":
            return _leaf(expr, stored, "flag")
        if attribute.type in ("string", "reference", "binary"):
            return _leaf(expr, stored, _string_kind(attribute))
        raise _not_filterable(attribute, resource)

    return leaf


def _document_path(attribute: Attribute) -> tuple[str, ...]:
    keys = (attribute.name,) if attribute.sub is None else (attribute.name, attribute.sub)
    return (ENTERPRISE_URN, *keys) if attribute.schema == ENTERPRISE_URN else keys


# ---- Users -------------------------------------------------------------------------------


class _UserSql:
    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id

    def where(self, expr: FilterExpr) -> ColumnElement[bool]:
        return _build(expr, self.leaf, self.elements)

    def leaf(self, expr: Compare | Has) -> ColumnElement[bool]:
        attribute = expr.attribute
        if attribute.schema == USER_URN:
            name = attribute.name if attribute.sub is None else f"{attribute.name}.{attribute.sub}"
            column_kinds: dict[str, tuple[Any, Kind]] = {
                "id": (users.c.id, "exact"),
                "externalId": (users.c.external_id, "exact"),
                # user_name_key holds the userName's identity key, unique per tenant.
                "userName": (users.c.user_name_key, "identity"),
                "active": (users.c.active, "boolean"),
                "meta.created": (users.c.created_at, "dateTime"),
                "meta.lastModified": (users.c.last_modified, "dateTime"),
            }
            if name in column_kinds:
                return _leaf(expr, *column_kinds[name])
            if attribute.name == "meta":
                raise _not_filterable(attribute, "User")
            if attribute.multi_valued:  # `emails pr`: at least one element
                return self.elements(AnyElement(attribute, Has(attribute)))
        return self.document_leaf(expr)

    def document_leaf(self, expr: Compare | Has) -> ColumnElement[bool]:
        attribute = expr.attribute
        if attribute.type == "complex":  # `name pr`: any of its sub-attributes has a value
            parts = [self.document_leaf(Has(_sub(attribute, sub))) for sub in attribute.sub_names]
            return or_(*parts) if parts else false()
        stored = users.c.document[_document_path(attribute)].as_string()
        if attribute.type == "boolean":
            return _leaf(expr, stored, "flag")
        if attribute.type in ("string", "reference"):
            return _leaf(expr, stored, _string_kind(attribute))
        raise _not_filterable(attribute, "User")

    def elements(self, expr: AnyElement) -> ColumnElement[bool]:
        attribute, condition = expr.attribute, expr.condition
        whole = isinstance(condition, Has) and condition.attribute.sub is None
        if attribute.name == "emails" and not whole and _only_subs(condition, {"value"}):
            # Every email's key, the identity email's too: an index lookup.
            matches = select(user_emails.c.user_id).where(
                user_emails.c.tenant_id == self.tenant_id,
                _build(condition, lambda e: _leaf(e, user_emails.c.value_key, "identity"), _nested),
            )
            return users.c.id.in_(matches)
        if attribute.name == "groups":
            return self.groups(condition, whole)
        element = _elements(users.c.document, attribute.name)
        if whole:
            return exists(select(1).select_from(element))
        return exists(
            select(1)
            .select_from(element)
            .where(_build(condition, _json_leaf(element, "User"), _nested))
        )

    def groups(self, condition: FilterExpr, whole: bool) -> ColumnElement[bool]:
        """A user's groups are membership rows: `groups.value` / `groups.display`."""
        in_tenant = memberships.c.tenant_id == self.tenant_id
        if whole:
            return users.c.id.in_(select(memberships.c.user_id).where(in_tenant))

        def leaf(expr: Compare | Has) -> ColumnElement[bool]:
            if expr.attribute.sub == "value":
                return _leaf(expr, memberships.c.group_id, "exact")
            if expr.attribute.sub == "display":
                return _leaf(expr, groups.c.display_name_key, "key")
            raise _not_filterable(expr.attribute, "User")

        joined = memberships.join(
            groups,
            and_(
                groups.c.tenant_id == memberships.c.tenant_id,
                groups.c.id == memberships.c.group_id,
            ),
        )
        matches = (
            select(memberships.c.user_id)
            .select_from(joined)
            .where(in_tenant, _build(condition, leaf, _nested))
        )
        return users.c.id.in_(matches)


def _sub(attribute: Attribute, sub: str) -> Attribute:
    return Attribute(attribute.schema, attribute.name, sub, "string", False, attribute.multi_valued)


def _nested(expr: AnyElement) -> ColumnElement[bool]:
    raise ScimError.invalid_filter(f"{expr.attribute}: a value filter cannot nest another one")


# ---- Groups ------------------------------------------------------------------------------


class _GroupSql:
    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id

    def where(self, expr: FilterExpr) -> ColumnElement[bool]:
        return _build(expr, self.leaf, self.elements)

    def leaf(self, expr: Compare | Has) -> ColumnElement[bool]:
        attribute = expr.attribute
        name = attribute.name if attribute.sub is None else f"{attribute.name}.{attribute.sub}"
        column_kinds: dict[str, tuple[Any, Kind]] = {
            "id": (groups.c.id, "exact"),
            "externalId": (groups.c.external_id, "exact"),
            # display_name_key is lower-cased: displayName is caseExact=false, unique per tenant.
            "displayName": (groups.c.display_name_key, "key"),
            "meta.created": (groups.c.created_at, "dateTime"),
            "meta.lastModified": (groups.c.last_modified, "dateTime"),
        }
        if name in column_kinds:
            return _leaf(expr, *column_kinds[name])
        if attribute.name == "members" and attribute.sub is None and isinstance(expr, Has):
            return self.elements(AnyElement(attribute, expr))
        raise _not_filterable(attribute, "Group")

    def elements(self, expr: AnyElement) -> ColumnElement[bool]:
        """A group's members are membership rows: `members.value` is an indexed lookup."""
        in_tenant = memberships.c.tenant_id == self.tenant_id
        condition = expr.condition
        if isinstance(condition, Has) and condition.attribute.sub is None:
            return groups.c.id.in_(select(memberships.c.group_id).where(in_tenant))

        def leaf(inner: Compare | Has) -> ColumnElement[bool]:
            if inner.attribute.sub == "value":
                return _leaf(inner, memberships.c.user_id, "exact")
            raise _not_filterable(inner.attribute, "Group")

        matches = select(memberships.c.group_id).where(in_tenant, _build(condition, leaf, _nested))
        return groups.c.id.in_(matches)


def _sort_key(sort_by: str) -> str:
    key = sort_by.strip().lower()
    for urn in (USER_URN.lower() + ":", GROUP_URN.lower() + ":"):
        key = key.removeprefix(urn)
    return key


def user_order(sort_by: str | None, descending: bool) -> list[ColumnElement[Any]]:
    """ORDER BY for sortBy over Users (RFC 7644 §3.4.2.3); ties broken by id for stable pages."""
    if sort_by is None:
        return [users.c.id]
    columns: dict[str, Any] = {
        "username": users.c.user_name_key,
        "id": users.c.id,
        "externalid": users.c.external_id,
        # A multi-valued attribute sorts by its primary value: the identity email.
        "emails": users.c.email_key,
        "emails.value": users.c.email_key,
        "meta.created": users.c.created_at,
        "meta.lastmodified": users.c.last_modified,
        "active": users.c.active,
        "displayname": func.lower(users.c.document["displayName"].as_string()),
        "name.givenname": func.lower(users.c.document[("name", "givenName")].as_string()),
        "name.familyname": func.lower(users.c.document[("name", "familyName")].as_string()),
    }
    column = columns.get(_sort_key(sort_by))
    if column is None:
        raise ScimError.invalid_value(
            f"sortBy {sort_by!r} is not supported; sort by one of userName, id, externalId, "
            "emails, displayName, name.givenName, name.familyName, active, meta.created, "
            "meta.lastModified"
        )
    return [column.desc() if descending else column.asc(), users.c.id]


def group_order(sort_by: str | None, descending: bool) -> list[ColumnElement[Any]]:
    """ORDER BY for sortBy over Groups; ties broken by id for stable pages."""
    if sort_by is None:
        return [groups.c.id]
    columns: dict[str, Any] = {
        "displayname": groups.c.display_name_key,
        "id": groups.c.id,
        "externalid": groups.c.external_id,
        "meta.created": groups.c.created_at,
        "meta.lastmodified": groups.c.last_modified,
    }
    column = columns.get(_sort_key(sort_by))
    if column is None:
        raise ScimError.invalid_value(
            f"sortBy {sort_by!r} is not supported; sort by one of displayName, id, externalId, "
            "meta.created, meta.lastModified"
        )
    return [column.desc() if descending else column.asc(), groups.c.id]
