"""Filter tree -> where-clause over users or groups; unknown attribute -> invalidFilter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

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
from sqlalchemy import ColumnElement, Table, and_, exists, func, not_, or_, select, true

from muster.db.tables import GroupRow, MembershipRow, UserEmailRow, UserRow
from muster.errors import ScimError
from muster.scim import client_quirks
from muster.scim.schemas import (
    ENTERPRISE_ATTRIBUTES,
    ENTERPRISE_URN,
    GROUP_URN,
    USER_ATTRIBUTES,
    USER_URN,
)

users = cast(Table, UserRow.__table__)
user_emails = cast(Table, UserEmailRow.__table__)
groups = cast(Table, GroupRow.__table__)
memberships = cast(Table, MembershipRow.__table__)

Op = CompareOperator


def user_filter(node: FilterNode) -> ColumnElement[bool]:
    """Translate a filter over Users into SQL, using indexed columns wherever one exists."""
    if isinstance(node, LogicalExpr):
        parts = [user_filter(term) for term in node.terms]
        return and_(*parts) if node.op == LogicalOperator.and_ else or_(*parts)
    if isinstance(node, Not):
        return not_(user_filter(node.expr))
    if isinstance(node, Present):
        return _present(node.attr_path)
    if isinstance(node, Comparison):
        return _compare(node.attr_path, node.op, node.value)
    if isinstance(node, ValuePath):
        return _value_path(node)
    raise ScimError.invalid_filter(f"unsupported filter expression {node}")


def user_name_equality(node: FilterNode | None) -> str | None:
    """The value of a lone `userName eq "…"` filter (Okta's existence check), else None."""
    if (
        isinstance(node, Comparison)
        and node.op == Op.eq
        and isinstance(node.value, str)
        and node.attr_path.sub_attr is None
        and node.attr_path.attr.lower() == "username"
        and (node.attr_path.uri is None or node.attr_path.uri.lower() == USER_URN.lower())
    ):
        return node.value
    return None


def _name(path: AttrPath) -> str:
    name = path.attr.lower()
    if path.uri is not None and path.uri.lower() not in (USER_URN.lower(), ENTERPRISE_URN.lower()):
        raise ScimError.invalid_filter(f"{path.uri!r} is not a schema of User")
    return name if path.sub_attr is None else f"{name}.{path.sub_attr.lower()}"


def _string_op(column: Any, op: Op, value: Any) -> ColumnElement[bool]:
    if not isinstance(value, str):
        raise ScimError.invalid_filter(f"{op.value} needs a string value, got {value!r}")
    match op:
        case Op.eq:
            return column == value  # type: ignore[no-any-return]
        case Op.ne:
            return column != value  # type: ignore[no-any-return]
        case Op.co:
            return column.contains(value, autoescape=True)  # type: ignore[no-any-return]
        case Op.sw:
            return column.startswith(value, autoescape=True)  # type: ignore[no-any-return]
        case Op.ew:
            return column.endswith(value, autoescape=True)  # type: ignore[no-any-return]
        case Op.gt:
            return column > value  # type: ignore[no-any-return]
        case Op.ge:
            return column >= value  # type: ignore[no-any-return]
        case Op.lt:
            return column < value  # type: ignore[no-any-return]
        case Op.le:
            return column <= value  # type: ignore[no-any-return]
    raise ScimError.invalid_filter(f"unsupported operator {op}")


def _email_condition(op: Op, value: Any) -> ColumnElement[bool]:
    if not isinstance(value, str):
        raise ScimError.invalid_filter(f"emails.value needs a string value, got {value!r}")
    condition = _string_op(user_emails.c.value_key, Op.eq if op == Op.ne else op, value.lower())
    match = exists(
        select(1).where(
            user_emails.c.tenant_id == users.c.tenant_id,
            user_emails.c.user_id == users.c.id,
            condition,
        )
    )
    return not_(match) if op == Op.ne else match


def _compare(path: AttrPath, op: Op, value: Any) -> ColumnElement[bool]:
    name = _name(path)
    if name == "username":
        if not isinstance(value, str):
            raise ScimError.invalid_filter("userName needs a string value")
        # user_name_key holds the lower-cased userName (caseExact=false), indexed per tenant.
        return _string_op(users.c.user_name_key, op, value.lower())
    if name in ("emails", "emails.value"):
        return _email_condition(op, value)
    if name == "id":
        return _string_op(users.c.id, op, value)
    if name == "externalid":
        return _string_op(users.c.external_id, op, value)
    if name == "active":
        flag = value if isinstance(value, bool) else client_quirks.entra_string_boolean(value)
        if flag is None or op not in (Op.eq, Op.ne):
            raise ScimError.invalid_filter("active compares with eq or ne to true or false")
        return users.c.active == flag if op == Op.eq else users.c.active != flag
    if name in ("meta.created", "meta.lastmodified"):
        column = users.c.created_at if name == "meta.created" else users.c.last_modified
        return _date_op(column, op, value)
    return _document_op(path, op, value)


def _date_op(column: Any, op: Op, value: Any) -> ColumnElement[bool]:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ScimError.invalid_filter(f"{value!r} is not an RFC 3339 date-time") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)  # stored as naive UTC
    comparisons = {
        Op.eq: column == moment,
        Op.ne: column != moment,
        Op.gt: column > moment,
        Op.ge: column >= moment,
        Op.lt: column < moment,
        Op.le: column <= moment,
    }
    if op not in comparisons:
        raise ScimError.invalid_filter(f"{op.value} does not apply to a date-time")
    return cast(ColumnElement[bool], comparisons[op])


