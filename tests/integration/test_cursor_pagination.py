"""RFC 9865 cursor pagination on /Users, /Groups and their .search: stable keyset pages."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from starlette.testclient import TestClient

from muster.app import create_app
from muster.config import Settings
from muster.scim import cursors
from muster.scim.cursors import CursorKeys, Listing
from muster.services import api_tokens, tenants, users
from muster.services.database import UnitOfWork
from muster.services.paging import CursorKeyring
from tests.factories import OKTA_HEADERS, build_user, suffix

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


# Issue 14: cursors are signed and bound to their tenant and query.


def _server_keys(settings: Settings, engine: Engine) -> CursorKeys:
    """The keys the app signs with (MUSTER_CURSOR_KEYS unset: the one in the database)."""
    return CursorKeyring(None, lambda _: UnitOfWork(engine)).keys()


def _signed_cursor(
    settings: Settings, engine: Engine, tenant_id: str, sort_by: str, fields: list[Any]
) -> str:
    """A token signed with the server's own key, as only a leaked key or a bug could make."""
    listing = Listing(_server_keys(settings, engine), tenant_id, "User", "", sort_by, False)
    payload = orjson.dumps(fields)
    return cursors._b64(payload + listing.keys.sign(listing.message(payload)))


@pytest.fixture
def another_app(
    settings: Settings, engine: Engine, scim_token: str
) -> Iterator[Callable[..., TestClient]]:
    """Clients of further Muster instances on the same database, each with its own settings."""
    with contextlib.ExitStack() as stack:

        def make(**overrides: Any) -> TestClient:
            app = create_app(settings.model_copy(update=overrides), engine=engine)
            client = stack.enter_context(TestClient(app, base_url="http://muster.test"))
            client.headers.update({**OKTA_HEADERS, "Authorization": f"Bearer {scim_token}"})
            return client

        yield make


def test_another_tenants_cursor_is_invalid_cursor(
    okta: TestClient, uow_factory: Callable[..., Any]
) -> None:
    # Before: B's cursor with A's token listed A's users with B's totalResults.
    _user(okta)
    other = tenants.create_tenant(uow_factory(), f"other-{suffix()}", plan="enterprise")
    for _ in range(3):
        users.create_user(uow_factory(other.tenant_id), build_user())
    other_token = api_tokens.issue_scim_token(uow_factory(), other.slug).secret
    theirs = okta.get(
        "/scim/v2/Users",
        params={"cursor": "", "count": 1},
        headers={"Authorization": f"Bearer {other_token}"},
    ).json()["nextCursor"]

    response = okta.get("/scim/v2/Users", params={"cursor": theirs, "count": 1})

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidCursor"
    assert "another tenant" in response.json()["detail"]


def test_a_cursor_sent_with_another_filter_is_invalid_cursor(okta: TestClient) -> None:
    for _ in range(3):
        _user(okta, "ann")
    params = {"cursor": "", "count": 1, "filter": 'userName sw "ann"'}
    token = okta.get("/scim/v2/Users", params=params).json()["nextCursor"]

    same = okta.get("/scim/v2/Users", params={**params, "cursor": token})
    other = okta.get("/scim/v2/Users", params={**params, "cursor": token, "filter": "userName pr"})
    none = okta.get("/scim/v2/Users", params={"cursor": token, "count": 1})

    assert same.status_code == 200
    for response in (other, none):
        assert response.status_code == 400
        assert response.json()["scimType"] == "invalidCursor"


def test_an_edited_cursor_is_invalid_cursor_and_its_total_never_echoed(okta: TestClient) -> None:
    for _ in range(3):
        _user(okta)
    token = okta.get("/scim/v2/Users", params={"cursor": "", "count": 1}).json()["nextCursor"]
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    payload, tag = raw[: -cursors.TAG_BYTES], raw[-cursors.TAG_BYTES :]
    forged_total = cursors._b64(payload.replace(b",3]", b",999999]") + tag)
    unsigned = cursors._b64(payload)

    for forged in (forged_total, unsigned):
        response = okta.get("/scim/v2/Users", params={"cursor": forged})
        assert response.status_code == 400
        assert response.json()["scimType"] == "invalidCursor"
        assert "999999" not in response.text


@pytest.mark.parametrize(
    ("sort_by", "tag", "key"),
    [
        ("active", "s", "true"),
        ("active", "t", "2025-01-01T00:00:00"),
        ("meta.created", "s", "yesterday"),
        ("meta.created", "b", True),
        ("meta.lastModified", "t", "2025-01-01T00:00:00+02:00"),
        ("userName", "b", False),
    ],
)
def test_a_cursor_with_a_sort_key_of_the_wrong_type_is_invalid_cursor(
    okta: TestClient,
    settings: Settings,
    engine: Engine,
    tenant: Any,
    sort_by: str,
    tag: str,
    key: Any,
) -> None:
    # Before: a string key for `active` or `meta.created` reached the SQL and failed there (500).
    user = _user(okta)
    name = sort_by.lower()
    token = _signed_cursor(
        settings,
        engine,
        tenant.tenant_id,
        name,
        [cursors.VERSION, "User", name, 0, tag, key, user["id"], 1],
    )

    response = okta.get("/scim/v2/Users", params={"cursor": token, "sortBy": sort_by})

    assert response.status_code == 400, response.text
    assert response.json()["scimType"] == "invalidCursor"


