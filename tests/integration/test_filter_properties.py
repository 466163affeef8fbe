"""Random valid filters give, in SQL, the ids a Python reference evaluation gives (hypothesis).

A small fixed data set is stored once per test through the HTTP API; each example is a filter
drawn from the grammar over the attributes and values in that data, answered by GET and
checked against tests/filter_reference.py over the same served resources. Runs on SQLite and,
with MUSTER_TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scim2_models import ScimFilter
from starlette.testclient import TestClient

from tests.filter_reference import matches

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"

EXAMPLES = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI stays deterministic
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _user(user_name: str, **more: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [USER, ENTERPRISE], "userName": user_name}
    body.update(more)
    return body


PEOPLE = [
    _user(
        "Ann.Smith@x.test",
        name={"givenName": "Ann", "familyName": "Smith"},
        displayName="Ann Smith",
        title="a_b%c",
        externalId="EXT-1",
        active=True,
        emails=[
            {"value": "Ann.Smith@x.test", "type": "work", "primary": True},
            {"value": "ann@home.test", "type": "home"},
        ],
        phoneNumbers=[{"value": "+1 555", "type": "work"}],
        **{
            ENTERPRISE: {
                "employeeNumber": "100",
                "department": "Sales",
                "manager": {"value": "M-1"},
            }
        },
    ),
    _user(
        "bob.smithson@x.test",
        name={"familyName": "smithson"},
        title="x*y?[z]",
        externalId="ext-1",
        active=False,
        emails=[{"value": "bob.smithson@x.test", "type": "work"}],
        **{ENTERPRISE: {"department": "sales"}},
    ),
    _user(
        "carol@x.test",
        name={"givenName": "Carol", "familyName": "Lee"},
        displayName="carol lee",
        active=True,
        emails=[
            {"value": "carol@x.test", "type": "work", "primary": True},
            {"value": "Carol@Other.test", "type": "other", "primary": False},
        ],
        **{ENTERPRISE: {"employeeNumber": "200", "manager": {"value": "m-1"}}},
    ),
    _user(
        "dave@x.test",
        name={"givenName": "Élodie", "familyName": "Ødegård"},
        displayName="Dave",
        title="Smith & co",
        active=True,
        emails=[{"value": "dave@x.test", "type": "work"}],
        phoneNumbers=[{"value": "+44 20", "type": "mobile", "primary": True}],
    ),
    _user(
        "erin@x.test",
        active=False,
        externalId="Z9",
        title="ÉCOLE Ñandú",
        emails=[{"value": "erin@x.test", "type": "work"}],
    ),
    _user(
        "Frank@X.test",
        name={"givenName": "Frank", "familyName": "Ng"},
        active=True,
        emails=[{"value": "frank@x.test", "type": "Work", "primary": True}],
        **{ENTERPRISE: {"organization": "Org", "manager": {"value": "M-2"}}},
    ),
]

WORDS = [
    "smith", "Smith", "SMITH", "lee", "øde", "ØDEGÅRD", "élo", "école", "ñ", "Ñandú", "ann",
    "x.test", "@x.test", "a_b%c", "%", "_", "*",
    "?[", "x*y", "ext-1", "EXT-1", "sales", "Sales", "m-1", "M-1", "work", "WORK", "home",
    "100", "200", "", "carol@x.test", "ann.smith@x.test", "zzz", "+", "engineering", "Team",
]  # fmt: skip

STRING_PATHS = [
    "userName", f"{USER}:userName", "externalId", "id", "displayName", "title",
    "name.familyName", "name.givenName", "emails", "emails.value", "emails.type",
    "phoneNumbers.value", "phoneNumbers.type", "groups.value", "groups.display",
    f"{ENTERPRISE}:employeeNumber", f"{ENTERPRISE}:department", f"{ENTERPRISE}:manager.value",
    f"{ENTERPRISE}:manager", "manager", "department", "organization",
]  # fmt: skip
BOOLEAN_PATHS = ["active", "emails.primary", "phoneNumbers.primary"]
DATE_PATHS = ["meta.created", "meta.lastModified"]
PRESENT_PATHS = [*STRING_PATHS, *BOOLEAN_PATHS, "name", "emails", "phoneNumbers", "groups"]
ELEMENT_SUBS = {
    "emails": (["value", "type", "display"], ["primary"]),
    "phoneNumbers": (["value", "type"], ["primary"]),
    "groups": (["value", "display"], []),
}
STRING_OPS = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]
DATE_OPS = ["eq", "ne", "gt", "ge", "lt", "le"]


def _literal(value: Any) -> str:
    return json.dumps(value)


def _leaf(paths: list[str], booleans: list[str], strings: st.SearchStrategy[str],
          dates: list[str]) -> st.SearchStrategy[str]:  # fmt: skip
    compare = st.builds(
        lambda p, o, v: f"{p} {o} {_literal(v)}",
        st.sampled_from(paths),
        st.sampled_from(STRING_OPS),
        strings,
    )
    options = [compare, st.builds(lambda p: f"{p} pr", st.sampled_from(paths + booleans))]
    if booleans:
        options.append(
            st.builds(
                lambda p, o, v: f"{p} {o} {v}",
                st.sampled_from(booleans),
                st.sampled_from(["eq", "ne"]),
                st.sampled_from(["true", "false"]),
            )
        )
    if dates:
        options.append(
            st.builds(
                lambda p, o, v: f"{p} {o} {_literal(v)}",
                st.sampled_from(DATE_PATHS),
                st.sampled_from(DATE_OPS),
                st.sampled_from(dates),
            )
        )
    options.append(
        st.builds(
            lambda p, o: f"{p} {o} null",
            st.sampled_from(paths),
            st.sampled_from(["eq", "ne"]),
        )
    )
    return st.one_of(options)


def _combined(leaf: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.builds(lambda a, b: f"({a}) and ({b})", inner, inner),
            st.builds(lambda a, b: f"{a} or {b}", inner, inner),
            st.builds(lambda a: f"not ({a})", inner),
        ),
        max_leaves=5,
    )


def _user_filters(strings: st.SearchStrategy[str], dates: list[str]) -> st.SearchStrategy[str]:
    top = _leaf(STRING_PATHS, BOOLEAN_PATHS, strings, dates)
    value_paths = []
    for name, (string_subs, boolean_subs) in ELEMENT_SUBS.items():
        inner = _combined(_leaf(string_subs, boolean_subs, strings, []))
        value_paths.append(st.builds(lambda f, n=name: f"{n}[{f}]", inner))
    return _combined(st.one_of(top, *value_paths))


@pytest.fixture
def people(okta: TestClient) -> list[dict[str, Any]]:
    """The data set, stored through the API, and two groups; returns the users as served."""
    ids = []
    for body in PEOPLE:
        response = okta.post("/scim/v2/Users", json=body)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    for name, member_indexes, external_id in (
        ("Engineering", [0, 2], None),
        ("Sales Team", [1, 2], "g-ext"),
    ):
        body: dict[str, Any] = {
            "schemas": [GROUP],
            "displayName": name,
            "members": [{"value": ids[i]} for i in member_indexes],
        }
        if external_id:
            body["externalId"] = external_id
        assert okta.post("/scim/v2/Groups", json=body).status_code == 201
    served = okta.get("/scim/v2/Users", params={"count": 100}).json()["Resources"]
    assert len(served) == len(PEOPLE)
    return list(served)


def _answer(okta: TestClient, path: str, text: str) -> set[str]:
    response = okta.get(path, params={"filter": text, "count": 100})
    assert response.status_code == 200, (text, response.text)
    return {r["id"] for r in response.json()["Resources"]}


def test_random_user_filters_match_the_reference(
    okta: TestClient, people: list[dict[str, Any]]
) -> None:
    ids = [u["id"] for u in people]
    group_ids = sorted({g["value"] for u in people for g in u.get("groups", [])})
    stamps = [u["meta"][k] for u in people[2:4] for k in ("created", "lastModified")]
    strings = st.sampled_from(WORDS + ids[:2] + group_ids + [ids[0].upper()])
    dates = ["2000-01-01T00:00:00Z", "2999-01-01T00:00:00+02:00", *stamps]

    @EXAMPLES
    @given(_user_filters(strings, dates))
    def check(text: str) -> None:
        node = ScimFilter(text).ast
        expected = {u["id"] for u in people if matches(u, node, "User")}
        assert _answer(okta, "/scim/v2/Users", text) == expected, text

    check()


def test_random_group_filters_match_the_reference(
    okta: TestClient, people: list[dict[str, Any]]
) -> None:
    served = okta.get("/scim/v2/Groups").json()["Resources"]
    user_ids = [u["id"] for u in people]
    strings = st.sampled_from(
        ["engineering", "Sales", "team", "g-ext", "G-EXT", "", "e", *user_ids[:3]]
        + [g["id"] for g in served]
    )
    stamps = [g["meta"][k] for g in served for k in ("created", "lastModified")]
    paths = ["displayName", "externalId", "id", "members.value", "members"]
    leaf = st.one_of(
        _leaf(paths, [], strings, ["2000-01-01T00:00:00Z", *stamps]),
        st.builds(lambda f: f"members[{f}]", _combined(_leaf(["value"], [], strings, []))),
    )

    @EXAMPLES
    @given(_combined(leaf))
    def check(text: str) -> None:
        node = ScimFilter(text).ast
        expected = {g["id"] for g in served if matches(g, node, "Group")}
        assert _answer(okta, "/scim/v2/Groups", text) == expected, text

    check()
