"""Group bodies and group PatchOps, read into a GroupInput and a list of membership steps."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from scim2_models.path import AttrPath, CompareOperator, Comparison, LogicalExpr, ValuePath
from scim2_models.path import LogicalOperator as Logic

from muster.errors import ScimError
from muster.scim import client_quirks
from muster.scim.patching import PatchOperation, parse_path
from muster.scim.resources import MAX_INDEXED_LENGTH, check_length
from muster.scim.schemas import GROUP_URN

ENTRA_EXTRA_GROUP_SCHEMA = client_quirks.ENTRA_EXTRA_GROUP_SCHEMA
_SERVER_OWNED = {"id", "meta", "schemas"}
# Steps that run as one when they follow each other: the union of their ids is the same change.
_MERGEABLE = frozenset({"add", "remove", "remove_all"})
# Membership steps one group PatchOp may make once consecutive adds (or removes) are joined.
# Each step is a few set-based statements (~0.4 ms) whatever its size; IdPs send one or two.
MAX_MEMBER_STEPS = 100


@dataclass(slots=True)
class GroupInput:
    """A validated Group body; `members` is None when the body does not mention them."""

    document: dict[str, Any]
    display_name: str
    external_id: str | None
    members: list[str] | None
    quirks: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MemberStep:
    """One membership change: add, remove or replace these user ids; remove_all empties."""

    action: str  # add | remove | replace | remove_all
    user_ids: tuple[str, ...] = ()


@dataclass(slots=True)
class GroupChange:
    """What a group PATCH does: attribute changes, then membership steps in request order."""

    display_name: str | None = None
    external_id: str | None = None
    clears_external_id: bool = False
    steps: list[MemberStep] = field(default_factory=list)

    @property
    def changes_attributes(self) -> bool:
        return (
            self.display_name is not None or self.external_id is not None or self.clears_external_id
        )


def _display_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ScimError.invalid_value("displayName is required and must be a non-empty string")
    check_length("displayName", value)
    return value


def member_ids(value: Any, where: str) -> tuple[str, ...]:
    """Read a members value (a list of {"value": id, ...}, or one such object) into ids."""
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    ids = []
    for index, item in enumerate(items):
        member_id = item.get("value") if isinstance(item, dict) else None
        if not isinstance(member_id, str) or not member_id:
            raise ScimError.invalid_value(
                f"{where}[{index}].value must be the id of a user (a non-empty string)"
            )
        ids.append(member_id)
    return tuple(dict.fromkeys(ids))


def could_be_id(value: str) -> bool:
    """Tell whether a string fits an id column at all; longer ones name nobody."""
    return len(value) <= MAX_INDEXED_LENGTH


def parse_group(payload: Any) -> GroupInput:
    """Check a Group body (RFC 7643 §4.2): displayName, optional externalId and members."""
    if not isinstance(payload, dict):
        raise ScimError.invalid_syntax("the request body must be a JSON object")
    quirks: list[str] = []
    fields = {k.lower(): v for k, v in payload.items()}
    schemas = fields.get("schemas")
    if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
        raise ScimError.invalid_value(f"schemas is required and must include {GROUP_URN!r}")
    if GROUP_URN.lower() not in {s.lower() for s in schemas}:
        raise ScimError.invalid_value(f"schemas must include {GROUP_URN!r}")
    if client_quirks.entra_extra_group_schemas(schemas) is not None:
        quirks.append(client_quirks.ENTRA_EXTRA_GROUP_SCHEMA)
    display_name = _display_name(fields.get("displayname"))
    external_id = fields.get("externalid")
    if external_id is not None and not isinstance(external_id, str):
        raise ScimError.invalid_value("externalId must be a string")
    check_length("externalId", external_id)
    document: dict[str, Any] = {"schemas": [GROUP_URN], "displayName": display_name}
    if external_id is not None:
        document["externalId"] = external_id
    members = member_ids(fields["members"], "members") if "members" in fields else None
    listed = list(members) if members is not None else None
    return GroupInput(document, display_name, external_id, listed, quirks)


def _filtered_ids(node: Any, text: str) -> tuple[str, ...]:
    """members[value eq "a"] or members[value eq "a" or value eq "b"] -> ids."""
    if isinstance(node, Comparison):
        is_value_eq = node.attr_path.attr.lower() == "value" and node.op == CompareOperator.eq
        if is_value_eq and isinstance(node.value, str):
            return (node.value,)
    elif isinstance(node, LogicalExpr) and node.op == Logic.or_:
        ids: list[str] = []
        for term in node.terms:
            ids.extend(_filtered_ids(term, text))
        return tuple(dict.fromkeys(ids))
    raise ScimError.invalid_path(
        f'{text!r}: members can be selected by value only, e.g. members[value eq "<user id>"]'
    )


def plan_group_patch(
    operations: list[PatchOperation], quirks: list[str] | None = None
) -> GroupChange:
    """Turn PatchOp operations on a group into attribute changes and membership steps.

    The names of the client quirks absorbed on the way are appended to `quirks`.
    """
    change = GroupChange()
    noted: list[str] = [] if quirks is None else quirks
    for operation in operations:
        if operation.path is None:
            _without_path(change, operation, noted)
            continue
        node = parse_path(operation.path)
        if isinstance(node, ValuePath) and node.attr_path.attr.lower() == "members":
            if operation.op != "remove" or node.sub_attr is not None:
                raise ScimError.invalid_path(
                    f"{operation.path!r}: add or replace members as a list; a filter only removes"
                )
            change.steps.append(
                MemberStep("remove", _filtered_ids(node.val_filter, operation.path))
            )
            continue
        if not isinstance(node, AttrPath) or node.sub_attr is not None:
            raise ScimError.invalid_path(f"{operation.path!r} names no attribute of a group")
        if node.uri is not None and node.uri.lower() != GROUP_URN.lower():
            raise ScimError.invalid_path(f"{operation.path!r} names no attribute of a group")
        _at(change, operation.op, node.attr.lower(), operation.value, operation.path, noted)
    change.steps = _merged(change.steps)
    if len(change.steps) > MAX_MEMBER_STEPS:
        raise ScimError.invalid_value(
            f"Operations change members in {len(change.steps)} separate steps; at most "
            f"{MAX_MEMBER_STEPS} are accepted (consecutive adds, or removes, count as one)"
        )
    return change


def _merged(steps: list[MemberStep]) -> list[MemberStep]:
    """Join consecutive adds (or removes) into one step, in one pass.

    Okta removes members one operation each; every step costs the same few statements
    whatever its size, so a thousand of them cost a thousand times one.
    """
    merged: list[MemberStep] = []
    for action, run in itertools.groupby(steps, key=lambda step: step.action):
        if action in _MERGEABLE:
            ids = dict.fromkeys(user_id for step in run for user_id in step.user_ids)
            merged.append(MemberStep(action, tuple(ids)))
        else:
            merged.extend(run)
    return merged


def _without_path(change: GroupChange, operation: PatchOperation, quirks: list[str]) -> None:
    # Okta renames with {"op":"replace","value":{"id":"<gid>","displayName":"…"}} and sends it
    # with every membership update; the read-only id is not a change.
    if not isinstance(operation.value, dict):
        raise ScimError.invalid_value(f"{operation.op} without a path needs an object value")
    for key, value in operation.value.items():
        lowered = key.lower()
        if lowered in _SERVER_OWNED:
            continue
        _at(change, operation.op, lowered, value, key, quirks)


def _at(
    change: GroupChange, op: str, attribute: str, value: Any, text: str, quirks: list[str]
) -> None:
    if attribute == "displayname":
        if op == "remove":
            raise ScimError.invalid_value("displayName is required and cannot be removed")
        change.display_name = _display_name(value)
    elif attribute == "externalid":
        if op == "remove" or value is None:
            change.external_id, change.clears_external_id = None, True
        elif isinstance(value, str):
            check_length("externalId", value)
            change.external_id, change.clears_external_id = value, False
        else:
            raise ScimError.invalid_value("externalId must be a string")
    elif attribute == "members":
        if op == "add":
            change.steps.append(MemberStep("add", member_ids(value, "members")))
        elif op == "replace":
            change.steps.append(MemberStep("replace", member_ids(value, "members")))
        else:
            # Entra's default remove names the members in `value`: remove only those
            # (directory-scimple#436 removed everyone here).
            listed = client_quirks.entra_remove_by_value(value)
            if listed is None:
                change.steps.append(MemberStep("remove_all"))
            else:
                quirks.append(client_quirks.ENTRA_REMOVE_BY_VALUE)
                change.steps.append(MemberStep("remove", member_ids(listed, "members")))
    elif attribute in _SERVER_OWNED:
        raise ScimError.mutability(f"{attribute} is read-only and cannot be changed")
    else:
        raise ScimError.invalid_path(f"{text!r} names no attribute of a group")
