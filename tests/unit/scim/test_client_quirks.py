"""client_quirks: each Entra deviation recognised, normalised, and noted once by its caller."""

from __future__ import annotations

from typing import Any

import pytest

from muster.scim import client_quirks
from muster.scim.groups import plan_group_patch
from muster.scim.listing import parse_filter
from muster.scim.patching import apply_operations, parse_patch
from muster.scim.schemas import ENTERPRISE_ATTRIBUTES, USER_ATTRIBUTES
from muster.services.users import USER_SCHEMA
from tests.factories import ENTERPRISE_URN, USER_URN, patch_op

pytestmark = pytest.mark.unit

USER_PATCH_QUIRKS = (
    client_quirks.ENTRA_CAPITALISED_OP,
    client_quirks.ENTRA_STRING_BOOLEAN,
    client_quirks.ENTRA_MANAGER_AS_STRING,
    client_quirks.ENTRA_MANAGER_AS_LIST,
    client_quirks.ENTRA_DOTTED_KEY,
    client_quirks.ENTRA_URN_KEY,
    client_quirks.ENTRA_FILTERED_NEW_ITEM,
    client_quirks.ENTRA_UNQUALIFIED_PATH,
)


def _document() -> dict[str, Any]:
    return {"schemas": [USER_URN], "userName": "ann@example.com", "active": True}


def _quirks_of(*operations: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    quirks: list[str] = []
    patched = apply_operations(
        _document(), parse_patch(patch_op(*operations), quirks), USER_SCHEMA, quirks
    )
    return patched, quirks


def test_every_quirk_of_one_user_patch_fits_the_log_column() -> None:
    # provisioning_log.client_quirks is a String(200): the worst case must fit.
    assert len(",".join(sorted(USER_PATCH_QUIRKS))) <= 200


@pytest.mark.parametrize(("sent", "read"), [("True", True), ("false", False), (" FALSE ", False)])
def test_entra_string_boolean_reads_strings(sent: str, read: bool) -> None:
    assert client_quirks.entra_string_boolean(sent) is read


@pytest.mark.parametrize("sent", [True, "yes", "", 1, None])
def test_entra_string_boolean_leaves_other_values(sent: Any) -> None:
    assert client_quirks.entra_string_boolean(sent) is None


@pytest.mark.parametrize("key", ["name.givenName", 'emails[type eq "work"].value'])
def test_entra_dotted_key_reads_paths(key: str) -> None:
    assert client_quirks.entra_dotted_key(key) == key


@pytest.mark.parametrize("key", ["displayName", f"{ENTERPRISE_URN}:employeeNumber"])
def test_entra_dotted_key_leaves_names_and_urns(key: str) -> None:
    assert client_quirks.entra_dotted_key(key) is None


def test_entra_urn_key_reads_an_attribute_path_but_not_a_schema_urn() -> None:
    urns = (USER_URN, ENTERPRISE_URN)

    assert client_quirks.entra_urn_key(f"{ENTERPRISE_URN}:department", urns) is not None
    assert client_quirks.entra_urn_key(ENTERPRISE_URN, urns) is None
    assert client_quirks.entra_urn_key(ENTERPRISE_URN.upper(), urns) is None
    assert client_quirks.entra_urn_key("department", urns) is None


def test_entra_unqualified_path_finds_the_enterprise_manager() -> None:
    found = client_quirks.entra_unqualified_path("Manager", {ENTERPRISE_URN: ENTERPRISE_ATTRIBUTES})

    assert found is not None
    assert (found[0], found[1].name) == (ENTERPRISE_URN, "manager")
    assert (
        client_quirks.entra_unqualified_path("nickName", {ENTERPRISE_URN: ENTERPRISE_ATTRIBUTES})
        is None
    )


def test_entra_filtered_new_item_takes_the_equality_terms() -> None:
    node = parse_filter('type eq "work" and primary eq true')

    assert client_quirks.entra_filtered_new_item(node, USER_ATTRIBUTES["emails"]) == {
        "type": "work",
        "primary": True,
    }
    assert (
        client_quirks.entra_filtered_new_item(
            parse_filter('type co "w"'), USER_ATTRIBUTES["emails"]
        )
        is None
    )


def test_entra_extra_group_schemas() -> None:
    group = "urn:ietf:params:scim:schemas:core:2.0:Group"

    assert client_quirks.entra_extra_group_schemas([group]) is None
    assert client_quirks.entra_extra_group_schemas([group, "http://schemas.microsoft.com/x"]) == [
        group
    ]


def test_entra_remove_by_value() -> None:
    assert client_quirks.entra_remove_by_value(None) is None
    assert client_quirks.entra_remove_by_value({"value": "u1"}) == [{"value": "u1"}]
    assert client_quirks.entra_remove_by_value([{"value": "u1"}]) == [{"value": "u1"}]


# Where the callers note them


def test_apply_operations_notes_dotted_and_urn_keys() -> None:
    patched, quirks = _quirks_of(
        {
            "op": "replace",
            "value": {"name.givenName": "Kkom", f"{ENTERPRISE_URN}:employeeNumber": "Aklq"},
        }
    )

    assert patched["name"] == {"givenName": "Kkom"}
    assert patched[ENTERPRISE_URN] == {"employeeNumber": "Aklq"}
    assert sorted(quirks) == [client_quirks.ENTRA_DOTTED_KEY, client_quirks.ENTRA_URN_KEY]


def test_apply_operations_notes_nothing_for_rfc_shapes() -> None:
    _, quirks = _quirks_of(
        {"op": "replace", "value": {"displayName": "Ann", ENTERPRISE_URN: {"department": "R&D"}}},
        {"op": "add", "path": f"{ENTERPRISE_URN}:manager", "value": {"value": "m1"}},
        {"op": "add", "path": "emails", "value": [{"value": "ann@example.com", "type": "work"}]},
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "ann@example.com"},
    )

    assert quirks == []


