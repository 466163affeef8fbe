"""Filters over HTTP (RFC 7644 §3.4.2.2): each operator and attribute kind, errors, fuzzing."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.factories import build_user, suffix

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def _create(okta: TestClient, **overrides: Any) -> dict[str, Any]:
    response = okta.post("/scim/v2/Users", json=build_user(**overrides))
    assert response.status_code == 201, response.text
    return dict(response.json())


def _ids(okta: TestClient, text: str, path: str = "/scim/v2/Users") -> set[str]:
    response = okta.get(path, params={"filter": text, "count": 200})
    assert response.status_code == 200, (text, response.text)
    return {r["id"] for r in response.json()["Resources"]}


@pytest.fixture
def trio(okta: TestClient) -> dict[str, dict[str, Any]]:
    tag = suffix()
    ann = _create(
        okta,
        email=f"Ann.Smith.{tag}@x.test",
        name={"givenName": "Ann", "familyName": "Smith"},
        externalId=f"EXT-{tag}",
        title="50%_off*[x]",
        emails=[
            {"value": f"Ann.Smith.{tag}@x.test", "type": "work", "primary": True},
            {"value": f"ann.{tag}@home.test", "type": "home"},
        ],
        **{ENTERPRISE: {"employeeNumber": "100", "manager": {"value": "boss-1"}}},
    )
    bob = _create(
        okta,
        email=f"bob.{tag}@x.test",
        name={"givenName": "Bob", "familyName": "smithson"},
        externalId=f"ext-{tag}",
        active=False,
        **{ENTERPRISE: {"department": "Sales"}},
    )
    cy = _create(okta, email=f"cy.{tag}@y.test", name={"familyName": "Ng"}, externalId=None)
    return {"ann": ann, "bob": bob, "cy": cy, "tag": {"value": tag}}


def test_each_operator_on_a_case_insensitive_attribute(
    okta: TestClient, trio: dict[str, Any]
) -> None:
    ann, bob, cy = trio["ann"]["id"], trio["bob"]["id"], trio["cy"]["id"]
    tag = trio["tag"]["value"]

    assert _ids(okta, f'userName eq "ANN.SMITH.{tag}@X.TEST"') == {ann}
    assert _ids(okta, f'userName ne "ann.smith.{tag}@x.test"') == {bob, cy}
    assert _ids(okta, f'userName co "{tag}@X"') == {ann, bob}
    assert _ids(okta, f'userName sw "BOB.{tag}"') == {bob}
    assert _ids(okta, f'userName ew "{tag}@Y.TEST"') == {cy}
    assert _ids(okta, 'name.familyName co "SMITH"') == {ann, bob}
    assert _ids(okta, 'name.familyName gt "smith"') == {bob}
    assert _ids(okta, 'name.familyName ge "smith"') == {ann, bob}
    assert _ids(okta, 'name.familyName lt "SMITH"') == {cy}
    assert _ids(okta, 'name.familyName le "Smith"') == {ann, cy}
    assert _ids(okta, "name.givenName pr") == {ann, bob}


def test_case_exact_attributes_compare_exactly(okta: TestClient, trio: dict[str, Any]) -> None:
    ann, bob = trio["ann"]["id"], trio["bob"]["id"]
    tag = trio["tag"]["value"]

    assert _ids(okta, f'externalId eq "EXT-{tag}"') == {ann}
    assert _ids(okta, f'externalId co "ext-{tag}"') == {bob}
    assert _ids(okta, f'externalId sw "EXT-{tag}"') == {ann}
    assert _ids(okta, f'id eq "{ann.upper()}"') == set()
    assert _ids(okta, f'id eq "{ann}"') == {ann}
    assert _ids(okta, 'manager eq "BOSS-1"') == set()
    assert _ids(okta, 'manager eq "boss-1"') == {ann}


def test_like_and_glob_wildcards_in_a_value_are_literal(
    okta: TestClient, trio: dict[str, Any]
) -> None:
    ann = trio["ann"]["id"]

    assert _ids(okta, 'title co "%_off*[x]"') == {ann}
    assert _ids(okta, 'title co "_"') == {ann}
    assert _ids(okta, 'title co "50_"') == set()
    assert _ids(okta, 'title sw "5*"') == set()
    assert _ids(okta, 'title ew "[x]"') == {ann}


def test_absent_values_match_no_comparison_and_not_is_the_complement(
    okta: TestClient, trio: dict[str, Any]
) -> None:
    ann, bob, cy = trio["ann"]["id"], trio["bob"]["id"], trio["cy"]["id"]

    assert _ids(okta, 'title ne "x"') == {ann}
    assert _ids(okta, 'not (title eq "x")') == {ann, bob, cy}
    assert _ids(okta, "externalId pr") == {ann, bob}
    assert _ids(okta, "not (externalId pr)") == {cy}
    assert _ids(okta, "externalId eq null") == {cy}


def test_booleans_logic_and_parentheses(okta: TestClient, trio: dict[str, Any]) -> None:
    ann, bob, cy = trio["ann"]["id"], trio["bob"]["id"], trio["cy"]["id"]

    assert _ids(okta, "active eq false") == {bob}
    assert _ids(okta, 'active eq "True"') == {ann, cy}  # Entra's string boolean
    assert _ids(okta, 'active eq true and (name.familyName eq "ng" or title pr)') == {ann, cy}
    assert _ids(okta, 'not (active eq true) or name.familyName eq "Ng"') == {bob, cy}
    assert _ids(okta, "active eq true and not (name.givenName pr)") == {cy}


def test_multi_valued_and_complex_value_filters(okta: TestClient, trio: dict[str, Any]) -> None:
    ann = trio["ann"]["id"]
    tag = trio["tag"]["value"]

    assert _ids(okta, f'emails.value eq "ANN.{tag}@HOME.TEST"') == {ann}
    assert _ids(okta, f'emails[value eq "ann.{tag}@home.test"]') == {ann}
    assert _ids(okta, f'emails[type eq "work" and value co "smith.{tag}@x"]') == {ann}
    assert _ids(okta, f'emails[type eq "home" and value co "{tag}@x"]') == set()
    assert _ids(okta, 'emails[type eq "home" and not (primary eq true)]') == {ann}
    assert _ids(okta, f'emails[type eq "work"].value eq "ann.smith.{tag}@x.test"') == {ann}
    assert _ids(okta, 'emails.type eq "HOME"') == {ann}


def test_enterprise_attributes_by_full_urn(okta: TestClient, trio: dict[str, Any]) -> None:
    ann, bob = trio["ann"]["id"], trio["bob"]["id"]

    assert _ids(okta, f'{ENTERPRISE}:employeeNumber eq "100"') == {ann}
    assert _ids(okta, f'{ENTERPRISE}:manager.value eq "boss-1"') == {ann}
    assert _ids(okta, f'{ENTERPRISE}:department eq "sales"') == {bob}
    assert _ids(okta, f"{ENTERPRISE}:manager pr") == {ann}


def test_dates_compare_as_served(okta: TestClient, trio: dict[str, Any]) -> None:
    ann, bob, cy = trio["ann"]["id"], trio["bob"]["id"], trio["cy"]["id"]
    served = trio["bob"]["meta"]["lastModified"]

    assert _ids(okta, f'meta.lastModified eq "{served}"') >= {bob}
    assert bob not in _ids(okta, f'meta.lastModified gt "{served}"')
    assert _ids(okta, 'meta.created gt "2000-01-01T00:00:00Z"') == {ann, bob, cy}
    assert _ids(okta, 'meta.created lt "2000-01-01T00:00:00Z"') == set()


def test_identity_email_from_user_name_is_found_by_emails_value(okta: TestClient) -> None:
    email = f"solo.{suffix()}@x.test"
    solo = _create(okta, email=email, emails=[])

    assert _ids(okta, f'emails.value eq "{email}"') == {solo["id"]}
    assert _ids(okta, "emails pr") >= set() and solo["id"] not in _ids(okta, "emails pr")


def test_groups_of_a_user_and_members_of_a_group(okta: TestClient, trio: dict[str, Any]) -> None:
    ann, bob = trio["ann"]["id"], trio["bob"]["id"]
    body = {"schemas": [GROUP], "displayName": "Pilots", "members": [{"value": ann}]}
    group = okta.post("/scim/v2/Groups", json=body).json()

    assert _ids(okta, f'groups.value eq "{group["id"]}"') == {ann}
    assert _ids(okta, 'groups[display eq "PILOTS"]') == {ann}
    assert _ids(okta, "not (groups pr)") >= {bob}
    assert _ids(okta, f'members.value eq "{ann}"', "/scim/v2/Groups") == {group["id"]}
    assert _ids(okta, 'displayName sw "pil" and members pr', "/scim/v2/Groups") == {group["id"]}
    assert _ids(okta, f'members[value eq "{bob}"]', "/scim/v2/Groups") == set()


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('nickname2 eq "x"', "nickname2"),
        ('meta.location eq "x"', "meta.location"),
        ('groups.type eq "direct"', "groups.type"),
        ('userName eq "x" and (title eq "y"', "column"),
        ('userName eq "unterminated', "column"),
        ('userName xx "a"', "column"),
    ],
)
def test_errors_name_the_attribute_or_the_position(okta: TestClient, text: str, named: str) -> None:
    for response in (
        okta.get("/scim/v2/Users", params={"filter": text}),
        okta.post("/scim/v2/Users/.search", json={"schemas": [SEARCH], "filter": text}),
    ):
        assert response.status_code == 400, response.text
        body = response.json()
        assert (body["status"], body["scimType"]) == ("400", "invalidFilter")
        assert named in body["detail"]


# ---- fuzzing: any text a client may send answers 200 or 400 invalidFilter, never a 500

FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SEEDS = [
    'userName eq "a@x.test"',
    'emails[type eq "work" and value co "@x"]',
    'not (name.familyName sw "sm") or active eq true',
    f'{ENTERPRISE}:manager.value eq "m"',
    'meta.lastModified gt "2026-01-01T00:00:00Z"',
    'members[value eq "u"] and displayName pr',
    'emails[type eq "work"].value eq "x"',
    "((title pr))",
]
TOKENS = [
    "(", ")", "[", "]", '"', ".", ":", " and ", " or ", "not ", " pr", " eq ", " gt ", "null",
    "true", "1e999", "-0", '"\\u0000"', '"\\ud800"', "\\", "urn:x:", "emails", "meta.", "$ref",
    "\x00", "\u00e9", "%", "*", "name.familyName", "members.value",
]  # fmt: skip


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        match draw(st.sampled_from(["insert", "delete", "cut", "repeat"])):
            case "insert":
                text = text[:at] + draw(st.sampled_from(TOKENS)) + text[at:]
            case "delete":
                text = text[:at] + text[at + draw(st.integers(1, 6)) :]
            case "cut":
                text = text[:at]
            case "repeat":
                text = text[:at] + text[at:] * draw(st.integers(2, 4))
    return text[:1500]  # a URL stays within what clients send


def _answered_well(response: Any, text: Any) -> None:
    assert response.status_code in (200, 400), (text, response.status_code, response.text)
    if response.status_code == 400:
        assert response.json()["scimType"] in ("invalidFilter", "invalidValue"), (
            text,
            response.text,
        )


def test_fuzzed_filters_never_fail_the_server(okta: TestClient, trio: dict[str, Any]) -> None:
    @FUZZ
    @given(st.one_of(_mutated(), st.text(max_size=60), st.binary(max_size=40)))
    def check(text: str | bytes) -> None:
        if isinstance(text, bytes):  # raw bytes in the query string, not always UTF-8
            quoted = urllib.parse.quote_from_bytes(text)
            for path in ("/scim/v2/Users", "/scim/v2/Groups"):
                _answered_well(okta.get(f"{path}?filter={quoted}"), text)
            return
        for path in ("/scim/v2/Users", "/scim/v2/Groups"):
            _answered_well(okta.get(path, params={"filter": text}), text)
        body = json.dumps({"schemas": [SEARCH], "filter": text})
        _answered_well(okta.post("/scim/v2/Users/.search", content=body), text)

    check()


def test_very_deep_filters_are_refused_not_crashed(okta: TestClient) -> None:
    text = "not (" * 200 + "title pr" + ")" * 200

    response = okta.get("/scim/v2/Users", params={"filter": text})

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidFilter"


def test_existence_check_shapes_page_and_count_like_any_filter(okta: TestClient) -> None:
    shared = f"shared-{suffix()}"
    made = {_create(okta, externalId=shared)["id"] for _ in range(3)}

    def page(**params: Any) -> dict[str, Any]:
        response = okta.get(
            "/scim/v2/Users", params={"filter": f'externalId eq "{shared}"', **params}
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    full, rest, none = page(count=2), page(startIndex=3, count=2), page(count=0)
    assert (full["totalResults"], len(full["Resources"])) == (3, 2)
    assert (rest["totalResults"], len(rest["Resources"])) == (3, 1)
    assert (none["totalResults"], none["Resources"]) == (3, [])
    assert {r["id"] for r in full["Resources"] + rest["Resources"]} == made
    assert _ids(okta, f'externalId eq "{shared.upper()}"') == set()


def test_case_is_ignored_in_any_script(okta: TestClient) -> None:
    made = _create(okta, name={"givenName": "Élodie", "familyName": "Ødegård"}, title="ÉCOLE")

    assert made["id"] in _ids(okta, 'name.familyName co "ØDE"')
    assert made["id"] in _ids(okta, 'name.givenName eq "élodie"')
    assert made["id"] in _ids(okta, 'title sw "éc"')
