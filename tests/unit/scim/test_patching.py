"""parse_patch and apply_operations: PatchOp as Okta and Entra send it (RFC 7644 §3.5.2)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from scim2_models import Path

from muster.errors import ScimError, ScimType
from muster.scim import patching
from muster.scim.nesting import MAX_DEPTH
from muster.scim.patching import (
    MAX_COMPLEX_PATH_CHARACTERS,
    MAX_OPERATIONS,
    PatchOperation,
    apply_operations,
    parse_patch,
)
from muster.scim.resources import MAX_MULTI_VALUES
from muster.services.users import USER_SCHEMA
from tests.factories import ENTERPRISE_URN, USER_URN, patch_op

pytestmark = pytest.mark.unit


def _document() -> dict[str, Any]:
    return {
        "schemas": [USER_URN],
        "userName": "ann@example.com",
        "name": {"givenName": "Ann", "familyName": "Lee"},
        "emails": [{"value": "ann@example.com", "type": "home", "primary": True}],
        "displayName": "Ann Lee",
        "active": True,
    }


def _patch(document: dict[str, Any], *operations: dict[str, Any]) -> dict[str, Any]:
    return apply_operations(document, parse_patch(patch_op(*operations), []), USER_SCHEMA)


def _refused(document: dict[str, Any], *operations: dict[str, Any]) -> ScimError:
    with pytest.raises(ScimError) as caught:
        _patch(document, *operations)
    assert caught.value.status == 400
    return caught.value


# parse_patch


def test_parse_patch_reads_operations() -> None:
    operations = parse_patch(patch_op({"op": "replace", "path": "active", "value": False}), [])

    assert operations == [PatchOperation("replace", "active", False)]


@pytest.mark.parametrize(
    ("sent", "read"),
    [("Add", "add"), ("Replace", "replace"), ("Remove", "remove"), ("REPLACE", "replace")],
)
def test_parse_patch_reads_capitalised_op_names(sent: str, read: str) -> None:
    quirks: list[str] = []
    operation = {"op": sent, "path": "displayName"}
    if read != "remove":
        operation["value"] = "Ann"

    operations = parse_patch(patch_op(operation), quirks)

    assert operations[0].op == read
    assert "entra_capitalised_op" in quirks


def test_parse_patch_does_not_note_a_quirk_for_lower_case_ops() -> None:
    quirks: list[str] = []

    parse_patch(patch_op({"op": "replace", "path": "displayName", "value": "A"}), quirks)

    assert quirks == []


def test_parse_patch_rejects_an_unknown_op() -> None:
    with pytest.raises(ScimError) as caught:
        parse_patch(patch_op({"op": "merge", "path": "displayName", "value": "A"}), [])

    assert caught.value.scim_type == ScimType.INVALID_VALUE
    assert "merge" in caught.value.detail


def test_parse_patch_requires_the_patch_op_schema() -> None:
    with pytest.raises(ScimError) as caught:
        parse_patch(
            {
                "schemas": [USER_URN],
                "Operations": [{"op": "replace", "path": "active", "value": False}],
            },
            [],
        )

    assert caught.value.scim_type == ScimType.INVALID_VALUE


def test_parse_patch_requires_operations() -> None:
    with pytest.raises(ScimError) as caught:
        parse_patch(patch_op(), [])

    assert caught.value.scim_type == ScimType.INVALID_VALUE
    assert "Operations" in caught.value.detail


def test_parse_patch_requires_a_value_for_add_and_replace() -> None:
    with pytest.raises(ScimError) as caught:
        parse_patch(patch_op({"op": "replace", "path": "displayName"}), [])

    assert caught.value.scim_type == ScimType.INVALID_VALUE


def test_parse_patch_remove_without_path_is_no_target() -> None:
    with pytest.raises(ScimError) as caught:
        parse_patch(patch_op({"op": "remove"}), [])

    assert caught.value.status == 400
    assert caught.value.scim_type == ScimType.NO_TARGET


def test_parse_patch_rejects_an_empty_path() -> None:
    with pytest.raises(ScimError) as caught:
        parse_patch(patch_op({"op": "replace", "path": " ", "value": "x"}), [])

    assert caught.value.scim_type == ScimType.INVALID_PATH


# apply_operations with a path


def test_replace_with_path_sets_the_attribute() -> None:
    patched = _patch(_document(), {"op": "replace", "path": "displayName", "value": "Ann L."})

    assert patched["displayName"] == "Ann L."


def test_add_with_path_sets_a_missing_attribute() -> None:
    patched = _patch(_document(), {"op": "add", "path": "title", "value": "Tour Guide"})

    assert patched["title"] == "Tour Guide"


def test_add_with_path_appends_to_a_multi_valued_attribute() -> None:
    new = {"value": "ann@work.example", "type": "work"}

    patched = _patch(_document(), {"op": "add", "path": "emails", "value": [new]})

    assert patched["emails"] == [*_document()["emails"], new]


def test_add_of_an_existing_value_does_not_duplicate_it() -> None:
    existing = _document()["emails"][0]

    patched = _patch(_document(), {"op": "add", "path": "emails", "value": [existing]})

    assert patched["emails"] == [existing]


def test_remove_with_path_removes_the_attribute() -> None:
    patched = _patch(_document(), {"op": "remove", "path": "displayName"})

    assert "displayName" not in patched


def test_replace_with_a_sub_attribute_path_keeps_the_siblings() -> None:
    patched = _patch(_document(), {"op": "replace", "path": "name.givenName", "value": "Anna"})

    assert patched["name"] == {"givenName": "Anna", "familyName": "Lee"}


def test_remove_of_a_sub_attribute_keeps_the_siblings() -> None:
    patched = _patch(_document(), {"op": "remove", "path": "name.familyName"})

    assert patched["name"] == {"givenName": "Ann"}


def test_replace_of_a_complex_attribute_keeps_sub_attributes_not_sent() -> None:
    # RFC 7644 §3.5.2.3: "Sub-attributes that are not specified in the value parameter are
    # left unchanged."
    patched = _patch(_document(), {"op": "replace", "path": "name", "value": {"givenName": "Anna"}})

    assert patched["name"] == {"givenName": "Anna", "familyName": "Lee"}


def test_replace_active_with_path_accepts_entra_string_false() -> None:
    patched = _patch(_document(), {"op": "Replace", "path": "active", "value": "False"})

    # apply_operations stores what was sent; parse_user then reads the string (test_resources).
    assert patched["active"] == "False"


def test_replace_with_an_enterprise_urn_path() -> None:
    patched = _patch(
        _document(), {"op": "replace", "path": f"{ENTERPRISE_URN}:employeeNumber", "value": "42"}
    )

    assert patched[ENTERPRISE_URN] == {"employeeNumber": "42"}


def test_remove_of_the_last_enterprise_attribute_drops_the_extension() -> None:
    document = {**_document(), ENTERPRISE_URN: {"employeeNumber": "42"}}

    patched = _patch(document, {"op": "remove", "path": f"{ENTERPRISE_URN}:employeeNumber"})

    assert ENTERPRISE_URN not in patched


def test_replace_of_a_filtered_email_value_creates_the_missing_work_email() -> None:
    # Entra sends this before the user has any work email (ssoready#228).
    patched = _patch(
        _document(),
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "ann@work.example"},
    )

    assert patched["emails"] == [
        {"value": "ann@example.com", "type": "home", "primary": True},
        {"type": "work", "value": "ann@work.example"},
    ]


def test_add_of_a_filtered_email_value_creates_the_missing_work_email() -> None:
    document = _document()
    del document["emails"]

    patched = _patch(
        document, {"op": "Add", "path": 'emails[type eq "work"].value', "value": "ann@work.example"}
    )

    assert patched["emails"] == [{"type": "work", "value": "ann@work.example"}]


def test_replace_of_a_filtered_email_value_updates_the_matching_element_in_place() -> None:
    document = _document()
    document["emails"].append({"value": "old@work.example", "type": "work"})

    patched = _patch(
        document,
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "new@work.example"},
    )

    assert patched["emails"] == [
        {"value": "ann@example.com", "type": "home", "primary": True},
        {"value": "new@work.example", "type": "work"},
    ]


def test_remove_with_a_filter_removes_only_the_matching_element() -> None:
    document = _document()
    document["emails"].append({"value": "ann@work.example", "type": "work"})

    patched = _patch(document, {"op": "remove", "path": 'emails[type eq "work"]'})

    assert patched["emails"] == _document()["emails"]


@pytest.mark.parametrize(
    "path",
    ['emails[type eq "work"', "emails[type eq]", "name..givenName", 'emails[type eq "work"]x'],
)
def test_a_malformed_path_is_invalid_path(path: str) -> None:
    error = _refused(_document(), {"op": "replace", "path": path, "value": "x"})

    assert error.scim_type == ScimType.INVALID_PATH


def test_a_path_naming_no_attribute_is_invalid_path() -> None:
    error = _refused(_document(), {"op": "replace", "path": "favouriteColour", "value": "teal"})

    assert error.scim_type == ScimType.INVALID_PATH


def test_a_path_naming_no_sub_attribute_is_invalid_path() -> None:
    error = _refused(_document(), {"op": "replace", "path": "name.nickname", "value": "x"})

    assert error.scim_type == ScimType.INVALID_PATH


def test_a_path_under_an_unknown_schema_is_invalid_path() -> None:
    error = _refused(
        _document(),
        {"op": "replace", "path": "urn:example:scim:acme:2.0:User:costCenter", "value": "x"},
    )

    assert error.scim_type == ScimType.INVALID_PATH


def test_an_unfiltered_multi_valued_sub_attribute_path_is_invalid_path() -> None:
    error = _refused(_document(), {"op": "replace", "path": "emails.value", "value": "x@y.z"})

    assert error.scim_type == ScimType.INVALID_PATH


@pytest.mark.parametrize("path", ["id", "meta", "meta.lastModified", "groups", "ID"])
@pytest.mark.parametrize("op", ["add", "replace", "remove"])
def test_a_read_only_path_is_refused_with_mutability(op: str, path: str) -> None:
    operation: dict[str, Any] = {"op": op, "path": path}
    if op != "remove":
        is_text = path.lower() in ("id", "meta.lastmodified")
        operation["value"] = "x" if is_text else [{"value": "g"}]

    error = _refused(_document(), operation)

    assert error.scim_type == ScimType.MUTABILITY


# apply_operations without a path


def test_replace_without_path_deactivates() -> None:
    patched = _patch(_document(), {"op": "replace", "value": {"active": False}})

    assert patched["active"] is False


def test_replace_without_path_with_capitalised_op_reactivates() -> None:
    document = {**_document(), "active": False}

    patched = _patch(document, {"op": "Replace", "value": {"active": True}})

    assert patched["active"] is True


def test_add_without_path_sets_the_attributes_of_the_value() -> None:
    patched = _patch(_document(), {"op": "add", "value": {"title": "Guide", "nickName": "Annie"}})

    assert patched["title"] == "Guide"
    assert patched["nickName"] == "Annie"


def test_replace_without_path_reads_dotted_keys_as_paths() -> None:
    patched = _patch(
        _document(),
        {
            "op": "replace",
            "value": {
                "displayName": "Anna Leigh",
                "name.givenName": "Anna",
                "name.familyName": "Leigh",
            },
        },
    )

    assert patched["displayName"] == "Anna Leigh"
    assert patched["name"] == {"givenName": "Anna", "familyName": "Leigh"}
    assert "name.givenName" not in patched


def test_replace_without_path_reads_enterprise_urn_keys_as_paths() -> None:
    patched = _patch(
        _document(),
        {
            "op": "replace",
            "value": {
                f"{ENTERPRISE_URN}:employeeNumber": "701984",
                f"{ENTERPRISE_URN}:manager.value": "26118915",
            },
        },
    )

    assert patched[ENTERPRISE_URN] == {"employeeNumber": "701984", "manager": {"value": "26118915"}}
    assert f"{ENTERPRISE_URN}:employeeNumber" not in patched


def test_replace_without_path_reads_an_enterprise_extension_object() -> None:
    patched = _patch(
        _document(),
        {
            "op": "replace",
            "value": {
                ENTERPRISE_URN: {"department": "Sales", "costCenter": "4130"},
            },
        },
    )

    assert patched[ENTERPRISE_URN] == {"department": "Sales", "costCenter": "4130"}


def test_replace_without_path_ignores_read_only_keys() -> None:
    # Okta's rename carries the read-only id in the value: not a change, so not an error.
    patched = _patch(
        _document(),
        {
            "op": "replace",
            "value": {
                "id": "someone-else",
                "meta": {"version": 'W/"7"'},
                "displayName": "Ann L.",
            },
        },
    )

    assert patched["displayName"] == "Ann L."
    assert "id" not in patched
    assert "meta" not in patched


def test_replace_without_path_needs_an_object_value() -> None:
    error = _refused(_document(), {"op": "replace", "value": False})

    assert error.scim_type == ScimType.INVALID_VALUE


# whole patches


def test_apply_operations_applies_every_operation_in_order() -> None:
    patched = _patch(
        _document(),
        {"op": "add", "path": "title", "value": "Guide"},
        {"op": "replace", "path": "title", "value": "Senior Guide"},
        {"op": "remove", "path": "displayName"},
    )

    assert patched["title"] == "Senior Guide"
    assert "displayName" not in patched


def test_apply_operations_leaves_the_original_document_untouched() -> None:
    document = _document()
    document[ENTERPRISE_URN] = {"manager": {"value": "m1"}}
    before = copy.deepcopy(document)

    _patch(
        document,
        {"op": "replace", "value": {"active": False, "name.givenName": "Anna"}},
        {"op": "replace", "path": 'emails[type eq "home"].value', "value": "x@home.example"},
        {"op": "add", "path": "emails", "value": [{"value": "y@work.example", "type": "work"}]},
        {"op": "replace", "path": f"{ENTERPRISE_URN}:manager.value", "value": "m2"},
    )

    assert document == before


def test_apply_operations_leaves_the_original_untouched_when_a_later_operation_fails() -> None:
    document = _document()
    before = copy.deepcopy(document)

    _refused(
        document,
        {"op": "replace", "path": "displayName", "value": "Changed"},
        {"op": "replace", "path": "id", "value": "x"},
    )

    assert document == before


# cost bounds (issue 13): limits, and duplicate checks by key


def test_patch_refuses_more_emails_than_the_limit() -> None:
    # Issue 13's request, scaled down: 90,000 distinct values added to emails ran 36 s in a
    # quadratic duplicate check before any limit applied. Now it is refused by its size.
    values = [{"value": f"u{i}@example.com"} for i in range(MAX_MULTI_VALUES + 1)]

    error = _refused(_document(), {"op": "add", "path": "emails", "value": values})

    assert error.scim_type == ScimType.INVALID_VALUE
    assert "emails" in error.detail
    assert str(MAX_MULTI_VALUES) in error.detail


def test_patch_refuses_an_add_that_takes_an_attribute_past_the_limit() -> None:
    values = [{"value": f"u{i}@example.com"} for i in range(MAX_MULTI_VALUES)]

    error = _refused(_document(), {"op": "add", "path": "emails", "value": values})

    assert error.scim_type == ScimType.INVALID_VALUE
    assert f"emails has {MAX_MULTI_VALUES + 1} values" in error.detail


def test_patch_refuses_a_replace_with_more_values_than_the_limit() -> None:
    values = [{"value": f"+1 555 {i:07d}"} for i in range(MAX_MULTI_VALUES + 1)]

    error = _refused(_document(), {"op": "replace", "path": "phoneNumbers", "value": values})

    assert "phoneNumbers" in error.detail


def test_patch_accepts_values_up_to_the_limit() -> None:
    values = [{"value": f"u{i}@example.com"} for i in range(MAX_MULTI_VALUES - 1)]

    patched = _patch(_document(), {"op": "add", "path": "emails", "value": values})

    assert len(patched["emails"]) == MAX_MULTI_VALUES


def test_patch_add_to_a_user_stored_over_the_limit_is_refused_only_when_it_adds() -> None:
    stored = [{"value": f"u{i}@example.com"} for i in range(MAX_MULTI_VALUES + 20)]
    document = {**_document(), "emails": stored}

    patched = _patch(document, {"op": "add", "path": "emails", "value": [stored[3]]})
    error = _refused(document, {"op": "add", "path": "emails", "value": [{"value": "n@x.io"}]})

    assert patched["emails"] == stored
    assert "emails" in error.detail


class _CountedEquality(str):
    """A string that counts how often it is compared for equality."""

    comparisons = 0

    def __eq__(self, other: object) -> bool:
        _CountedEquality.comparisons += 1
        return str.__eq__(self, other)

    def __hash__(self) -> int:
        return str.__hash__(self)


def test_patch_add_compares_each_value_only_with_its_equals() -> None:
    # The old duplicate check compared every value with every value added before it
    # (n²/2 comparisons); a key look-up compares a value only with one of equal hash.
    values = [_CountedEquality(f"v{i}") for i in range(MAX_MULTI_VALUES)]
    _CountedEquality.comparisons = 0

    patched = apply_operations(
        {"schemas": [USER_URN], "userName": "a"},
        [PatchOperation("add", "entitlements", values)],
        USER_SCHEMA,
    )

    assert patched["entitlements"] == values
    assert _CountedEquality.comparisons < len(values)


@pytest.mark.parametrize("others", [0, 40], ids=["compared by ==", "compared by key"])
def test_patch_add_drops_values_equal_to_one_already_there_or_sent_before(others: int) -> None:
    stored = {"value": "a@x.io", "type": "work", "primary": True}
    document = {**_document(), "emails": [stored]}
    same_in_another_order = {"primary": 1, "type": "work", "value": "a@x.io"}  # True == 1
    new = {"value": "b@x.io"}
    more = [{"value": f"m{i}@x.io", "tags": [i, {"n": i}]} for i in range(others)]

    patched = _patch(
        document,
        {"op": "add", "path": "emails",
         "value": [same_in_another_order, new, *more, dict(new), *more]},
    )  # fmt: skip

    assert patched["emails"] == [stored, new, *more]


def test_patch_refuses_values_nested_deeper_than_the_limit() -> None:
    deep: Any = "x@example.com"
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]

    error = _refused(_document(), {"op": "add", "path": "emails", "value": [deep, deep]})

    assert error.scim_type == ScimType.INVALID_VALUE
    assert "emails nests deeper than" in error.detail


def test_a_filtered_add_of_a_new_element_past_the_limit_is_refused() -> None:
    emails = [{"value": f"u{i}@example.com", "type": "home"} for i in range(MAX_MULTI_VALUES)]

    error = _refused(
        {**_document(), "emails": emails},
        {"op": "add", "path": 'emails[type eq "work"].value', "value": "w@example.com"},
    )

    assert "emails" in error.detail


def test_a_filtered_remove_keeps_every_element_the_filter_does_not_select() -> None:
    emails = [{"value": f"u{i}@example.com", "type": "work" if i % 3 else "home"}
              for i in range(MAX_MULTI_VALUES)]  # fmt: skip

    patched = _patch({**_document(), "emails": emails},
                     {"op": "remove", "path": 'emails[type eq "work"]'})  # fmt: skip

    assert patched["emails"] == [e for e in emails if e["type"] == "home"]


def test_parse_patch_refuses_more_operations_than_the_limit() -> None:
    operation = {"op": "replace", "path": "displayName", "value": "A"}

    with pytest.raises(ScimError) as caught:
        parse_patch(patch_op(*[operation] * (MAX_OPERATIONS + 1)), [])

    assert caught.value.scim_type == ScimType.INVALID_VALUE
    assert f"at most {MAX_OPERATIONS}" in caught.value.detail


def test_parse_patch_accepts_operations_up_to_the_limit() -> None:
    operation = {"op": "replace", "path": "displayName", "value": "A"}

    assert len(parse_patch(patch_op(*[operation] * MAX_OPERATIONS), [])) == MAX_OPERATIONS


def test_parse_patch_counts_each_key_of_a_no_path_value_as_an_operation() -> None:
    keys = {f'emails[value eq "u{i}@x.io"].display': "x" for i in range(MAX_OPERATIONS)}

    with pytest.raises(ScimError) as caught:
        parse_patch(patch_op({"op": "replace", "path": "title", "value": "t"},
                             {"op": "replace", "value": keys}), [])  # fmt: skip

    assert f"at most {MAX_OPERATIONS}" in caught.value.detail


def test_parse_patch_refuses_complex_paths_longer_in_all_than_the_limit() -> None:
    terms = " or ".join(f'value eq "u{i}@example.com"' for i in range(300))
    path = f"emails[{terms}]"
    assert len(path) > MAX_COMPLEX_PATH_CHARACTERS

    with pytest.raises(ScimError) as caught:
        parse_patch(patch_op({"op": "remove", "path": path}), [])

    assert caught.value.scim_type == ScimType.INVALID_VALUE
    assert str(MAX_COMPLEX_PATH_CHARACTERS) in caught.value.detail


def test_parse_patch_does_not_count_simple_paths_against_the_complex_path_limit() -> None:
    operations = [
        {"op": "replace", "path": f'emails[value eq "u{i}@example.com"].display', "value": "x"}
        for i in range(MAX_OPERATIONS)
    ]

    assert len(parse_patch(patch_op(*operations), [])) == MAX_OPERATIONS


@pytest.mark.parametrize(
    "path",
    [
        "displayName",
        " name.givenName ",
        "$ref",
        f"{ENTERPRISE_URN}:manager.value",
        f"{ENTERPRISE_URN.upper()}:department",
        f"{USER_URN}:name.familyName",
        'emails[type eq "work"]',
        'emails[type eq "work"].value',
        'emails[ type  EQ  "work" ].display',
        'emails[value eq "a\\"b\\u00e9"]',
        'emails[value co ""]',
        f'{USER_URN}:addresses[type eq "work"].postalCode',
        'members[value eq "2819c223-7f76-453a-919d-413861904646"]',
    ],
)
def test_simple_paths_are_read_as_the_full_grammar_reads_them(path: str) -> None:
    fast = patching._simple_path(path)

    assert fast is not None
    assert fast == Path(path).ast


@pytest.mark.parametrize(
    "path",
    [
        'emails[type eq "work" and primary eq true]',
        "emails[primary eq true]",
        "emails[value pr]",
        'emails[not eq "x"]',
        "not",
        'emails [type eq "work"]',
        "urn:example:other:name",
        'emails[type eq "tab\there"]',
        "name.givenName.x",
    ],
)
def test_other_paths_are_left_to_the_full_grammar(path: str) -> None:
    assert patching._simple_path(path) is None


def test_a_filter_joining_terms_selects_as_written() -> None:
    emails = [
        {"value": "a@x.io", "type": "work", "primary": True},
        {"value": "b@x.io", "type": "WORK"},
        {"value": "c@x.io", "type": "home", "display": "C"},
        {"value": "d@x.io", "type": "other"},
    ]
    path = 'emails[(type eq "work" or display pr) and not (primary eq true)]'

    patched = _patch({**_document(), "emails": emails}, {"op": "remove", "path": path})

    assert [e["value"] for e in patched["emails"]] == ["a@x.io", "d@x.io"]


def test_a_path_too_long_for_the_fast_reader_counts_as_complex() -> None:
    with pytest.raises(ScimError) as caught:
        parse_patch(patch_op({"op": "remove", "path": "a" * (1024 * 1024)}), [])

    assert str(MAX_COMPLEX_PATH_CHARACTERS) in caught.value.detail
