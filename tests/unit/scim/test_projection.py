"""Projection: attributes / excludedAttributes on Group and User bodies (RFC 7644 §3.4.2.5)."""

from __future__ import annotations

from typing import Any

import pytest

from muster.errors import ScimError, ScimType
from muster.scim.projection import MAX_ATTRIBUTE_NAMES, Projection
from tests.factories import ENTERPRISE_URN, USER_URN
from tests.group_factories import GROUP_URN

pytestmark = pytest.mark.unit


def _group() -> dict[str, Any]:
    return {
        "schemas": [GROUP_URN],
        "id": "g1",
        "displayName": "Ops",
        "externalId": "e1",
        "members": [
            {"value": "u1", "display": "ann", "type": "User", "$ref": "https://x/Users/u1"},
            {"value": "u2", "display": "bob", "type": "User", "$ref": "https://x/Users/u2"},
        ],
        "meta": {"resourceType": "Group", "location": "https://x/Groups/g1"},
    }


def _user() -> dict[str, Any]:
    return {
        "schemas": [USER_URN, ENTERPRISE_URN],
        "id": "u1",
        "userName": "ann@example.com",
        "name": {"givenName": "Ann", "familyName": "Lee"},
        "groups": [{"value": "g1", "display": "Ops"}],
        ENTERPRISE_URN: {"employeeNumber": "7", "department": "R&D"},
        "meta": {"resourceType": "User"},
    }


def test_no_parameters_return_everything_untouched() -> None:
    projection = Projection.parse(None, None)
    body = _group()
    assert projection.is_everything and not projection.is_named
    assert projection.apply(body) is body
    assert projection.wants("members")


def test_empty_parameters_count_as_not_named() -> None:
    assert Projection.parse("", " , ").is_everything


def test_excluded_members_drops_members_and_keeps_the_rest() -> None:
    projection = Projection.parse(None, "members")
    assert projection.is_named
    assert not projection.wants("members")
    body = projection.apply(_group())
    assert "members" not in body
    assert body["displayName"] == "Ops"
    assert body["meta"]["resourceType"] == "Group"


def test_attributes_display_name_keeps_only_it_and_the_always_returned() -> None:
    projection = Projection.parse("displayName", None)
    assert not projection.wants("members")
    assert projection.wants("id") and projection.wants("displayName")
    assert projection.apply(_group()) == {"schemas": [GROUP_URN], "id": "g1", "displayName": "Ops"}


def test_attribute_names_are_case_insensitive() -> None:
    assert Projection.parse("DISPLAYNAME", None).apply(_group())["displayName"] == "Ops"
    assert "members" not in Projection.parse(None, "Members").apply(_group())
    assert not Projection.parse(None, "MEMBERS").wants("members")


def test_core_urn_prefix_names_the_same_attribute() -> None:
    projection = Projection.parse(f"{GROUP_URN}:displayName", None)
    assert projection.apply(_group()) == {"schemas": [GROUP_URN], "id": "g1", "displayName": "Ops"}


def test_id_and_schemas_cannot_be_excluded() -> None:
    body = Projection.parse(None, "id,schemas").apply(_group())
    assert body["id"] == "g1" and body["schemas"] == [GROUP_URN]


def test_sub_attribute_of_members_picks_that_field_of_each_member() -> None:
    projection = Projection.parse("members.value", None)
    assert projection.wants("members")
    assert projection.apply(_group())["members"] == [{"value": "u1"}, {"value": "u2"}]


def test_two_sub_attributes_of_members_are_merged() -> None:
    body = Projection.parse("members.value,members.display", None).apply(_group())
    assert body["members"] == [{"value": "u1", "display": "ann"}, {"value": "u2", "display": "bob"}]


def test_excluded_sub_attribute_keeps_the_attribute_and_drops_the_field() -> None:
    projection = Projection.parse(None, "members.display")
    assert projection.wants("members")
    body = projection.apply(_group())
    assert [m.get("display") for m in body["members"]] == [None, None]
    assert [m["value"] for m in body["members"]] == ["u1", "u2"]


