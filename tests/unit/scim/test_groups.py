"""parse_group and plan_group_patch: Group bodies and PatchOps as Okta and Entra send them."""

from __future__ import annotations

from typing import Any

import pytest

from muster.errors import ScimError, ScimType
from muster.scim.groups import (
    ENTRA_EXTRA_GROUP_SCHEMA,
    MAX_MEMBER_STEPS,
    GroupChange,
    MemberStep,
    member_ids,
    parse_group,
    plan_group_patch,
)
from muster.scim.patching import parse_patch
from tests.factories import patch_op
from tests.group_factories import ENTRA_GROUP_URN, GROUP_URN

pytestmark = pytest.mark.unit


def _plan(*operations: dict[str, Any]) -> GroupChange:
    return plan_group_patch(parse_patch(patch_op(*operations), []))


def _refused_plan(*operations: dict[str, Any]) -> ScimError:
    with pytest.raises(ScimError) as caught:
        _plan(*operations)
    assert caught.value.status == 400
    return caught.value


def _refused_group(payload: Any) -> ScimError:
    with pytest.raises(ScimError) as caught:
        parse_group(payload)
    assert caught.value.status == 400
    return caught.value


# parse_group


def test_parse_group_reads_okta_push_with_empty_members() -> None:
    parsed = parse_group({"schemas": [GROUP_URN], "displayName": "Test SCIMv2", "members": []})
    assert parsed.display_name == "Test SCIMv2"
    assert parsed.external_id is None
    assert parsed.members == []
    assert parsed.document == {"schemas": [GROUP_URN], "displayName": "Test SCIMv2"}
    assert parsed.quirks == []


def test_parse_group_without_members_key_leaves_members_unmentioned() -> None:
    parsed = parse_group({"schemas": [GROUP_URN], "displayName": "Ops"})
    assert parsed.members is None


def test_parse_group_reads_member_ids_in_order_without_duplicates() -> None:
    parsed = parse_group(
        {
            "schemas": [GROUP_URN],
            "displayName": "Ops",
            "members": [{"value": "u2", "display": "b"}, {"value": "u1"}, {"value": "u2"}],
        }
    )
    assert parsed.members == ["u2", "u1"]


def test_parse_group_never_keeps_members_id_or_meta_in_the_document() -> None:
    parsed = parse_group(
        {
            "schemas": [GROUP_URN],
            "id": "client-chosen",
            "meta": {"resourceType": "Group"},
            "displayName": "Ops",
            "externalId": "ext-1",
            "members": [{"value": "u1"}],
        }
    )
    assert parsed.document == {
        "schemas": [GROUP_URN],
        "displayName": "Ops",
        "externalId": "ext-1",
    }


def test_parse_group_accepts_entra_extra_schema_and_notes_the_quirk() -> None:
    parsed = parse_group(
        {
            "schemas": [GROUP_URN, ENTRA_GROUP_URN],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "Group1DisplayName",
            "meta": {"resourceType": "Group"},
        }
    )
    assert parsed.external_id == "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"
    assert parsed.members is None
    assert parsed.quirks == [ENTRA_EXTRA_GROUP_SCHEMA]
    assert parsed.document["schemas"] == [GROUP_URN]


def test_parse_group_reads_attribute_names_in_any_case() -> None:
    parsed = parse_group({"Schemas": [GROUP_URN], "DISPLAYNAME": "Ops", "externalid": "e"})
    assert (parsed.display_name, parsed.external_id) == ("Ops", "e")


@pytest.mark.parametrize(
    "payload",
    [
        {"displayName": "Ops"},
        {"schemas": "urn:ietf:params:scim:schemas:core:2.0:Group", "displayName": "Ops"},
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "displayName": "Ops"},
        {"schemas": [GROUP_URN]},
        {"schemas": [GROUP_URN], "displayName": ""},
        {"schemas": [GROUP_URN], "displayName": "   "},
        {"schemas": [GROUP_URN], "displayName": 42},
        {"schemas": [GROUP_URN], "displayName": "Ops", "externalId": 7},
        {"schemas": [GROUP_URN], "displayName": "Ops", "members": [{"display": "no value"}]},
        {"schemas": [GROUP_URN], "displayName": "Ops", "members": ["u1"]},
        {"schemas": [GROUP_URN], "displayName": "Ops", "members": [{"value": ""}]},
    ],
)
def test_parse_group_refuses_bad_bodies_with_invalid_value(payload: dict[str, Any]) -> None:
    assert _refused_group(payload).scim_type == ScimType.INVALID_VALUE


