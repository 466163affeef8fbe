"""Okta over HTTP: the requests its provisioning engine and its SPEC test send, replayed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.factories import USER_URN, build_user, patch_op, suffix

pytestmark = pytest.mark.integration

LIST_RESPONSE_URN = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"
USERS = "/scim/v2/Users"
# Okta's Runscope SPEC test posts with these headers instead of the provisioning engine's.
SPEC_POST_HEADERS = {
    "User-Agent": "OKTA SCIM Integration",
    "Content-Type": "application/json",
    "Accept": "application/scim+json; charset=utf-8",
}


def _exists_check(okta: TestClient, user_name: str) -> dict[str, Any]:
    response = okta.get(
        USERS, params={"filter": f'userName eq "{user_name}"', "startIndex": "1", "count": "100"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/scim+json")
    return response.json()  # type: ignore[no-any-return]


def _create(okta: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = okta.post(USERS, json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _assert_scim_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/scim+json")
    body = response.json()
    assert body["schemas"] == [ERROR_URN]
    assert body["status"] == str(status)
    assert isinstance(body["detail"], str) and body["detail"]
    return body  # type: ignore[no-any-return]


def _timestamp(value: Any) -> datetime:
    """Read an RFC 3339 UTC date-time as meta carries it; fail on anything else."""
    assert isinstance(value, str) and value.endswith("Z"), value
    return datetime.fromisoformat(value.removesuffix("Z") + "+00:00")


# Assign user: exists check, then create


def test_exists_check_for_an_unknown_user_answers_an_empty_list(okta: TestClient) -> None:
    body = _exists_check(okta, "test.user@okta.local")

    assert body == {
        "schemas": [LIST_RESPONSE_URN],
        "totalResults": 0,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    }


def test_exists_check_numbers_are_json_integers(okta: TestClient) -> None:
    user = _create(okta, build_user())

    body = _exists_check(okta, user["userName"])

    for key in ("totalResults", "startIndex", "itemsPerPage"):
        assert type(body[key]) is int, key
    assert (body["totalResults"], body["itemsPerPage"], body["startIndex"]) == (1, 1, 1)
    assert body["Resources"][0]["id"] == user["id"]


def test_create_user_answers_201_with_the_full_user(okta: TestClient) -> None:
    sent = build_user()

    response = okta.post(USERS, json=sent)

    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/scim+json")
    body = response.json()
    assert body["id"]
    assert body["schemas"] == [USER_URN]
    for key in ("userName", "name", "emails", "displayName", "locale", "externalId"):
        assert body[key] == sent[key], key
    assert body["active"] is True
    assert "password" not in body
    assert sent["password"] not in response.text


def test_create_user_answers_with_location_and_meta(okta: TestClient) -> None:
    response = okta.post(USERS, json=build_user())

    body = response.json()
    location = f"http://muster.test/scim/v2/Users/{body['id']}"
    assert response.headers["location"] == location
    meta = body["meta"]
    assert meta["resourceType"] == "User"
    assert meta["location"] == location
    assert _timestamp(meta["created"]) <= _timestamp(meta["lastModified"])
    assert meta["version"].startswith('W/"')
    assert response.headers["etag"] == meta["version"]


def test_create_user_ignores_the_groups_okta_sends(okta: TestClient) -> None:
    body = _create(okta, build_user(groups=[]))

    assert "groups" not in body


def test_create_user_sent_as_application_json_is_accepted(okta: TestClient) -> None:
    sent = build_user()
    del sent["password"], sent["groups"], sent["locale"], sent["externalId"]

    response = okta.post(USERS, json=sent, headers=SPEC_POST_HEADERS)

    assert response.status_code == 201, response.text
    assert response.json()["userName"] == sent["userName"]


# Profile update: GET, then PUT the whole object back


def test_get_then_put_echoing_read_only_attributes_answers_200(okta: TestClient) -> None:
    created = _create(okta, build_user())
    fetched = okta.get(f"{USERS}/{created['id']}")
    assert fetched.status_code == 200, fetched.text
    body = fetched.json()
    body["groups"] = []
    body["name"] = {**body["name"], "givenName": "Annabel", "middleName": ""}
    body["emails"] = [{**body["emails"][0], "display": body["emails"][0]["value"]}]

    response = okta.put(f"{USERS}/{created['id']}", json=body)

    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["id"] == created["id"]
    assert updated["name"]["givenName"] == "Annabel"
    assert updated["meta"]["created"] == created["meta"]["created"]
    assert updated["meta"]["version"] != created["meta"]["version"]
    assert okta.get(f"{USERS}/{created['id']}").json()["name"]["givenName"] == "Annabel"


def test_put_changing_the_email_is_refused_with_mutability(okta: TestClient) -> None:
    created = _create(okta, build_user())
    new_email = f"moved.{suffix()}@example.com"
    body = {
        **created,
        "userName": new_email,
        "emails": [{"primary": True, "value": new_email, "type": "work"}],
    }

    response = okta.put(f"{USERS}/{created['id']}", json=body)

    error = _assert_scim_error(response, 400)
    assert error["scimType"] == "mutability"
    assert okta.get(f"{USERS}/{created['id']}").json()["userName"] == created["userName"]


# Deactivate and reactivate (OIN apps PATCH without a path)


def _set_active(okta: TestClient, user_id: str, active: bool) -> Any:
    return okta.patch(
        f"{USERS}/{user_id}", json=patch_op({"op": "replace", "value": {"active": active}})
    )


def test_patch_deactivates_and_reactivates(okta: TestClient) -> None:
    created = _create(okta, build_user())

    off = _set_active(okta, created["id"], False)
    assert off.status_code == 200, off.text
    assert off.json()["active"] is False
    assert okta.get(f"{USERS}/{created['id']}").json()["active"] is False

    on = _set_active(okta, created["id"], True)
    assert on.status_code == 200, on.text
    assert on.json()["active"] is True
    assert okta.get(f"{USERS}/{created['id']}").json()["active"] is True


def test_deactivated_user_still_matches_the_exists_check(okta: TestClient) -> None:
    created = _create(okta, build_user())
    _set_active(okta, created["id"], False)

    body = _exists_check(okta, created["userName"])

    assert body["totalResults"] == 1
    assert body["Resources"][0]["id"] == created["id"]
    assert body["Resources"][0]["active"] is False


def test_post_after_deactivation_revives_the_same_user(okta: TestClient) -> None:
    sent = build_user()
    created = _create(okta, sent)
    _set_active(okta, created["id"], False)

    response = okta.post(USERS, json={**sent, "displayName": "Ann Returns"})

    assert response.status_code == 201, response.text
    revived = response.json()
    assert revived["id"] == created["id"]
    assert revived["active"] is True
    assert revived["displayName"] == "Ann Returns"
    assert response.headers["location"].endswith(f"/Users/{created['id']}")
    assert _exists_check(okta, sent["userName"])["totalResults"] == 1


# Okta's CRUD test checks after each action


def test_crud_checks_after_update_and_deactivation(okta: TestClient) -> None:
    sent = build_user()
    created = _create(okta, sent)
    put = {**created, "name": {**created["name"], "givenName": "Updated"}}
    assert okta.put(f"{USERS}/{created['id']}", json=put).status_code == 200
    _set_active(okta, created["id"], False)

    listed = _exists_check(okta, sent["userName"])["Resources"][0]
    fetched = okta.get(f"{USERS}/{created['id']}").json()

    assert listed["userName"] == sent["userName"]
    assert listed["emails"][0]["value"] == sent["emails"][0]["value"]
    assert listed["name"]["familyName"] == sent["name"]["familyName"]
    assert listed["name"]["givenName"] == "Updated"
    assert fetched["name"]["givenName"] == "Updated"
    assert fetched["active"] is False


# Okta's SPEC test, step by step (idp-requests.md)


@pytest.fixture
def spec_user() -> dict[str, Any]:
    """The SPEC test's random user: given+family+"@atko.com", mixed case."""
    given, family = f"Runscope{suffix()[:3]}", f"Abcdefgh{suffix()[:3]}"
    email = f"{given}{family}@atko.com"
    return {
        "schemas": [USER_URN],
        "userName": email,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": True, "value": email, "type": "work"}],
        "displayName": f"{given} {family}",
        "active": True,
    }