def test_sub_attribute_of_a_complex_attribute() -> None:
    assert Projection.parse("meta.location", None).apply(_group())["meta"] == {
        "location": "https://x/Groups/g1"
    }
    assert Projection.parse("name.givenName", None).apply(_user())["name"] == {"givenName": "Ann"}


def test_extension_attribute_by_urn() -> None:
    body = Projection.parse(f"{ENTERPRISE_URN}:employeeNumber", None).apply(_user())
    assert body[ENTERPRISE_URN] == {"employeeNumber": "7"}
    assert "userName" not in body


def test_unknown_attribute_is_simply_absent() -> None:
    assert Projection.parse("nickName", None).apply(_group()) == {
        "schemas": [GROUP_URN],
        "id": "g1",
    }


def test_excluding_groups_of_a_user_drops_them() -> None:
    projection = Projection.parse(None, "groups")
    assert not projection.wants("groups")
    assert "groups" not in projection.apply(_user())


def test_attributes_and_excluded_attributes_together_are_refused() -> None:
    with pytest.raises(ScimError) as caught:
        Projection.parse("displayName", "members")
    assert caught.value.status == 400
    assert caught.value.scim_type == ScimType.INVALID_VALUE


def test_apply_does_not_change_the_given_body() -> None:
    body = _group()
    Projection.parse(None, "members.display").apply(body)
    Projection.parse(None, "members").apply(body)
    assert body == _group()


def test_excluded_attributes_can_name_a_whole_extension_by_its_urn() -> None:
    urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    body = {"id": "1", "userName": "ann", urn: {"employeeNumber": "7"}}

    assert Projection.parse(None, urn).apply(body) == {"id": "1", "userName": "ann"}


def test_attributes_can_name_an_extension_attribute_by_its_full_path() -> None:
    urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    body = {"id": "1", "userName": "ann", urn: {"employeeNumber": "7", "department": "R&D"}}

    projected = Projection.parse(f"{urn}:department", None).apply(body)

    assert projected == {"id": "1", urn: {"department": "R&D"}}


def test_projection_refuses_more_attribute_names_than_the_limit() -> None:
    names = ",".join(["displayName"] * (MAX_ATTRIBUTE_NAMES + 1))

    with pytest.raises(ScimError) as caught:
        Projection.parse(names, None)

    assert caught.value.scim_type == ScimType.INVALID_VALUE
    assert "attributes" in caught.value.detail and str(MAX_ATTRIBUTE_NAMES) in caught.value.detail


def test_excluded_attributes_are_held_to_the_same_limit() -> None:
    with pytest.raises(ScimError) as caught:
        Projection.parse(None, ",".join(["members.display"] * (MAX_ATTRIBUTE_NAMES + 1)))

    assert "excludedAttributes" in caught.value.detail


def test_a_name_repeated_up_to_the_limit_projects_as_once() -> None:
    many = ",".join(["members.value", "MEMBERS.display"] * (MAX_ATTRIBUTE_NAMES // 2))

    assert Projection.parse(many, None).apply(_group()) == Projection.parse(
        "members.value,members.display", None
    ).apply(_group())


def test_a_whole_attribute_covers_its_sub_attributes_in_either_order() -> None:
    for names in ("members,members.value", "members.value,members"):
        projection = Projection.parse(names, None)

        assert projection.apply(_group())["members"] == _group()["members"]
        assert not projection.shapes_items_of("members")


def test_excluding_an_attribute_and_one_of_its_sub_attributes_drops_it_whole() -> None:
    # Was a KeyError (a 500): the whole attribute was dropped before its sub-attribute.
    body = Projection.parse(None, "members,members.display").apply(_group())

    assert "members" not in body and body["displayName"] == "Ops"


def test_a_long_list_of_unknown_names_keeps_only_the_always_returned() -> None:
    # apply looks each key of the body up in the parsed names; the old one walked the client's
    # list for every resource: 1 MiB of names over a page of 1,000 users ran 100 s.
    projection = Projection.parse(",".join(f"urn:x:{i}:nothing" for i in range(999)), None)
    body = _user()

    assert projection.apply(body) == {"schemas": body["schemas"], "id": "u1"}
    assert projection.wants("id") and not projection.wants("userName")
