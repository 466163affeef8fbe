"""POST /.search at the root: Users then Groups, one filter, index or cursor pages."""

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


def _search(okta: TestClient, **fields: Any) -> Any:
    return okta.post("/scim/v2/.search", json={"schemas": [SEARCH], **fields})


def _given(okta: TestClient, users: int, groups: int) -> tuple[list[str], list[str]]:
    user_ids = [okta.post("/scim/v2/Users", json=build_user()).json()["id"] for _ in range(users)]
    group_ids = []
    for _ in range(groups):
        body = {"schemas": [GROUP], "displayName": f"Team {suffix()}"}
        group_ids.append(okta.post("/scim/v2/Groups", json=body).json()["id"])
    return user_ids, group_ids


def test_the_root_search_lists_users_then_groups(okta: TestClient) -> None:
    user_ids, group_ids = _given(okta, 2, 2)

    body = _search(okta).json()

    assert body["totalResults"] == 4
    assert [r["id"] for r in body["Resources"]] == user_ids + group_ids
    assert [r["meta"]["resourceType"] for r in body["Resources"]] == [
        "User", "User", "Group", "Group",
    ]  # fmt: skip


def test_index_pages_run_on_from_the_users_into_the_groups(okta: TestClient) -> None:
    user_ids, group_ids = _given(okta, 3, 2)

    middle = _search(okta, startIndex=3, count=2).json()
    tail = _search(okta, startIndex=5, count=2).json()
    totals_only = _search(okta, count=0).json()

    assert [r["id"] for r in middle["Resources"]] == [user_ids[2], group_ids[0]]
    assert [r["id"] for r in tail["Resources"]] == [group_ids[1]]
    assert middle["totalResults"] == tail["totalResults"] == totals_only["totalResults"] == 5
    assert (middle["startIndex"], totals_only["Resources"]) == (3, [])


def test_cursor_pages_cross_from_users_to_groups_once(okta: TestClient) -> None:
    user_ids, group_ids = _given(okta, 3, 3)

    seen, cursor, pages = [], "", 0
    while cursor is not None:
        body = _search(okta, count=2, cursor=cursor).json()
        assert body["totalResults"] == 6 and "startIndex" not in body
        seen += [r["id"] for r in body["Resources"]]
        cursor, pages = body.get("nextCursor"), pages + 1

    assert seen == user_ids + group_ids
    assert pages == 3


def test_a_filter_on_one_type_finds_only_that_type(okta: TestClient) -> None:
    tag = suffix()
    user = okta.post("/scim/v2/Users", json=build_user(email=f"{tag}@example.com")).json()
    group = okta.post(
        "/scim/v2/Groups",
        json={"schemas": [GROUP], "displayName": f"Team {tag}", "members": [{"value": user["id"]}]},
    ).json()

    users_only = _search(okta, filter=f'userName sw "{tag}"').json()
    groups_only = _search(okta, filter=f'members.value eq "{user["id"]}"').json()
    both = _search(okta, filter=f'id eq "{user["id"]}" or id eq "{group["id"]}"').json()

    assert [r["id"] for r in users_only["Resources"]] == [user["id"]]
    assert [r["id"] for r in groups_only["Resources"]] == [group["id"]]
    assert [r["id"] for r in both["Resources"]] == [user["id"], group["id"]]
    assert both["totalResults"] == 2


def test_a_filter_fitting_neither_type_is_invalid_filter(okta: TestClient) -> None:
    response = _search(okta, filter='favouriteColour eq "blue"')

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidFilter"
    assert "favouriteColour" in response.json()["detail"]


def test_the_root_search_refuses_sort_by_and_applies_attributes(okta: TestClient) -> None:
    _given(okta, 1, 1)

    sorted_search = _search(okta, sortBy="id")
    projected = _search(okta, attributes=["id"]).json()

    assert sorted_search.status_code == 400
    assert sorted_search.json()["scimType"] == "invalidValue"
    assert all(set(r) <= {"id", "schemas"} for r in projected["Resources"])


def test_a_cursor_page_filled_by_the_last_users_still_leads_on_to_the_groups(
    okta: TestClient,
) -> None:
    user_ids, group_ids = _given(okta, 4, 2)

    pages = []
    body = _search(okta, count=2, cursor="").json()
    pages.append([r["id"] for r in body["Resources"]])
    while "nextCursor" in body:
        body = _search(okta, count=2, cursor=body["nextCursor"]).json()
        pages.append([r["id"] for r in body["Resources"]])
        assert body["totalResults"] == 6

    assert pages == [user_ids[:2], user_ids[2:], group_ids]


