"""RFC 9865 cursor pagination on /Users, /Groups and their .search: stable keyset pages."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.factories import build_user, suffix

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def _user(okta: TestClient, name: str | None = None, **overrides: Any) -> dict[str, Any]:
    email = f"{name or 'user'}.{suffix()}@example.com"
    response = okta.post("/scim/v2/Users", json=build_user(email=email, **overrides))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _walk(okta: TestClient, path: str = "/scim/v2/Users", **params: Any) -> list[dict[str, Any]]:
    """Every page from an empty cursor to the last, as ListResponse bodies."""
    pages = []
    cursor = ""
    while True:
        response = okta.get(path, params={**params, "cursor": cursor})
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body)
        assert len(pages) < 100
        if "nextCursor" not in body:
            return pages
        cursor = body["nextCursor"]


def _ids(pages: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for page in pages for r in page["Resources"]]


def test_cursor_pages_list_every_user_once_without_start_index(okta: TestClient) -> None:
    created = [_user(okta)["id"] for _ in range(5)]

    pages = _walk(okta, count=2)

    assert _ids(pages) == created
    assert [len(p["Resources"]) for p in pages] == [2, 2, 1]
    for page in pages:
        assert page["totalResults"] == 5
        assert page["itemsPerPage"] == len(page["Resources"])
        assert "startIndex" not in page


def test_pages_stay_stable_while_users_are_added(okta: TestClient) -> None:
    # Sorted by userName, new users land before, between and after the pages already read.
    present = [_user(okta, name)["id"] for name in ("b", "d", "f", "h", "j", "l")]
    first = okta.get("/scim/v2/Users", params={"cursor": "", "count": 2, "sortBy": "userName"})
    seen = [r["id"] for r in first.json()["Resources"]]
    cursor = first.json()["nextCursor"]

    added = []
    while cursor:
        added += [_user(okta, name)["id"] for name in ("a", "e", "z")]
        body = okta.get(
            "/scim/v2/Users", params={"cursor": cursor, "count": 2, "sortBy": "userName"}
        ).json()
        seen += [r["id"] for r in body["Resources"]]
        cursor = body.get("nextCursor")

    assert len(seen) == len(set(seen))  # nothing repeated
    assert set(present) <= set(seen)  # nothing present at the start skipped
    assert set(seen) <= set(present) | set(added)


def test_creation_order_pages_stay_stable_while_users_are_added(okta: TestClient) -> None:
    present = [_user(okta)["id"] for _ in range(4)]
    body = okta.get("/scim/v2/Users", params={"cursor": "", "count": 3}).json()
    seen = [r["id"] for r in body["Resources"]]

    for _ in range(2):
        _user(okta)
    while "nextCursor" in body:
        body = okta.get("/scim/v2/Users", params={"cursor": body["nextCursor"], "count": 3}).json()
        seen += [r["id"] for r in body["Resources"]]

    assert seen[:4] == present
    assert len(seen) == len(set(seen)) == 6


def test_previous_cursor_returns_the_page_before(okta: TestClient) -> None:
    created = [_user(okta)["id"] for _ in range(5)]
    first = okta.get("/scim/v2/Users", params={"cursor": "", "count": 2}).json()
    second = okta.get("/scim/v2/Users", params={"cursor": first["nextCursor"], "count": 2}).json()

    back = okta.get("/scim/v2/Users", params={"cursor": second["previousCursor"], "count": 2})

    assert "previousCursor" not in first
    assert [r["id"] for r in second["Resources"]] == created[2:4]
    assert [r["id"] for r in back.json()["Resources"]] == created[:2]
    assert "previousCursor" not in back.json()  # nothing before the first page
    assert back.json()["nextCursor"]


def test_sorting_on_a_sometimes_missing_attribute_pages_through_every_user(
    okta: TestClient,
) -> None:
    # externalId is absent on some users: NULL sorts first ascending, last descending, on
    # SQLite and PostgreSQL alike, and a cursor sitting on a NULL still moves on.
    with_id = [_user(okta, externalId=f"x{n}")["id"] for n in (3, 1, 2)]
    without = [_user(okta, externalId=None)["id"] for _ in range(2)]

    ascending = _ids(_walk(okta, count=1, sortBy="externalId"))
    descending = _ids(_walk(okta, count=1, sortBy="externalId", sortOrder="descending"))

    assert ascending == [*without, with_id[1], with_id[2], with_id[0]]
    assert descending == list(reversed(ascending))


def test_descending_cursor_pages_mirror_ascending_ones(okta: TestClient) -> None:
    for name in ("carol", "alice", "bob", "dave"):
        _user(okta, name)

    ascending = _ids(_walk(okta, count=3, sortBy="userName"))
    descending = _ids(_walk(okta, count=3, sortBy="userName", sortOrder="descending"))

    assert descending == list(reversed(ascending))


def test_a_bad_cursor_is_invalid_cursor_and_cursor_with_start_index_is_refused(
    okta: TestClient,
) -> None:
    _user(okta)
    _user(okta)
    token = okta.get("/scim/v2/Users", params={"cursor": "", "count": 1}).json()["nextCursor"]

    tampered = okta.get("/scim/v2/Users", params={"cursor": token[:-2] + "zz"})
    other_sort = okta.get("/scim/v2/Users", params={"cursor": token, "sortBy": "userName"})
    on_groups = okta.get("/scim/v2/Groups", params={"cursor": token})
    both = okta.get("/scim/v2/Users", params={"cursor": "", "startIndex": 1})

    for response in (tampered, other_sort, on_groups):
        assert response.status_code == 400
        assert response.json()["scimType"] == "invalidCursor"
        assert response.json()["status"] == "400"
    assert both.status_code == 400
    assert both.json()["scimType"] == "invalidValue"


def test_count_zero_answers_the_total_only_and_count_is_clamped(okta: TestClient) -> None:
    for _ in range(3):
        _user(okta)

    zero = okta.get("/scim/v2/Users", params={"cursor": "", "count": 0}).json()
    huge = okta.get("/scim/v2/Users", params={"cursor": "", "count": 10**9}).json()

    assert (zero["totalResults"], zero["Resources"]) == (3, [])
    assert "nextCursor" not in zero
    assert len(huge["Resources"]) == 3


def test_a_filtered_search_pages_by_cursor_in_the_body(okta: TestClient) -> None:
    tag = suffix()
    wanted = [
        okta.post("/scim/v2/Users", json=build_user(email=f"{tag}.{n}@example.com")).json()["id"]
        for n in range(3)
    ]
    _user(okta)
    search = {"schemas": [SEARCH], "filter": f'userName sw "{tag}"', "count": 2, "cursor": ""}

    first = okta.post("/scim/v2/Users/.search", json=search).json()
    second = okta.post(
        "/scim/v2/Users/.search", json={**search, "cursor": first["nextCursor"]}
    ).json()

    assert [r["id"] for r in first["Resources"] + second["Resources"]] == wanted
    assert first["totalResults"] == 3
    assert "nextCursor" not in second


def test_groups_page_by_cursor(okta: TestClient) -> None:
    created = []
    for _ in range(3):
        response = okta.post(
            "/scim/v2/Groups", json={"schemas": [GROUP], "displayName": f"Team {suffix()}"}
        )
        created.append(response.json()["id"])

    pages = _walk(okta, "/scim/v2/Groups", count=2, excludedAttributes="members")
    by_name = _ids(_walk(okta, "/scim/v2/Groups", count=1, sortBy="displayName"))

    assert _ids(pages) == created
    assert sorted(by_name) == sorted(created)


def test_the_service_provider_config_advertises_both_pagination_methods(
    okta: TestClient,
) -> None:
    config = okta.get("/scim/v2/ServiceProviderConfig").json()

    assert config["pagination"] == {
        "cursor": True,
        "index": True,
        "defaultPaginationMethod": "index",
        "defaultPageSize": 100,
        "maxPageSize": 1000,
    }
    assert config["filter"]["maxResults"] == 1000


def test_later_pages_repeat_the_total_counted_when_the_walk_began(okta: TestClient) -> None:
    created = [_user(okta)["id"] for _ in range(3)]
    first = okta.get("/scim/v2/Users", params={"cursor": "", "count": 2}).json()

    late = _user(okta)["id"]
    second = okta.get("/scim/v2/Users", params={"cursor": first["nextCursor"], "count": 2}).json()

    assert first["totalResults"] == second["totalResults"] == 3
    assert [r["id"] for r in second["Resources"]] == [created[2], late]
    assert okta.get("/scim/v2/Users", params={"cursor": ""}).json()["totalResults"] == 4


@pytest.mark.parametrize(
    "sort_by", ["meta.created", "meta.lastModified", "active", "displayName", "name.familyName",
                "emails", "id"],
)  # fmt: skip
def test_every_sort_key_pages_through_each_user_once_in_mirror_order(
    okta: TestClient, sort_by: str
) -> None:
    # Dates, booleans, document expressions (some missing) and plain columns as cursor keys.
    created = {
        _user(okta, displayName=name, active=active)["id"]
        for name, active in (("Bo", True), ("al", False), ("Bo", True), (None, True))
    }

    ascending = _ids(_walk(okta, count=1, sortBy=sort_by))
    descending = _ids(_walk(okta, count=2, sortBy=sort_by, sortOrder="descending"))

    assert sorted(ascending) == sorted(created)
    assert descending == list(reversed(ascending))
