"""parse_user: what a User body must hold, what it may hold, and what is dropped on the way."""

from __future__ import annotations

from typing import Any

import pytest

from muster.errors import ScimError, ScimType
from muster.scim.resources import (
    MAX_MULTI_VALUES,
    MAX_NAME_LENGTH,
    identity_email,
    parse_user,
)
from tests.factories import ENTERPRISE_URN, USER_URN, build_user

pytestmark = pytest.mark.unit


def _invalid_value(payload: Any, **kwargs: Any) -> ScimError:
    with pytest.raises(ScimError) as caught:
        parse_user(payload, **kwargs)
    assert caught.value.status == 400
    assert caught.value.scim_type == ScimType.INVALID_VALUE, caught.value
    return caught.value


def _quoted(char: str, text: str) -> bool:
    return f"'{char}'" in text or f'"{char}"' in text


def test_parse_user_keeps_an_okta_create_body() -> None:
    body = build_user(email="ann.lee@example.com")

    parsed = parse_user(body)

    assert parsed.user_name == "ann.lee@example.com"
    assert parsed.email == "ann.lee@example.com"
    assert parsed.external_id == body["externalId"]
    assert parsed.active is True
    assert parsed.document["schemas"] == [USER_URN]
    assert parsed.document["name"] == body["name"]
    assert parsed.document["emails"] == body["emails"]
    assert parsed.document["locale"] == "en-US"


def test_parse_user_requires_user_name() -> None:
    body = build_user()
    del body["userName"]

    error = _invalid_value(body)

    assert "userName" in error.detail


@pytest.mark.parametrize("blank", ["", "   "])
def test_parse_user_rejects_blank_user_name(blank: str) -> None:
    error = _invalid_value(build_user(userName=blank))

    assert "userName" in error.detail


def test_parse_user_keys_user_name_ignoring_case() -> None:
    parsed = parse_user(build_user(email="Ann.Lee@Example.COM"))

    assert parsed.user_name == "Ann.Lee@Example.COM"  # stored as sent
    assert parsed.user_name_key == "ann.lee@example.com"
    assert parsed.email_key == "ann.lee@example.com"


def test_identity_email_is_the_primary_email() -> None:
    body = build_user(
        userName="ann",
        emails=[
            {"value": "ann@work.example", "type": "work"},
            {"value": "ann@home.example", "type": "home", "primary": True},
        ],
    )

    assert parse_user(body).email == "ann@home.example"


def test_identity_email_falls_back_to_the_first_work_email() -> None:
    body = build_user(
        userName="ann",
        emails=[
            {"value": "ann@home.example", "type": "home"},
            {"value": "ann@work.example", "type": "work"},
            {"value": "ann@other-work.example", "type": "work"},
        ],
    )

    assert parse_user(body).email == "ann@work.example"


def test_identity_email_falls_back_to_an_email_user_name() -> None:
    body = build_user(
        userName="ann@login.example", emails=[{"value": "ann@home.example", "type": "home"}]
    )

    assert parse_user(body).email == "ann@login.example"


def test_identity_email_from_user_name_when_no_emails_are_sent() -> None:
    body = build_user(userName="ann@login.example")
    del body["emails"]

    parsed = parse_user(body)

    assert parsed.email == "ann@login.example"
    assert "ann@login.example" in parsed.emails


def test_parse_user_without_any_email_is_invalid_value() -> None:
    body = build_user(userName="ann", emails=[{"value": "ann@home.example", "type": "home"}])

    error = _invalid_value(body)

    assert "email" in error.detail


def test_identity_email_on_a_document_without_email_raises_invalid_value() -> None:
    with pytest.raises(ScimError) as caught:
        identity_email({"userName": "not-an-email"})

    assert caught.value.scim_type == ScimType.INVALID_VALUE


def test_parse_user_rejects_a_primary_email_that_is_not_an_address() -> None:
    body = build_user(emails=[{"value": "not an address", "primary": True, "type": "work"}])

    error = _invalid_value(body)

    assert "not an address" in error.detail


def test_parse_user_indexes_every_email_lower_cased() -> None:
    body = build_user(
        userName="ann@example.com",
        emails=[
            {"value": "Ann@Example.com", "type": "work", "primary": True},
            {"value": "ANN@home.example", "type": "home"},
        ],
    )

    assert parse_user(body).emails == {"ann@example.com", "ann@home.example"}