def test_parse_group_refuses_a_body_that_is_not_an_object() -> None:
    assert _refused_group([{"displayName": "Ops"}]).scim_type == ScimType.INVALID_SYNTAX


def test_member_ids_accepts_one_object_or_none() -> None:
    assert member_ids({"value": "u1"}, "members") == ("u1",)
    assert member_ids(None, "members") == ()
    assert member_ids([], "members") == ()


def test_member_ids_names_the_bad_entry() -> None:
    with pytest.raises(ScimError) as caught:
        member_ids([{"value": "u1"}, {"value": 5}], "members")
    assert "members[1].value" in caught.value.detail


# plan_group_patch: Okta


def test_okta_filtered_remove_without_value_removes_that_member() -> None:
    change = _plan({"op": "remove", "path": 'members[value eq "u1"]'})
    assert change.steps == [MemberStep("remove", ("u1",))]
    assert not change.changes_attributes


def test_filtered_remove_with_or_removes_each_named_member() -> None:
    change = _plan({"op": "remove", "path": 'members[value eq "u1" or value eq "u2"]'})
    assert change.steps == [MemberStep("remove", ("u1", "u2"))]


def test_okta_add_members_with_display_reads_the_ids() -> None:
    change = _plan(
        {"op": "add", "path": "members", "value": [{"value": "u1", "display": "ann@x.com"}]}
    )
    assert change.steps == [MemberStep("add", ("u1",))]


def test_okta_remove_then_add_in_one_patch_keeps_request_order() -> None:
    change = _plan(
        {"op": "remove", "path": 'members[value eq "u1"]'},
        {"op": "add", "path": "members", "value": [{"value": "u2", "display": "b"}]},
    )
    assert change.steps == [MemberStep("remove", ("u1",)), MemberStep("add", ("u2",))]


def test_okta_full_push_replaces_members_with_the_whole_list() -> None:
    change = _plan(
        {"op": "replace", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}
    )
    assert change.steps == [MemberStep("replace", ("u1", "u2"))]


def test_replace_members_with_an_empty_list_is_a_replace_with_nobody() -> None:
    assert _plan({"op": "replace", "path": "members", "value": []}).steps == [
        MemberStep("replace", ())
    ]


def test_okta_rename_without_path_ignores_the_read_only_id() -> None:
    change = _plan({"op": "replace", "value": {"id": "g1", "displayName": "Renamed"}})
    assert change.display_name == "Renamed"
    assert change.steps == []
    assert change.changes_attributes


def test_no_path_replace_carrying_members_replaces_them() -> None:
    change = _plan({"op": "replace", "value": {"displayName": "N", "members": [{"value": "u9"}]}})
    assert change.display_name == "N"
    assert change.steps == [MemberStep("replace", ("u9",))]


# plan_group_patch: Entra


def test_entra_capitalised_add_with_null_ref_reads_the_ids() -> None:
    change = _plan({"op": "Add", "path": "members", "value": [{"$ref": None, "value": "u1"}]})
    assert change.steps == [MemberStep("add", ("u1",))]


def test_entra_remove_with_value_list_removes_only_those_members() -> None:
    # directory-scimple#436: this shape once emptied the whole group.
    change = _plan({"op": "Remove", "path": "members", "value": [{"value": "u1091"}]})
    assert change.steps == [MemberStep("remove", ("u1091",))]


def test_remove_members_without_value_empties_the_group() -> None:
    assert _plan({"op": "remove", "path": "members"}).steps == [MemberStep("remove_all")]


def test_entra_replace_display_name_by_path() -> None:
    change = _plan({"op": "Replace", "path": "displayName", "value": "Group1NewName"})
    assert change.display_name == "Group1NewName"
    assert change.steps == []


def test_display_name_by_core_urn_path() -> None:
    change = _plan({"op": "replace", "path": f"{GROUP_URN}:displayName", "value": "X"})
    assert change.display_name == "X"


def test_external_id_is_replaced_and_cleared() -> None:
    assert _plan({"op": "replace", "path": "externalId", "value": "e2"}).external_id == "e2"
    removed = _plan({"op": "remove", "path": "externalId"})
    assert removed.clears_external_id and removed.external_id is None
    nulled = _plan({"op": "replace", "path": "externalId", "value": None})
    assert nulled.clears_external_id


def test_later_operation_on_display_name_wins() -> None:
    change = _plan(
        {"op": "replace", "path": "displayName", "value": "First"},
        {"op": "replace", "path": "displayName", "value": "Second"},
    )
    assert change.display_name == "Second"