def test_a_cursor_signed_before_a_key_rotation_is_still_read(
    okta: TestClient, another_app: Callable[..., TestClient]
) -> None:
    old, new = "o" * 40, "n" * 40
    created = [_user(okta)["id"] for _ in range(3)]
    before = another_app(cursor_keys=SecretStr(old))
    token = before.get("/scim/v2/Users", params={"cursor": "", "count": 1}).json()["nextCursor"]

    rotated = another_app(cursor_keys=SecretStr(f"{new}, {old}"))
    after = another_app(cursor_keys=SecretStr(new))
    page = rotated.get("/scim/v2/Users", params={"cursor": token, "count": 1}).json()
    dropped = after.get("/scim/v2/Users", params={"cursor": token, "count": 1})

    assert [r["id"] for r in page["Resources"]] == created[1:2]
    # The rotated instance signs with the new key, which the next one still reads.
    follow = after.get("/scim/v2/Users", params={"cursor": page["nextCursor"], "count": 1})
    assert [r["id"] for r in follow.json()["Resources"]] == created[2:]
    assert dropped.status_code == 400 and dropped.json()["scimType"] == "invalidCursor"


def test_instances_on_one_database_read_each_others_cursors_with_no_key_configured(
    okta: TestClient, another_app: Callable[..., TestClient]
) -> None:
    # Behind a load balancer the next page may go to another instance: with MUSTER_CURSOR_KEYS
    # unset, each reads the same key from the database they share.
    created = [_user(okta)["id"] for _ in range(3)]
    first = okta.get("/scim/v2/Users", params={"cursor": "", "count": 2}).json()

    second = another_app().get("/scim/v2/Users", params={"cursor": first["nextCursor"]})

    assert second.status_code == 200, second.text
    assert [r["id"] for r in second.json()["Resources"]] == created[2:]


def test_a_cursor_key_shorter_than_32_characters_stops_the_server_at_start_up(
    settings: Settings, engine: Engine
) -> None:
    with pytest.raises(ValueError, match="MUSTER_CURSOR_KEYS: key 2 is shorter than 32"):
        create_app(
            settings.model_copy(update={"cursor_keys": SecretStr("k" * 32 + ",short")}),
            engine=engine,
        )


def test_the_cursor_key_is_made_once_and_kept_in_the_database(
    okta: TestClient, settings: Settings, engine: Engine
) -> None:
    okta.get("/scim/v2/Users", params={"cursor": ""})  # the first cursor makes the key

    stored = _server_keys(settings, engine).keys
    again = CursorKeyring(None, lambda _: UnitOfWork(engine)).keys().keys

    assert len(stored) == 1 and len(stored[0]) == 64 and again == stored


def test_configured_cursor_keys_are_read_in_order() -> None:
    keyring = CursorKeyring(" , ".join(["a" * 32, "b" * 32]), lambda _: UnitOfWork(None))  # type: ignore[arg-type]
    assert keyring.keys().keys == (b"a" * 32, b"b" * 32)


def _room_for_two(okta: TestClient, path: str) -> int:
    """A byte budget that fits two of these (equally long) resources, not three."""
    size = len(orjson.dumps(okta.get(path, params={"count": 1}).json()["Resources"][0]))
    return 2 * (size + 1) + size // 2


def _created(okta: TestClient, path: str, n: int) -> list[str]:
    if path.endswith("Users"):
        return [_user(okta)["id"] for _ in range(n)]
    groups = [{"schemas": [GROUP], "displayName": f"Team {suffix()}"} for _ in range(n)]
    return [okta.post(path, json=group).json()["id"] for group in groups]


@pytest.mark.parametrize("path", ["/scim/v2/Users", "/scim/v2/Groups"])
def test_a_cursor_page_cut_by_the_byte_budget_goes_on_after_its_last_resource(
    okta: TestClient, another_app: Callable[..., TestClient], path: str
) -> None:
    # Issue 14: 120 users of 950 KB each made one page of `count=1000` 114 MB.
    created = _created(okta, path, 7)
    small = another_app(max_response_bytes=_room_for_two(okta, path))

    pages = _walk(small, path, count=5)
    backward = small.get(path, params={"cursor": pages[1]["previousCursor"], "count": 5}).json()

    assert [p["itemsPerPage"] for p in pages] == [2, 2, 2, 1]
    assert _ids(pages) == created
    assert all(p["totalResults"] == 7 for p in pages)
    assert [r["id"] for r in backward["Resources"]] == created[:2]


def test_one_resource_larger_than_the_budget_still_makes_a_page(
    okta: TestClient, another_app: Callable[..., TestClient]
) -> None:
    created = _created(okta, "/scim/v2/Users", 2)

    pages = _walk(another_app(max_response_bytes=100), count=10)

    assert [p["itemsPerPage"] for p in pages] == [1, 1]
    assert _ids(pages) == created
