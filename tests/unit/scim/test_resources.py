"""parse_user: what a User body must hold, what it may hold, and what is dropped on the way."""

from __future__ import annotations

from typing import Any

import pytest

from muster.errors import ScimError, ScimType
from muster.scim.resources import (
    MAX_MULTI_VALUES,
    MAX_USER_DOCUMENT_BYTES,
    identity_email,
    parse_user,
)
from muster.scim.schemas import (
    ENTERPRISE_ATTRIBUTES,
    MAX_CERTIFICATE_LENGTH,
    MAX_LONG_TEXT_LENGTH,
    MAX_TEXT_LENGTH,
    MAX_URL_LENGTH,
    USER_ATTRIBUTES,
    AttributeSpec,
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
    body = build_user(name={"givenName": "Ann", part: "a" * (MAX_TEXT_LENGTH + 1)})

    error = _invalid_value(body)

    assert f"name.{part}" in error.detail and str(MAX_TEXT_LENGTH) in error.detail


# malformed elements of multi-valued attributes (issue 14: `emails: [{}]` was a 500)


@pytest.mark.parametrize(
    ("emails", "detail"),
    [
        ([{}], "emails[0].value is required"),
        ([{"value": None, "type": "work"}], "emails[0].value is required"),
        ([{"type": "work", "primary": True}], "emails[0].value is required"),
        ([{"nonsense": 1}], "emails[0].value is required"),
        ([None, {}], "emails[1].value is required"),
        ([5], "emails[0] must be an object"),
        (["e@x.com"], "emails[0] must be an object"),
        ([[{"value": "e@x.com"}]], "emails[0] must be an object"),
        ([{"value": 5}], "emails[0].value must be a string"),
        ([{"value": {"a": 1}}], "emails[0].value must be a string"),
        ([{"value": "e@x.com", "primary": "yes"}], "emails[0].primary must be a boolean"),
        ({"value": "e@x.com"}, "emails must be a list"),
    ],
)
def test_parse_user_names_the_malformed_email_element(emails: Any, detail: str) -> None:
    error = _invalid_value({"schemas": [USER_URN], "userName": "e@x.com", "emails": emails})

    assert error.detail.startswith(detail)


@pytest.mark.parametrize(
    "attribute",
    ["phoneNumbers", "ims", "photos", "roles", "entitlements", "x509Certificates"],
)
def test_parse_user_requires_the_value_of_every_element_that_has_one(attribute: str) -> None:
    error = _invalid_value(build_user(**{attribute: [{"type": "work"}]}))

    assert error.detail == f"{attribute}[0].value is required"


def test_parse_user_refuses_an_empty_address_and_keeps_a_partial_one() -> None:
    error = _invalid_value(build_user(addresses=[{"type": "work"}, {}]))

    assert error.detail.startswith("addresses[1] is empty: it needs at least one of formatted")
    kept = parse_user(build_user(addresses=[{"type": "work", "locality": "Oslo"}]))
    assert kept.document["addresses"] == [{"type": "work", "locality": "Oslo"}]


def test_parse_user_names_the_malformed_manager() -> None:
    error = _invalid_value(build_user(**{ENTERPRISE_URN: {"manager": {"value": 7}}}))

    assert error.detail == f"{ENTERPRISE_URN}:manager.value must be a string"


# identities: keys and the characters an identity may not hold


def test_parse_user_keys_identities_after_nfkc_and_case_folding() -> None:
    body = build_user(
        userName="\uff22\uff2f\uff22@x.com",
        emails=[
            {"value": "Bob@X\uff0ecom", "primary": True},
            {"value": "rene\u0301@x.com", "type": "home"},
        ],
    )

    parsed = parse_user(body)

    assert parsed.user_name == "\uff22\uff2f\uff22@x.com"  # stored as sent
    assert parsed.document["emails"][0]["value"] == "Bob@X\uff0ecom"
    assert parsed.user_name_key == parsed.email_key == "bob@x.com"
    assert parsed.emails == {"bob@x.com", "ren\u00e9@x.com"}


def test_parse_user_does_not_index_a_blank_email() -> None:
    parsed = parse_user(
        build_user(
            email="e@x.com",
            emails=[{"value": "e@x.com", "primary": True}, {"value": "  ", "type": "home"}],
        )
    )

    assert parsed.emails == {"e@x.com"}


@pytest.mark.parametrize(
    ("overrides", "attribute"),
    [
        ({"userName": "bob\u200b@x.com"}, "userName contains U+200B ZERO WIDTH SPACE"),
        ({"userName": "\u202emoc.x@bob"}, "userName contains U+202E RIGHT-TO-LEFT OVERRIDE"),
        (
            {"emails": [{"value": "e@x.com", "primary": True}, {"value": "b\u2060ob@x.com"}]},
            "emails[1].value contains U+2060 WORD JOINER",
        ),
        ({"userName": "bob@p\u0430ypal.com"}, "userName has the domain label"),
        (
            {"emails": [{"value": "bob@p\u0430ypal.com", "primary": True}]},
            "emails[0].value has the domain label",
        ),
    ],
)
def test_parse_user_refuses_hidden_characters_and_look_alike_domains(
    overrides: dict[str, Any], attribute: str
) -> None:
    error = _invalid_value(build_user(**overrides))

    assert error.detail.startswith(attribute)


def test_parse_user_refuses_a_user_name_whose_key_outgrows_the_column() -> None:
    # ㍿ (one character) is 株式会社 (four) in NFKC.
    error = _invalid_value(build_user(userName="\u337f" * 70 + "@x.com"))

    assert "userName is 286 characters long once normalised" in error.detail


# every string has a limit (issue 14: 120 users went in with a 950 KB displayName each)


def test_every_string_attribute_of_the_schemas_has_a_limit() -> None:
    def strings(specs: dict[str, AttributeSpec]) -> list[AttributeSpec]:
        found = []
        for spec in specs.values():
            found += strings(spec.sub_attributes)
            if spec.type in ("string", "reference", "binary"):
                found.append(spec)
        return found

    unbounded = [
        s.name
        for s in strings(USER_ATTRIBUTES) + strings(ENTERPRISE_ATTRIBUTES)
        if s.max_length is None
    ]

    assert unbounded == []


@pytest.mark.parametrize(
    ("overrides", "path", "limit"),
    [
        ({"displayName": "x" * 950_000}, "displayName", MAX_TEXT_LENGTH),
        ({"nickName": "x" * 256}, "nickName", MAX_TEXT_LENGTH),
        ({"title": "x" * 256}, "title", MAX_TEXT_LENGTH),
        ({"externalId": "x" * 256}, "externalId", MAX_TEXT_LENGTH),
        ({"userName": "x" * 250 + "@x.com"}, "userName", MAX_TEXT_LENGTH),
        ({"name": {"formatted": "x" * 1025}}, "name.formatted", MAX_LONG_TEXT_LENGTH),
        ({"name": {"middleName": "x" * 256}}, "name.middleName", MAX_TEXT_LENGTH),
        ({"profileUrl": "https://x/" + "x" * 2048}, "profileUrl", MAX_URL_LENGTH),
        ({"photos": [{"value": "https://x/" + "x" * 2048}]}, "photos[0].value", MAX_URL_LENGTH),
        ({"addresses": [{"streetAddress": "x" * 1025}]}, "addresses[0].streetAddress", 1024),
        ({"phoneNumbers": [{"value": "1" * 256}]}, "phoneNumbers[0].value", MAX_TEXT_LENGTH),
        ({"roles": [{"value": "r" * 1025}]}, "roles[0].value", MAX_LONG_TEXT_LENGTH),
        (
            {"x509Certificates": [{"value": "A" * 16385}]},
            "x509Certificates[0].value",
            MAX_CERTIFICATE_LENGTH,
        ),
        ({"password": "p" * 1025}, "password", MAX_LONG_TEXT_LENGTH),
        (
            {ENTERPRISE_URN: {"department": "d" * 256}},
            f"{ENTERPRISE_URN}:department",
            MAX_TEXT_LENGTH,
        ),
        (
            {ENTERPRISE_URN: {"manager": {"value": "m", "$ref": "https://x/" + "x" * 2048}}},
            f"{ENTERPRISE_URN}:manager.$ref",
            MAX_URL_LENGTH,
        ),
    ],
)
def test_parse_user_refuses_a_string_longer_than_its_limit(
    overrides: dict[str, Any], path: str, limit: int
) -> None:
    error = _invalid_value(build_user(**overrides))

    assert error.detail.startswith(f"{path} is ")
    assert f"at most {limit} are accepted" in error.detail


def test_parse_user_accepts_strings_at_their_limit() -> None:
    body = build_user(displayName="x" * MAX_TEXT_LENGTH, profileUrl="h" * MAX_URL_LENGTH)

    assert parse_user(body).document["displayName"] == "x" * MAX_TEXT_LENGTH


def _heavy_user(kilobytes: int) -> dict[str, Any]:
    # Each value within its own limit; together over the document's.
    roles = [{"value": "r" * 1000, "type": "t" * 20} for _ in range(kilobytes)]
    return build_user(roles=roles)


def test_parse_user_refuses_a_document_over_64_kib() -> None:
    error = _invalid_value(_heavy_user(70))

    assert error.detail.startswith("the user is ")
    assert f"at most {MAX_USER_DOCUMENT_BYTES} (64 KiB) are accepted" in error.detail
    assert parse_user(_heavy_user(60)).document["roles"]


# what is already stored may stay: a user stored before a rule can still be deactivated


def test_parse_user_keeps_a_stored_value_over_a_newer_limit() -> None:
    stored = build_user(displayName="x" * 950_000)

    kept = parse_user({**stored, "active": False}, stored=stored)

    assert kept.document["displayName"] == "x" * 950_000
    error = _invalid_value({**stored, "displayName": "y" * 950_000}, stored=stored)
    assert error.detail.startswith("displayName is 950000 characters long")


def test_parse_user_keeps_a_stored_identity_with_a_hidden_character() -> None:
    stored = build_user(email="bob\u200b@x.com")

    kept = parse_user({**stored, "active": False}, stored=stored)

    assert kept.user_name_key == "bob@x.com"
    error = _invalid_value(build_user(email="bob\u200b@x.com"))
    assert "U+200B" in error.detail


def test_parse_user_keeps_a_stored_element_without_a_value() -> None:
    stored = build_user(phoneNumbers=[{"type": "work"}])

    assert parse_user(stored, stored=stored).document["phoneNumbers"] == [{"type": "work"}]
    error = _invalid_value({**stored, "phoneNumbers": [{"type": "home"}]}, stored=stored)
    assert error.detail == "phoneNumbers[0].value is required"


def test_parse_user_keeps_a_stored_document_over_the_limit_that_does_not_grow() -> None:
    heavy = _heavy_user(70)
    stored = parse_user(heavy, stored=heavy).document  # as it was stored before the limit

    assert parse_user({**stored, "active": False}, stored=stored).active is False
    grown = {**stored, "nickName": "more"}
    assert _invalid_value(grown, stored=stored).detail.startswith("the user is ")