# plan_group_patch: refusals


def test_add_through_a_member_filter_is_an_invalid_path() -> None:
    error = _refused_plan(
        {"op": "add", "path": 'members[value eq "u1"]', "value": [{"value": "u1"}]}
    )
    assert error.scim_type == ScimType.INVALID_PATH


@pytest.mark.parametrize(
    "path",
    [
        'members[display eq "ann"]',
        'members[value ne "u1"]',
        'members[value eq "u1" and value eq "u2"]',
        'members[value eq "u1"].display',
    ],
)
def test_member_filters_other_than_value_eq_are_refused(path: str) -> None:
    assert _refused_plan({"op": "remove", "path": path}).scim_type == ScimType.INVALID_PATH


@pytest.mark.parametrize("path", ["bogus", "members.value", "urn:example:Other:displayName"])
def test_paths_naming_no_group_attribute_are_refused(path: str) -> None:
    error = _refused_plan({"op": "replace", "path": path, "value": "x"})
    assert error.scim_type == ScimType.INVALID_PATH


@pytest.mark.parametrize("path", ["id", "meta"])
def test_read_only_attributes_are_refused_with_mutability(path: str) -> None:
    assert _refused_plan({"op": "replace", "path": path, "value": "x"}).scim_type == (
        ScimType.MUTABILITY
    )


def test_display_name_cannot_be_removed_or_emptied() -> None:
    assert _refused_plan({"op": "remove", "path": "displayName"}).scim_type == (
        ScimType.INVALID_VALUE
    )
    assert _refused_plan({"op": "replace", "path": "displayName", "value": ""}).scim_type == (
        ScimType.INVALID_VALUE
    )


def test_no_path_operation_needs_an_object_value() -> None:
    assert _refused_plan({"op": "replace", "value": "Ops"}).scim_type == ScimType.INVALID_VALUE


def test_member_without_a_value_is_refused_naming_its_position() -> None:
    error = _refused_plan(
        {"op": "add", "path": "members", "value": [{"value": "u1"}, {"display": "x"}]}
    )
    assert error.scim_type == ScimType.INVALID_VALUE
    assert "members[1].value" in error.detail


def test_one_bad_operation_refuses_the_whole_patch() -> None:
    error = _refused_plan(
        {"op": "add", "path": "members", "value": [{"value": "u1"}]},
        {"op": "replace", "path": "nonsense", "value": 1},
    )
    assert error.scim_type == ScimType.INVALID_PATH


# plan_group_patch: consecutive membership steps run as one


def test_consecutive_member_removes_run_as_one_step() -> None:
    # Okta removes members one operation each; each step costs the same few statements.
    removes = [{"op": "remove", "path": f'members[value eq "u{i}"]'} for i in range(500)]

    change = _plan(*removes)

    assert change.steps == [MemberStep("remove", tuple(f"u{i}" for i in range(500)))]


def test_consecutive_adds_merge_but_steps_of_other_kinds_keep_their_order() -> None:
    change = _plan(
        {"op": "add", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]},
        {"op": "add", "path": "members", "value": [{"value": "u2"}, {"value": "u3"}]},
        {"op": "remove", "path": 'members[value eq "u1"]'},
        {"op": "add", "path": "members", "value": [{"value": "u4"}]},
        {"op": "replace", "path": "members", "value": [{"value": "u5"}]},
        {"op": "replace", "path": "members", "value": [{"value": "u6"}]},
    )

    assert change.steps == [
        MemberStep("add", ("u1", "u2", "u3")),
        MemberStep("remove", ("u1",)),
        MemberStep("add", ("u4",)),
        MemberStep("replace", ("u5",)),
        MemberStep("replace", ("u6",)),
    ]


def test_a_patch_alternating_adds_and_removes_past_the_step_limit_is_refused() -> None:
    operations: list[dict[str, Any]] = []
    for i in range(MAX_MEMBER_STEPS // 2 + 1):
        operations.append({"op": "add", "path": "members", "value": [{"value": f"a{i}"}]})
        operations.append({"op": "remove", "path": f'members[value eq "r{i}"]'})

    error = _refused_plan(*operations)

    assert error.scim_type == ScimType.INVALID_VALUE
    assert f"at most {MAX_MEMBER_STEPS}" in error.detail
    assert len(_plan(*operations[:MAX_MEMBER_STEPS]).steps) == MAX_MEMBER_STEPS