@pytest.mark.parametrize(
    "name",
    [
        "שרה",  # Hebrew
        "Юлия",  # Cyrillic
        "Zoë Ångström-Núñez",  # accented Latin
        "Zoe\u0308",  # e + combining diaeresis
        "Louis XIV 2",  # digits and spaces
        "Jr. de_la-Cruz (Mara)",
        "O'Brien",
        "O\u2019Brien",  # typographic apostrophe, as macOS and iOS type it
    ],
)
@pytest.mark.parametrize("part", ["givenName", "familyName"])
def test_parse_user_accepts_names_of_any_script(part: str, name: str) -> None:
    body = build_user(name={"givenName": "Ann", "familyName": "Lee", part: name})

    assert parse_user(body).document["name"][part] == name


@pytest.mark.parametrize("char", ["@", ",", "#", "$", "!"])
@pytest.mark.parametrize("part", ["givenName", "familyName"])
def test_parse_user_rejects_names_with_symbols(part: str, char: str) -> None:
    body = build_user(name={"givenName": "Ann", "familyName": "Lee", part: f"An{char}n"})

    error = _invalid_value(body)

    assert f"name.{part}" in error.detail
    assert _quoted(char, error.detail), error.detail


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("active", "yes"),
        ("active", 1),
        ("emails", "ann@example.com"),
        ("name", "Ann Lee"),
        ("userName", 123),
        ("displayName", ["Ann"]),
        ("externalId", 42),
    ],
)
def test_parse_user_rejects_wrong_types_naming_the_attribute(attribute: str, value: Any) -> None:
    error = _invalid_value(build_user(**{attribute: value}))

    assert attribute in error.detail


def test_parse_user_rejects_a_sub_attribute_of_the_wrong_type_naming_it() -> None:
    error = _invalid_value(build_user(name={"givenName": 7, "familyName": "Lee"}))

    assert "name.givenName" in error.detail


def test_parse_user_rejects_an_email_entry_that_is_not_an_object() -> None:
    error = _invalid_value(build_user(emails=["ann@example.com"]))

    assert "emails" in error.detail


@pytest.mark.parametrize(("sent", "kept"), [("True", True), ("False", False), ("true", True)])
def test_parse_user_reads_entra_string_booleans(sent: str, kept: bool) -> None:
    parsed = parse_user(build_user(active=sent))

    assert parsed.active is kept
    assert parsed.document["active"] is kept
    assert "entra_string_boolean" in parsed.quirks


def test_parse_user_reads_entra_string_boolean_in_email_primary() -> None:
    body = build_user(
        userName="ann", emails=[{"value": "ann@home.example", "type": "home", "primary": "True"}]
    )

    parsed = parse_user(body)

    assert parsed.document["emails"][0]["primary"] is True
    assert parsed.email == "ann@home.example"


def test_parse_user_rejects_an_unknown_schema_in_schemas() -> None:
    unknown = "urn:example:params:scim:schemas:extension:acme:2.0:User"

    error = _invalid_value(build_user(schemas=[USER_URN, unknown]))

    assert unknown in error.detail


def test_parse_user_rejects_an_unknown_schema_as_a_body_key() -> None:
    unknown = "urn:example:params:scim:schemas:extension:acme:2.0:User"

    error = _invalid_value(build_user(**{unknown: {"costCenter": "1"}}))

    assert unknown in error.detail


def test_parse_user_requires_schemas() -> None:
    body = build_user()
    del body["schemas"]

    error = _invalid_value(body)

    assert "schemas" in error.detail


def test_parse_user_requires_the_core_schema_in_schemas() -> None:
    _invalid_value(build_user(schemas=[ENTERPRISE_URN]))


def test_parse_user_without_schemas_is_allowed_when_not_required() -> None:
    body = build_user()
    del body["schemas"]

    assert parse_user(body, require_schemas=False).document["schemas"] == [USER_URN]


def test_parse_user_rejects_a_body_that_is_not_an_object() -> None:
    with pytest.raises(ScimError) as caught:
        parse_user([build_user()])

    assert caught.value.status == 400
    assert caught.value.scim_type == ScimType.INVALID_SYNTAX


def test_parse_user_ignores_unknown_plain_attributes() -> None:
    parsed = parse_user(build_user(favouriteColour="teal", usrName="typo"))

    assert "favouriteColour" not in parsed.document
    assert "usrName" not in parsed.document