def _document_spec(path: AttrPath) -> tuple[list[str], bool, str]:
    """Return the JSON key path, caseExact and type for a single-valued attribute."""
    extension = path.uri is not None and path.uri.lower() == ENTERPRISE_URN.lower()
    catalogue = ENTERPRISE_ATTRIBUTES if extension else USER_ATTRIBUTES
    spec = catalogue.get(path.attr.lower())
    if spec is None and path.uri is None:
        # Entra filters on enterprise attributes by their bare name: `manager eq "<id>"`
        # (older Entra docs: `filter=id eq "…" and manager eq "…"`). Core names win.
        spec = ENTERPRISE_ATTRIBUTES.get(path.attr.lower())
        extension = spec is not None
    if spec is None or spec.returned == "never":
        raise ScimError.invalid_filter(f"{path} is not a filterable attribute of User")
    keys = [ENTERPRISE_URN, spec.name] if extension else [spec.name]
    sub_attr = path.sub_attr
    if sub_attr is None and spec.type == "complex" and not spec.multi_valued and spec.sub("value"):
        sub_attr = "value"  # a single-valued complex attribute compares by its value (manager)
    if sub_attr is not None:
        sub = spec.sub(sub_attr)
        if sub is None:
            raise ScimError.invalid_filter(f"{path} is not an attribute of User")
        spec = sub
        keys.append(sub.name)
    if spec.multi_valued or spec.type == "complex":
        raise ScimError.invalid_filter(f"filtering on {path} is not supported")
    return keys, spec.case_exact, spec.type


def _document_op(path: AttrPath, op: Op, value: Any) -> ColumnElement[bool]:
    keys, case_exact, kind = _document_spec(path)
    element = users.c.document[tuple(keys)]
    if kind == "boolean":
        flag = value if isinstance(value, bool) else client_quirks.entra_string_boolean(value)
        if flag is None or op not in (Op.eq, Op.ne):
            raise ScimError.invalid_filter(f"{path} compares with eq or ne to true or false")
        return _string_op(element.as_string(), op, "true" if flag else "false")
    column: Any = element.as_string()
    if not case_exact and isinstance(value, str):
        column, value = func.lower(column), value.lower()
    return _string_op(column, op, value)