def test_previous_cursors_walk_back_across_the_groups_into_the_users(okta: TestClient) -> None:
    user_ids, group_ids = _given(okta, 3, 2)
    everything = user_ids + group_ids
    pages = [_search(okta, count=2, cursor="").json()]
    while "nextCursor" in pages[-1]:
        pages.append(_search(okta, count=2, cursor=pages[-1]["nextCursor"]).json())

    back = [pages[-1]]
    while "previousCursor" in back[-1]:
        back.append(_search(okta, count=2, cursor=back[-1]["previousCursor"]).json())

    assert [[r["id"] for r in p["Resources"]] for p in pages] == [
        everything[:2], everything[2:4], everything[4:],
    ]  # fmt: skip
    assert [[r["id"] for r in p["Resources"]] for p in reversed(back)] == [
        everything[:2], everything[2:4], everything[4:],
    ]  # fmt: skip
    assert all(p["totalResults"] == 5 for p in pages + back)


def test_a_users_cursor_is_not_a_root_search_cursor(okta: TestClient) -> None:
    _given(okta, 2, 0)
    token = okta.get("/scim/v2/Users", params={"cursor": "", "count": 1}).json()["nextCursor"]

    response = _search(okta, cursor=token)

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidCursor"


# Issue 14: the root query by GET (RFC 7644 §3.4.2.1), and the byte budget at the root.


@pytest.mark.parametrize("root", ["/scim/v2/", "/scim/v2"])
def test_a_root_get_answers_like_the_root_search(okta: TestClient, root: str) -> None:
    # python-scim's scim2-client queries the root by GET; it was 404.
    tag = suffix()
    user = okta.post("/scim/v2/Users", json=build_user(email=f"{tag}@example.com")).json()
    _given(okta, 2, 2)
    for fields in (
        {},
        {"startIndex": 3, "count": 2},
        {"count": 0},
        {"filter": f'userName sw "{tag}"'},
        {"filter": "displayName pr", "excludedAttributes": "members"},
        {"attributes": "id"},
    ):
        params = {k: v if isinstance(v, str) else str(v) for k, v in fields.items()}
        by_get = okta.get(root, params=params)
        by_post = _search(okta, **fields)

        assert by_get.status_code == 200, by_get.text
        assert by_get.headers["content-type"].startswith("application/scim+json")
        assert by_get.json() == by_post.json()
    assert okta.get(root, params={"filter": f'id eq "{user["id"]}"'}).json()["totalResults"] == 1


def test_a_root_get_pages_by_cursor_and_refuses_what_the_search_refuses(
    okta: TestClient,
) -> None:
    user_ids, group_ids = _given(okta, 2, 2)

    seen, cursor = [], ""
    while cursor is not None:
        body = okta.get("/scim/v2/", params={"cursor": cursor, "count": 3}).json()
        seen += [r["id"] for r in body["Resources"]]
        cursor = body.get("nextCursor")
    sorted_get = okta.get("/scim/v2/", params={"sortBy": "id"})
    bad_filter = okta.get("/scim/v2/", params={"filter": 'favouriteColour eq "blue"'})

    assert seen == user_ids + group_ids
    assert sorted_get.status_code == 400 and sorted_get.json()["scimType"] == "invalidValue"
    assert bad_filter.status_code == 400 and bad_filter.json()["scimType"] == "invalidFilter"


def test_a_root_write_is_405(okta: TestClient) -> None:
    response = okta.post("/scim/v2/", json=build_user())

    assert response.status_code == 405
    assert response.json()["status"] == "405"


def _budget_client(settings: Settings, engine: Engine, scim_token: str, budget: int) -> TestClient:
    app = create_app(settings.model_copy(update={"max_response_bytes": budget}), engine=engine)
    client = TestClient(app, base_url="http://muster.test")
    client.headers.update({**OKTA_HEADERS, "Authorization": f"Bearer {scim_token}"})
    return client


def test_root_pages_cut_by_the_byte_budget_go_on_from_users_into_groups(
    okta: TestClient, settings: Settings, engine: Engine, scim_token: str
) -> None:
    user_ids, group_ids = _given(okta, 3, 3)
    # Room for a user and a group, or two groups, but not two users.
    resources = _search(okta).json()["Resources"]
    user_size, group_size = (
        max(len(orjson.dumps(r)) for r in resources[i:j]) for i, j in ((0, 3), (3, 6))
    )
    assert user_size > group_size
    budget = user_size + group_size + 2

    with _budget_client(settings, engine, scim_token, budget) as small:
        by_cursor, cursor = [], ""
        while cursor is not None:
            body = small.get("/scim/v2/", params={"cursor": cursor, "count": 4}).json()
            assert body["totalResults"] == 6
            by_cursor.append([r["id"] for r in body["Resources"]])
            cursor = body.get("nextCursor")
        by_index, start = [], 1
        while start <= 6:
            body = small.post(
                "/scim/v2/.search", json={"schemas": [SEARCH], "startIndex": start, "count": 4}
            ).json()
            by_index.append([r["id"] for r in body["Resources"]])
            start += body["itemsPerPage"]

    u, g = user_ids, group_ids
    assert by_cursor == by_index == [[u[0]], [u[1]], [u[2], g[0]], [g[1], g[2]]]