def test_parse_user_ignores_server_owned_attributes() -> None:
    body = build_user(
        id="client-chosen-id",
        meta={"resourceType": "User", "created": "2020-01-01T00:00:00Z", "version": 'W/"9"'},
        groups=[{"value": "g1", "display": "Admins"}],
    )

    document = parse_user(body).document

    assert "id" not in document
    assert "meta" not in document
    assert "groups" not in document


def test_parse_user_accepts_a_password_and_never_keeps_it() -> None:
    parsed = parse_user(build_user(password="1mz050nq"))

    assert "password" not in parsed.document
    assert "1mz050nq" not in repr(parsed.document)


def test_parse_user_still_type_checks_the_password() -> None:
    error = _invalid_value(build_user(password=12345))

    assert "password" in error.detail


def test_parse_user_drops_null_attributes_as_entra_sends_them() -> None:
    parsed = parse_user(build_user(title=None, addresses=None, phoneNumbers=None))

    assert "title" not in parsed.document
    assert "addresses" not in parsed.document


def test_parse_user_round_trips_the_enterprise_extension() -> None:
    extension = {
        "employeeNumber": "701984",
        "costCenter": "4130",
        "organization": "Universal Studios",
        "division": "Theme Park",
        "department": "Tour Operations",
        "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"},
    }
    body = build_user(schemas=[USER_URN, ENTERPRISE_URN], **{ENTERPRISE_URN: extension})

    document = parse_user(body).document

    assert document[ENTERPRISE_URN] == extension
    assert document["schemas"] == [USER_URN, ENTERPRISE_URN]


def test_parse_user_declares_the_extension_it_keeps_even_if_schemas_omits_it() -> None:
    body = build_user(**{ENTERPRISE_URN: {"department": "Sales"}})

    assert ENTERPRISE_URN in parse_user(body).document["schemas"]


def test_parse_user_drops_unknown_enterprise_attributes() -> None:
    body = build_user(**{ENTERPRISE_URN: {"department": "Sales", "shoeSize": "44"}})

    assert parse_user(body).document[ENTERPRISE_URN] == {"department": "Sales"}


def test_parse_user_reads_an_entra_manager_sent_as_a_plain_id() -> None:
    body = build_user(**{ENTERPRISE_URN: {"manager": "26118915"}})

    parsed = parse_user(body)

    assert parsed.document[ENTERPRISE_URN]["manager"] == {"value": "26118915"}
    assert "entra_manager_as_string" in parsed.quirks


def test_parse_user_rejects_an_enterprise_extension_that_is_not_an_object() -> None:
    error = _invalid_value(build_user(**{ENTERPRISE_URN: "Sales"}))

    assert ENTERPRISE_URN in error.detail


# limits (issue 13)


@pytest.mark.parametrize("attribute", ["emails", "phoneNumbers", "addresses", "roles"])
def test_parse_user_refuses_more_values_than_the_limit(attribute: str) -> None:
    values = [{"value": f"v{i}@example.com"} for i in range(MAX_MULTI_VALUES + 1)]

    error = _invalid_value(build_user(**{attribute: values}))

    assert f"{attribute} has {MAX_MULTI_VALUES + 1} values" in error.detail


def test_parse_user_accepts_values_up_to_the_limit() -> None:
    emails = [{"value": f"v{i}@example.com", "type": "other"} for i in range(MAX_MULTI_VALUES)]
    emails[0] = {**emails[0], "primary": True}

    assert len(parse_user(build_user(emails=emails)).emails) == MAX_MULTI_VALUES


def test_parse_user_can_skip_the_value_limit_for_a_patched_document() -> None:
    phones = [{"value": f"+1 555 {i:07d}"} for i in range(MAX_MULTI_VALUES + 1)]

    user = parse_user(build_user(phoneNumbers=phones), limit_values=False)

    assert len(user.document["phoneNumbers"]) == MAX_MULTI_VALUES + 1


@pytest.mark.parametrize("part", ["givenName", "familyName"])
def test_parse_user_refuses_a_name_longer_than_the_limit(part: str) -> None:
    body = build_user(name={"givenName": "Ann", part: "a" * (MAX_NAME_LENGTH + 1)})

    error = _invalid_value(body)

    assert f"name.{part}" in error.detail and str(MAX_NAME_LENGTH) in error.detail