def _present(path: AttrPath) -> ColumnElement[bool]:
    name = _name(path)
    if name in ("username", "id"):
        return true()
    if name in ("emails", "emails.value"):
        return exists(
            select(1).where(
                user_emails.c.tenant_id == users.c.tenant_id, user_emails.c.user_id == users.c.id
            )
        )
    if name == "externalid":
        return users.c.external_id.is_not(None)
    if name == "active":
        return true()
    keys, _, _ = _document_spec(path)
    return cast(ColumnElement[bool], users.c.document[tuple(keys)].as_string().is_not(None))


def _value_path(node: ValuePath) -> ColumnElement[bool]:
    # emails[value eq "x"] is the one complex filter we index; the rest arrive with issue #4.
    inner = node.val_filter
    if (
        node.attr_path.attr.lower() == "emails"
        and isinstance(inner, Comparison)
        and inner.attr_path.attr.lower() == "value"
    ):
        return _email_condition(inner.op, inner.value)
    raise ScimError.invalid_filter(f"filter {node} is not supported yet")


def group_filter(node: FilterNode) -> ColumnElement[bool]:
    """Translate a filter over Groups into SQL; `members.value eq` is an indexed EXISTS."""
    if isinstance(node, LogicalExpr):
        parts = [group_filter(term) for term in node.terms]
        return and_(*parts) if node.op == LogicalOperator.and_ else or_(*parts)
    if isinstance(node, Not):
        return not_(group_filter(node.expr))
    if isinstance(node, Present):
        name = _group_name(node.attr_path)
        if name in ("displayname", "id"):
            return true()
        if name == "externalid":
            return groups.c.external_id.is_not(None)
        if name in ("members", "members.value"):
            return exists(
                select(1).where(
                    memberships.c.tenant_id == groups.c.tenant_id,
                    memberships.c.group_id == groups.c.id,
                )
            )
        raise ScimError.invalid_filter(f"{node.attr_path} is not a filterable attribute of Group")
    if isinstance(node, Comparison):
        return _group_compare(node.attr_path, node.op, node.value)
    if isinstance(node, ValuePath):
        inner = node.val_filter
        if (
            node.attr_path.attr.lower() == "members"
            and isinstance(inner, Comparison)
            and inner.attr_path.attr.lower() == "value"
        ):
            return _group_compare(AttrPath("members", "value"), inner.op, inner.value)
    raise ScimError.invalid_filter(f"filter {node} is not supported on Groups")


def _group_name(path: AttrPath) -> str:
    if path.uri is not None and path.uri.lower() != GROUP_URN.lower():
        raise ScimError.invalid_filter(f"{path.uri!r} is not a schema of Group")
    name = path.attr.lower()
    return name if path.sub_attr is None else f"{name}.{path.sub_attr.lower()}"


def _group_compare(path: AttrPath, op: Op, value: Any) -> ColumnElement[bool]:
    name = _group_name(path)
    if name == "displayname":
        if not isinstance(value, str):
            raise ScimError.invalid_filter("displayName needs a string value")
        # display_name_key is lower-cased: displayName is caseExact=false and unique per tenant.
        return _string_op(groups.c.display_name_key, op, value.lower())
    if name == "externalid":
        return _string_op(groups.c.external_id, op, value)
    if name == "id":
        return _string_op(groups.c.id, op, value)
    if name in ("members", "members.value"):
        if op not in (Op.eq, Op.ne) or not isinstance(value, str):
            raise ScimError.invalid_filter("members.value compares with eq or ne to a user id")
        member = exists(
            select(1).where(
                memberships.c.tenant_id == groups.c.tenant_id,
                memberships.c.group_id == groups.c.id,
                memberships.c.user_id == value,
            )
        )
        return member if op == Op.eq else not_(member)
    if name in ("meta.created", "meta.lastmodified"):
        column = groups.c.created_at if name == "meta.created" else groups.c.last_modified
        return _date_op(column, op, value)
    raise ScimError.invalid_filter(f"{path} is not a filterable attribute of Group")


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