def test_apply_operations_notes_a_new_filtered_item() -> None:
    patched, quirks = _quirks_of(
        {"op": "add", "path": 'addresses[type eq "work"].locality', "value": "Redmond"}
    )

    assert patched["addresses"] == [{"type": "work", "locality": "Redmond"}]
    assert quirks == [client_quirks.ENTRA_FILTERED_NEW_ITEM]


def test_apply_operations_notes_an_unqualified_manager_path() -> None:
    patched, quirks = _quirks_of({"op": "Add", "path": "manager", "value": [{"value": "m1"}]})

    assert patched[ENTERPRISE_URN] == {"manager": [{"value": "m1"}]}  # parse_user unwraps it
    assert quirks == [client_quirks.ENTRA_CAPITALISED_OP, client_quirks.ENTRA_UNQUALIFIED_PATH]


def test_apply_operations_patches_external_id_by_path() -> None:
    patched, _ = _quirks_of({"op": "add", "path": "externalId", "value": "annlee"})

    assert patched["externalId"] == "annlee"


def test_plan_group_patch_notes_a_remove_with_a_value_list() -> None:
    quirks: list[str] = []
    operations = parse_patch(
        patch_op({"op": "Remove", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}),
        quirks,
    )

    change = plan_group_patch(operations, quirks)

    assert [(s.action, s.user_ids) for s in change.steps] == [("remove", ("u1", "u2"))]
    assert quirks == [client_quirks.ENTRA_CAPITALISED_OP, client_quirks.ENTRA_REMOVE_BY_VALUE]


def test_plan_group_patch_notes_nothing_for_a_remove_all() -> None:
    quirks: list[str] = []

    change = plan_group_patch(
        parse_patch(patch_op({"op": "remove", "path": "members"}), quirks), quirks
    )

    assert [s.action for s in change.steps] == ["remove_all"]
    assert quirks == []


# Filters


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "ann@example.com"', []),
        ('externalId eq "00u1"', []),
        (f'{ENTERPRISE_URN}:manager eq "m1"', []),
        ('emails[type eq "work"].value eq "a@b.c"', [client_quirks.ENTRA_FILTERED_PATH_FILTER]),
        ('manager eq "m1"', [client_quirks.ENTRA_UNQUALIFIED_FILTER]),
        ('id eq "u1" and manager eq "m1"', [client_quirks.ENTRA_UNQUALIFIED_FILTER]),
        ("not (department pr)", [client_quirks.ENTRA_UNQUALIFIED_FILTER]),
        ('id eq "u1" and userName sw "a"', []),
        ('active eq "False"', [client_quirks.ENTRA_STRING_BOOLEAN]),
        ("active eq false", []),
        ('emails[primary eq "True"]', [client_quirks.ENTRA_STRING_BOOLEAN]),
        ('emails.primary eq "true" and userName pr', [client_quirks.ENTRA_STRING_BOOLEAN]),
        ('emails.value eq "a@b.c"', []),
    ],
)
def test_user_filter_quirks(text: str, expected: list[str]) -> None:
    assert client_quirks.user_filter_quirks(text, parse_filter(text)) == expected
