"""sortBy/sortOrder on lists, and POST /.search (RFC 7644 §3.4.2.3 and §3.4.3)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from muster.app import create_app
from muster.config import Settings
from tests.factories import OKTA_HEADERS, build_user, suffix

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def _users(okta: TestClient, *names: str) -> list[dict[str, Any]]:
    tag = suffix()
    created = []
    for name in names:
        response = okta.post("/scim/v2/Users", json=build_user(email=f"{name}.{tag}@example.com"))
        assert response.status_code == 201, response.text
        created.append(response.json())
    return created


def test_users_sort_by_user_name_in_either_order_ignoring_case(okta: TestClient) -> None:
    _users(okta, "carol", "Alice", "bob")

    ascending = okta.get("/scim/v2/Users", params={"sortBy": "userName"}).json()
    descending = okta.get(
        "/scim/v2/Users", params={"sortBy": "userName", "sortOrder": "descending"}
    ).json()

    names = [u["userName"].split(".")[0].lower() for u in ascending["Resources"]]
    assert names == ["alice", "bob", "carol"]
    assert [u["id"] for u in descending["Resources"]] == [
        u["id"] for u in reversed(ascending["Resources"])
    ]


def test_sorted_pages_do_not_overlap(okta: TestClient) -> None:
    _users(okta, "d", "a", "c", "b", "e")

    first = okta.get("/scim/v2/Users", params={"sortBy": "userName", "count": 2}).json()
    second = okta.get(
        "/scim/v2/Users", params={"sortBy": "userName", "count": 2, "startIndex": 3}
    ).json()

    seen = [u["id"] for u in first["Resources"] + second["Resources"]]
    assert len(set(seen)) == 4
    assert first["totalResults"] == second["totalResults"] == 5


def test_an_unsupported_sort_attribute_or_order_is_invalid_value(okta: TestClient) -> None:
    bad_attribute = okta.get("/scim/v2/Users", params={"sortBy": "title"})
    bad_order = okta.get("/scim/v2/Users", params={"sortBy": "userName", "sortOrder": "up"})

    for response, named in ((bad_attribute, "title"), (bad_order, "sortOrder")):
        assert response.status_code == 400
        assert response.json()["scimType"] == "invalidValue"
        assert named in response.json()["detail"]


def test_post_search_on_users_answers_like_the_list(okta: TestClient) -> None:
    ann, _ = _users(okta, "ann", "ben")

    found = okta.post(
        "/scim/v2/Users/.search",
        json={
            "schemas": [SEARCH],
            "filter": f'userName eq "{ann["userName"]}"',
            "attributes": ["userName"],
            "startIndex": 1,
            "count": 10,
        },
    )

    assert found.status_code == 200, found.text
    body = found.json()
    assert body["totalResults"] == 1
    assert body["Resources"] == [
        {"schemas": ann["schemas"], "id": ann["id"], "userName": ann["userName"]}
    ]


def test_post_search_on_groups_sorts_by_display_name(okta: TestClient) -> None:
    for name in ("Zeta", "alpha", "Mid"):
        response = okta.post("/scim/v2/Groups", json={"schemas": [GROUP], "displayName": name})
        assert response.status_code == 201, response.text

    found = okta.post(
        "/scim/v2/Groups/.search",
        json={"schemas": [SEARCH], "sortBy": "displayName", "excludedAttributes": ["members"]},
    )

    assert found.status_code == 200, found.text
    assert [g["displayName"] for g in found.json()["Resources"]] == ["alpha", "Mid", "Zeta"]


def test_post_search_without_the_search_request_schema_is_refused(okta: TestClient) -> None:
    response = okta.post("/scim/v2/Users/.search", json={"filter": 'userName eq "x"'})

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"
    assert SEARCH in response.json()["detail"]


def test_service_provider_config_says_sorting_is_supported(okta: TestClient) -> None:
    assert okta.get("/scim/v2/ServiceProviderConfig").json()["sort"] == {"supported": True}


def test_entra_manager_check_filters_by_id_and_bare_manager(okta: TestClient) -> None:
    # Entra checks a manager before updating it:
    # GET /Users?filter=id eq "<uid>" and manager eq "<mid>"&attributes=id
    enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    boss, _ = _users(okta, "boss", "other")
    body = build_user(email=f"report.{suffix()}@example.com")
    body["schemas"] = [body["schemas"][0], enterprise]
    body[enterprise] = {"manager": {"value": boss["id"]}}
    report = okta.post("/scim/v2/Users", json=body).json()

    def check(manager_id: str) -> int:
        response = okta.get(
            "/scim/v2/Users",
            params={
                "filter": f'id eq "{report["id"]}" and manager eq "{manager_id}"',
                "attributes": "id",
            },
        )
        assert response.status_code == 200, response.text
        return int(response.json()["totalResults"])

    assert check(boss["id"]) == 1
    assert check("someone-else") == 0


@pytest.mark.parametrize("path", ["/scim/v2/Users", "/scim/v2/Groups"])
def test_an_index_page_cut_by_the_byte_budget_says_so_in_items_per_page(
    okta: TestClient, settings: Settings, engine: Engine, scim_token: str, path: str
) -> None:
    # Issue 14: a list answers `count` resources only while their JSON stays within
    # MUSTER_MAX_RESPONSE_BYTES; the client goes on at startIndex + itemsPerPage (RFC 7644
    # §3.4.2.4 lets a page hold fewer than `count`).
    if path.endswith("Users"):
        created = [u["id"] for u in _users(okta, "a", "b", "c", "d", "e")]
    else:
        groups = [{"schemas": [GROUP], "displayName": f"Team {suffix()}"} for _ in range(5)]
        created = [okta.post(path, json=group).json()["id"] for group in groups]
    size = len(orjson.dumps(okta.get(path, params={"count": 1}).json()["Resources"][0]))
    app = create_app(
        settings.model_copy(update={"max_response_bytes": 2 * (size + 1) + size // 2}),
        engine=engine,
    )

    pages, start = [], 1
    with TestClient(app, base_url="http://muster.test") as small:
        small.headers.update({**OKTA_HEADERS, "Authorization": f"Bearer {scim_token}"})
        while start <= 5:
            response = small.get(path, params={"startIndex": start, "count": 4})
            body = response.json()
            assert (body["totalResults"], body["startIndex"]) == (5, start)
            assert body["itemsPerPage"] == len(body["Resources"])
            pages.append([r["id"] for r in body["Resources"]])
            start += body["itemsPerPage"]
        everything = small.get(path).json()

    assert [len(page) for page in pages] == [2, 2, 1]
    assert [i for page in pages for i in page] == created
    assert everything["itemsPerPage"] == 2  # the default count, cut the same way
    assert response.headers["content-type"] == "application/scim+json; charset=utf-8"