def test_spec_steps_1_and_2_list_then_get_the_first_user(okta: TestClient) -> None:
    _create(okta, build_user())  # Okta says to create one user before running the test

    listed = okta.get(USERS, params={"count": "1", "startIndex": "1"})

    assert listed.status_code == 200
    body = listed.json()
    assert LIST_RESPONSE_URN in body["schemas"]
    assert all(type(body[k]) is int for k in ("itemsPerPage", "startIndex", "totalResults"))
    first = body["Resources"][0]
    for value in (
        first["id"],
        first["name"]["familyName"],
        first["name"]["givenName"],
        first["userName"],
        first["emails"][0]["value"],
    ):
        assert value
    assert first["active"] is True
    fetched = okta.get(f"{USERS}/{first['id']}")
    assert fetched.status_code == 200
    assert fetched.json()["id"] == first["id"]
    assert fetched.json()["userName"] == first["userName"]


def test_spec_step_3_filter_for_an_unknown_user_totals_zero(okta: TestClient) -> None:
    body = _exists_check(okta, "abcdefgh@atko.com")

    assert body["totalResults"] == 0
    assert LIST_RESPONSE_URN in body["schemas"]


@pytest.mark.parametrize("user_id", ["010101001010101011001010101011", "00919288221112222"])
def test_spec_steps_4_and_12_unknown_id_is_a_404_scim_error(okta: TestClient, user_id: str) -> None:
    response = okta.get(f"{USERS}/{user_id}")

    _assert_scim_error(response, 404)


