"""Known Entra/Okta deviations from RFC 7643/7644, normalised here, one function per quirk.

Each function returns the normalised value, or None (False) when its quirk does not apply; the
caller then records the quirk's name in the provisioning log, so an admin can see which
deviation was absorbed. The names are short on purpose: a request's quirks are stored together,
comma-separated, in a 200-character log column.

Microsoft Entra ID is the client of every quirk here. Its request shapes are documented in:
- ENTRA_TUTORIAL: https://learn.microsoft.com/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups
- ENTRA_KNOWN_ISSUES: https://learn.microsoft.com/entra/identity/app-provisioning/application-provisioning-config-problem-scim-compatibility
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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

from muster.scim.schemas import (
    COMMON_ATTRIBUTES,
    ENTERPRISE_ATTRIBUTES,
    GROUP_URN,
    USER_ATTRIBUTES,
    AttributeSpec,
)

ENTRA_STRING_BOOLEAN = "entra_string_boolean"
ENTRA_CAPITALISED_OP = "entra_capitalised_op"
ENTRA_MANAGER_AS_STRING = "entra_manager_as_string"
ENTRA_MANAGER_AS_LIST = "entra_manager_as_list"
ENTRA_DOTTED_KEY = "entra_dotted_key"
ENTRA_URN_KEY = "entra_urn_key"
ENTRA_FILTERED_NEW_ITEM = "entra_filtered_new_item"
ENTRA_UNQUALIFIED_PATH = "entra_unqualified_path"
ENTRA_EXTRA_GROUP_SCHEMA = "entra_extra_group_schema"
ENTRA_REMOVE_BY_VALUE = "entra_remove_by_value"
ENTRA_FILTERED_PATH_FILTER = "entra_path_filter"
ENTRA_UNQUALIFIED_FILTER = "entra_unqualified_filter"

_BOOLEAN_STRINGS = {"true": True, "false": False}
# Extension attributes a client may name without their URN: those no core attribute shadows.
_BARE_EXTENSION_NAMES = (
    frozenset(ENTERPRISE_ATTRIBUTES) - set(USER_ATTRIBUTES) - set(COMMON_ATTRIBUTES)
)
# A lone comparison on any other attribute shows no filter quirk (see user_filter_quirks):
# the bare extension names, `active`, and the multi-valued attributes that carry `primary`.
_FILTER_SLOW_PATH_NAMES = (
    _BARE_EXTENSION_NAMES
    | {name for name, spec in USER_ATTRIBUTES.items() if spec.sub("primary") is not None}
    | {"active"}
)


def entra_string_boolean(value: Any) -> bool | None:
    """Entra sends booleans as "True"/"False" strings (SCIMReferenceCode#21); read them.

    Without the aadOptscim062020 flag Entra disables a user with
    `{"op":"Replace","path":"active","value":"False"}` (ENTRA_KNOWN_ISSUES), and Microsoft's
    reference tests POST `"active":"True"`. Every boolean goes through here: `active`,
    `emails.primary` and the other `primary` flags, and boolean filter literals.
    https://github.com/AzureAD/SCIMReferenceCode/issues/21
    """
    if isinstance(value, str):
        return _BOOLEAN_STRINGS.get(value.strip().lower())
    return None


def entra_capitalised_op(op: str) -> str:
    """Entra writes PATCH ops as "Add", "Replace", "Remove"; RFC 7644 spells them in lower case.

    ENTRA_TUTORIAL, "General": "Microsoft Entra ID emits the values of op as Add, Replace,
    and Remove."
    """
    return op.lower()


def entra_manager_as_string(value: Any) -> dict[str, Any] | None:
    """Entra may send the enterprise `manager` as a bare id string (directory-scimple#1242).

    https://github.com/apache/directory-scimple/issues/1242
    """
    if isinstance(value, str):
        return {"value": value}
    return None


def entra_manager_as_list(value: Any) -> Any:
    """Entra wraps the single-valued `manager` in a one-element array.

    `{"op":"Add","path":"manager","value":[{"$ref":"…/Users/<id>","value":"<id>"}]}`
    (ENTRA_TUTORIAL, older revision, example 5).
    """
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return None


def entra_dotted_key(key: str) -> str | None:
    """Read a key of a no-path replace value that is an attribute path, as Entra sends it.

    With the aadOptscim062020 flag Entra sends
    `{"op":"replace","value":{"name.givenName":"Kkom","name.familyName":"Unua",…}}`
    (ENTRA_KNOWN_ISSUES, "Requests to replace multiple attributes"). RFC 7644 §3.5.2.3 wants
    attribute names there; the keys are paths. Returns the path, or None for a plain name.
    """
    if ("." in key or "[" in key) and key[:4].lower() != "urn:":
        return key
    return None


def entra_urn_key(key: str, schema_urns: Iterable[str]) -> str | None:
    """Read a key of a no-path replace value that is an extension attribute's full URN path.

    Entra sends `"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":
    "Aklq"` inside a no-path replace (ENTRA_KNOWN_ISSUES); RFC 7644 §3.5.2.3 would nest it
    under the extension's URN. `schema_urns` holds the resource's schema URNs: a key that *is*
    one of them is the RFC's form, not this quirk. Returns the path, or None.
    """
    if key[:4].lower() != "urn:":
        return None
    lowered = key.lower()
    if any(urn.lower() == lowered for urn in schema_urns):
        return None
    return key


def entra_filtered_new_item(node: FilterNode, spec: AttributeSpec) -> dict[str, Any] | None:
    """Build the element an Entra add/replace on `emails[type eq "work"].value` aims at.

    Entra PATCHes `emails[type eq "work"].value`, `addresses[type eq "work"].streetAddress`,
    `phoneNumbers[type eq "mobile"].value` and the like (ENTRA_TUTORIAL, attribute mapping
    table and "Update User [Multi-valued properties]") also when the user has no such element
    yet, where RFC 7644 §3.5.2.3 would answer noTarget (ssoready#228). The new element takes
    the filter's equality terms (`{"type": "work"}`); None when the filter is not made of them.
    """
    if isinstance(node, Comparison) and node.op == CompareOperator.eq:
        sub = spec.sub(node.attr_path.attr)
        return {sub.name: node.value} if sub is not None else None
    if isinstance(node, LogicalExpr) and node.op == LogicalOperator.and_:
        seed: dict[str, Any] = {}
        for term in node.terms:
            part = entra_filtered_new_item(term, spec)
            if part is None:
                return None
            seed.update(part)
        return seed
    return None


def entra_unqualified_path(
    attr: str, extensions: Mapping[str, Mapping[str, AttributeSpec]]
) -> tuple[str, AttributeSpec] | None:
    """Find the extension attribute a PATCH names without its URN (Entra's `"path":"manager"`).

    `{"op":"Add","path":"manager","value":[…]}` (ENTRA_TUTORIAL, older revision, example 5):
    `manager` belongs to the enterprise extension, so RFC 7644 would need its full URN path.
    Returns (extension URN, attribute) when exactly one extension defines the name.
    """
    found = [
        (urn, attributes[attr.lower()])
        for urn, attributes in extensions.items()
        if attr.lower() in attributes
    ]
    return found[0] if len(found) == 1 else None


def entra_extra_group_schemas(schemas: list[str]) -> list[str] | None:
    """Drop the schema URIs Entra adds to a Group create besides the core Group schema.

    Entra creates groups with `"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group",
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"]`
    (ENTRA_TUTORIAL, "Create Group"); the second defines nothing we keep. Returns the schemas
    we serve, or None when there was nothing extra.
    """
    if len(schemas) <= 1:
        return None
    return [GROUP_URN]


def entra_remove_by_value(value: Any) -> list[Any] | None:
    """Read the members an Entra `remove` on path `members` names in its value.

    Without the aadOptscim062020 flag Entra removes a member with
    `{"op":"Remove","path":"members","value":[{"value":"u1091"}]}` (ENTRA_KNOWN_ISSUES). By
    RFC 7644 §3.5.2.2 a remove on `members` with no filter empties the group, which is how
    other servers lost every member (directory-scimple#436). Returns the listed members, or
    None when the remove carries no value (the RFC's remove-all).
    """
    if value is None:
        return None
    return value if isinstance(value, list) else [value]


def entra_path_filter(text: str) -> bool:
    """Tell whether a filter compares a filtered path's sub-attribute, as Entra matches users.

    `filter=emails[type eq "work"].value eq "user@contoso.com"` (ENTRA_TUTORIAL, "/Users":
    attributes used for uniqueness must be filterable) is not RFC 7644 grammar; scim2-models
    reads it as `emails[type eq "work" and value eq "…"]`, so this only detects it.
    """
    return "]." in text


def entra_unqualified_filter(node: FilterNode) -> bool:
    """Tell whether a filter names an extension attribute without its URN.

    Before updating a manager Entra checks it with
    `GET /Users?filter=id eq "<uid>" and manager eq "<mid>"&attributes=id` (ENTRA_TUTORIAL,
    older revision, example 4): `manager` is the enterprise extension's.
    """
    if isinstance(node, Comparison | Present):
        return _is_bare_extension_name(node.attr_path)
    if isinstance(node, LogicalExpr):
        return any(entra_unqualified_filter(term) for term in node.terms)
    if isinstance(node, Not):
        return entra_unqualified_filter(node.expr)
    if isinstance(node, ValuePath):
        return _is_bare_extension_name(node.attr_path)
    return False


def entra_string_boolean_filter(node: FilterNode) -> bool:
    """Tell whether a filter compares a boolean attribute with a "True"/"False" string.

    Entra's string booleans (see entra_string_boolean) also reach filters, e.g.
    `active eq "False"`; the filter translation reads them through entra_string_boolean.
    """
    if isinstance(node, Comparison):
        return isinstance(node.value, str) and _is_boolean(node.attr_path)
    if isinstance(node, LogicalExpr):
        return any(entra_string_boolean_filter(term) for term in node.terms)
    if isinstance(node, Not):
        return entra_string_boolean_filter(node.expr)
    if isinstance(node, ValuePath):
        return entra_string_boolean_filter(node.val_filter)
    return False


def _is_boolean(path: AttrPath) -> bool:
    # `primary` is the boolean sub-attribute of every multi-valued attribute (RFC 7643 §2.4).
    name = (path.sub_attr or path.attr).lower()
    if name == "primary":
        return True
    return path.sub_attr is None and name == "active"


def _is_bare_extension_name(path: AttrPath) -> bool:
    return path.uri is None and path.attr.lower() in _BARE_EXTENSION_NAMES


def user_filter_quirks(text: str, node: FilterNode) -> list[str]:
    """The Entra filter quirks a /Users filter shows, for the provisioning log."""
    # Okta's and Entra's existence checks (`userName eq "…"`) come first and cost three checks.
    if (
        isinstance(node, Comparison)
        and "]." not in text
        and node.attr_path.attr.lower() not in _FILTER_SLOW_PATH_NAMES
    ):
        return []
    quirks = []
    if entra_path_filter(text):
        quirks.append(ENTRA_FILTERED_PATH_FILTER)
    if entra_unqualified_filter(node):
        quirks.append(ENTRA_UNQUALIFIED_FILTER)
    if entra_string_boolean_filter(node):
        quirks.append(ENTRA_STRING_BOOLEAN)
    return quirks