def test_spec_steps_5_to_9_create_get_duplicate_and_caps(
    okta: TestClient, spec_user: dict[str, Any]
) -> None:
    user_name = spec_user["userName"]
    assert _exists_check(okta, user_name)["totalResults"] == 0

    created = okta.post(USERS, json=spec_user, headers=SPEC_POST_HEADERS)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["active"] is True
    assert body["id"]
    assert body["name"] == spec_user["name"]
    assert USER_URN in body["schemas"]
    assert body["userName"] == user_name  # stored in the case it was sent

    fetched = okta.get(f"{USERS}/{body['id']}").json()
    assert (fetched["userName"], fetched["name"]) == (user_name, spec_user["name"])

    duplicate = okta.post(USERS, json=spec_user, headers=SPEC_POST_HEADERS)
    error = _assert_scim_error(duplicate, 409)
    assert error["scimType"] == "uniqueness"

    caps = _exists_check(okta, user_name.upper())
    assert caps["totalResults"] == 1
    assert caps["Resources"][0]["id"] == body["id"]


def test_spec_step_10_groups_answer_a_list(okta: TestClient) -> None:
    response = okta.get("/scim/v2/Groups")

    assert response.status_code == 200
    body = response.json()
    assert LIST_RESPONSE_URN in body["schemas"]
    assert isinstance(body["Resources"], list)


def test_spec_step_11_a_non_token_is_a_401_scim_error(client: TestClient, scim_token: str) -> None:
    response = client.get(
        USERS,
        params={"filter": 'userName eq "abcdefgh@atko.com"'},
        headers={"Authorization": "non-token", "User-Agent": "OKTA SCIM Integration"},
    )

    body = _assert_scim_error(response, 401)
    assert body["status"] == "401"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_request_without_authorization_is_a_401_scim_error(client: TestClient) -> None:
    response = client.get(USERS)

    _assert_scim_error(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


# Import: paging through every user


@pytest.fixture
def seven_users(okta: TestClient) -> list[str]:
    return [_create(okta, build_user())["id"] for _ in range(7)]


def _page(okta: TestClient, start: int, count: int) -> dict[str, Any]:
    response = okta.get(USERS, params={"startIndex": str(start), "count": str(count)})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_import_pages_cover_every_user_once_in_a_stable_order(
    okta: TestClient, seven_users: list[str]
) -> None:
    pages = [_page(okta, start, 3) for start in (1, 4, 7)]

    ids = [r["id"] for page in pages for r in page["Resources"]]
    assert sorted(ids) == sorted(seven_users)
    assert [p["itemsPerPage"] for p in pages] == [3, 3, 1]
    assert [p["startIndex"] for p in pages] == [1, 4, 7]
    assert all(p["totalResults"] == 7 for p in pages)
    assert ids == [r["id"] for r in _page(okta, 1, 100)["Resources"]]
    assert ids == [
        r["id"] for page in (_page(okta, s, 3) for s in (1, 4, 7)) for r in page["Resources"]
    ]


def test_start_index_past_the_end_is_an_empty_page(
    okta: TestClient, seven_users: list[str]
) -> None:
    body = _page(okta, 101, 100)

    assert (body["totalResults"], body["startIndex"], body["itemsPerPage"]) == (7, 101, 0)
    assert body["Resources"] == []


def test_count_zero_answers_only_the_total(okta: TestClient, seven_users: list[str]) -> None:
    body = _page(okta, 1, 0)

    assert (body["totalResults"], body["itemsPerPage"], body["Resources"]) == (7, 0, [])


def test_query_parameter_names_are_read_in_any_case(
    okta: TestClient, seven_users: list[str]
) -> None:
    response = okta.get(USERS, params={"startindex": "2", "Count": "2"})

    body = response.json()
    assert (body["startIndex"], body["itemsPerPage"]) == (2, 2)


def test_a_scim_request_records_when_the_token_was_last_used(
    okta: TestClient, uow_factory: Any, tenant: Any
) -> None:
    from muster.services import api_tokens

    okta.get("/scim/v2/Users")

    info = api_tokens.current_token(uow_factory(tenant.tenant_id))
    assert info is not None and info.last_used is not None


def test_a_filter_value_with_accents_and_plus_signs_finds_the_user(okta: TestClient) -> None:
    email = f"josé+{suffix()}@example.com"
    created = okta.post("/scim/v2/Users", json=build_user(email=email))
    assert created.status_code == 201, created.text

    found = okta.get("/scim/v2/Users", params={"filter": f'userName eq "{email.upper()}"'})

    assert found.json()["totalResults"] == 1
    assert found.json()["Resources"][0]["id"] == created.json()["id"]
