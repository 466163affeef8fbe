"""Okta Group Push replayed over HTTP, plus group reads: members, projections, users' groups."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from tests.factories import build_user, patch_op
from tests.group_factories import (
    GROUP_URN,
    LIST_RESPONSE_URN,
    member_ids,
    members,
    membership_rows,
    post_group,
    post_user,
    stored_group_row,
)

pytestmark = pytest.mark.integration

BASE = "http://muster.test/scim/v2"


def _exists_check(okta: TestClient, display_name: str) -> dict[str, Any]:
    # Okta's exact query: eq filter, startIndex=1, count=100, spaces as %20.
    text = quote(f'displayName eq "{display_name}"')
    response = okta.get(f"/scim/v2/Groups?filter={text}&startIndex=1&count=100")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["schemas"] == [LIST_RESPONSE_URN]
    return body


def _patch(okta: TestClient, group_id: str, *operations: dict[str, Any], query: str = "") -> Any:
    return okta.patch(f"/scim/v2/Groups/{group_id}{query}", json=patch_op(*operations))


def _okta_member(user: dict[str, Any]) -> dict[str, str]:
    return {"value": user["id"], "display": user["userName"]}


def _rename(group_id: str, display_name: str) -> dict[str, Any]:
    return {"op": "replace", "value": {"id": group_id, "displayName": display_name}}


def _listed_member_ids(body: dict[str, Any]) -> set[str]:
    return {m["value"] for m in body.get("members") or []}


def test_okta_group_push_runbook(okta: TestClient, engine: Engine) -> None:
    ann, bob, cat = (post_user(okta) for _ in range(3))

    # Exists check, then push the group with no members.
    assert _exists_check(okta, "Test SCIMv2") == {
        "schemas": [LIST_RESPONSE_URN],
        "totalResults": 0,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    }
    created = okta.post(
        "/scim/v2/Groups",
        json={"schemas": [GROUP_URN], "displayName": "Test SCIMv2", "members": []},
    )
    assert created.status_code == 201, created.text
    group = created.json()
    group_id = group["id"]
    assert group["displayName"] == "Test SCIMv2"
    assert group["schemas"] == [GROUP_URN]
    assert group.get("members") in (None, [])
    assert created.headers["Location"] == f"{BASE}/Groups/{group_id}"
    found = _exists_check(okta, "Test SCIMv2")
    assert (found["totalResults"], found["Resources"][0]["id"]) == (1, group_id)
    assert okta.get(f"/scim/v2/Groups/{group_id}").status_code == 200

    # Assign a user to the pushed group.
    added = _patch(
        okta,
        group_id,
        _rename(group_id, "Test SCIMv2"),
        {"op": "add", "path": "members", "value": [_okta_member(ann)]},
    )
    assert added.status_code == 204, added.text
    assert added.content == b""
    assert membership_rows(engine, group_id) == {ann["id"]: "idp"}

    # Okta's membership update: rename (always sent), remove and add in one PATCH.
    moved = _patch(
        okta,
        group_id,
        _rename(group_id, "Test SCIMv2"),
        {"op": "remove", "path": f'members[value eq "{ann["id"]}"]'},
        {"op": "add", "path": "members", "value": [_okta_member(bob), _okta_member(cat)]},
    )
    assert moved.status_code == 204, moved.text
    assert member_ids(engine, group_id) == {bob["id"], cat["id"]}

    # Rename in Okta.
    renamed = _patch(okta, group_id, _rename(group_id, "Test SCIMv2 Renamed"))
    assert renamed.status_code == 204, renamed.text
    read = okta.get(f"/scim/v2/Groups/{group_id}").json()
    assert read["displayName"] == "Test SCIMv2 Renamed"
    assert _listed_member_ids(read) == {bob["id"], cat["id"]}
    assert _exists_check(okta, "test scimv2 renamed")["totalResults"] == 1
    assert _exists_check(okta, "Test SCIMv2")["totalResults"] == 0

    # "Push Now": the whole list.
    pushed = _patch(
        okta,
        group_id,
        {"op": "replace", "path": "members", "value": [_okta_member(ann), _okta_member(cat)]},
    )
    assert pushed.status_code == 204, pushed.text
    assert member_ids(engine, group_id) == {ann["id"], cat["id"]}

    # Custom (AIW) apps PUT the group with the full member list.
    put = okta.put(
        f"/scim/v2/Groups/{group_id}",
        json={
            "schemas": [GROUP_URN],
            "id": group_id,
            "displayName": "Test SCIMv2 Final",
            "members": [_okta_member(bob)],
        },
    )
    assert put.status_code == 200, put.text
    assert put.json()["displayName"] == "Test SCIMv2 Final"
    assert _listed_member_ids(put.json()) == {bob["id"]}
    assert member_ids(engine, group_id) == {bob["id"]}
    assert "members" not in stored_group_row(engine, group_id).document

    # Unlink with "delete the group in the target app".
    deleted = okta.delete(f"/scim/v2/Groups/{group_id}")
    assert deleted.status_code == 204
    assert okta.get(f"/scim/v2/Groups/{group_id}").status_code == 404
    assert member_ids(engine, group_id) == set()
    assert okta.get(f"/scim/v2/Users/{bob['id']}").status_code == 200


def test_okta_import_groups_pages_with_start_index_and_count(okta: TestClient) -> None:
    created = [post_group(okta, displayName=f"Import {n}")["id"] for n in range(5)]

    pages = [okta.get(f"/scim/v2/Groups?startIndex={start}&count=2").json() for start in (1, 3, 5)]

    assert [p["totalResults"] for p in pages] == [5, 5, 5]
    assert [p["startIndex"] for p in pages] == [1, 3, 5]
    assert [p["itemsPerPage"] for p in pages] == [2, 2, 1]
    assert [g["id"] for p in pages for g in p["Resources"]] == created


def test_list_groups_filters_external_id_id_and_members_value(okta: TestClient) -> None:
    ann, bob = post_user(okta), post_user(okta)
    ops = post_group(okta, externalId="ext-ops", members=members(ann["id"]))
    dev = post_group(okta, members=members(ann["id"], bob["id"]))
    post_group(okta, members=members(bob["id"]))

    def ids(text: str) -> set[str]:
        response = okta.get("/scim/v2/Groups", params={"filter": text})
        assert response.status_code == 200, response.text
        return {g["id"] for g in response.json()["Resources"]}

    assert ids('externalId eq "ext-ops"') == {ops["id"]}
    assert ids(f'id eq "{dev["id"]}"') == {dev["id"]}
    assert ids(f'members.value eq "{ann["id"]}"') == {ops["id"], dev["id"]}
    assert ids(f'members[value eq "{ann["id"]}"]') == {ops["id"], dev["id"]}


def test_create_group_answers_201_with_meta_and_members(okta: TestClient, engine: Engine) -> None:
    ann = post_user(okta)

    response = okta.post(
        "/scim/v2/Groups",
        json={
            "schemas": [GROUP_URN],
            "displayName": "Ops",
            "externalId": "okta-00g1",
            "members": [_okta_member(ann)],
        },
    )

    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/scim+json")
    body = response.json()
    meta = body["meta"]
    assert meta["resourceType"] == "Group"
    assert meta["location"] == f"{BASE}/Groups/{body['id']}"
    assert meta["created"].endswith("Z") and meta["lastModified"].endswith("Z")
    assert meta["version"] == response.headers["ETag"]
    assert body["externalId"] == "okta-00g1"
    assert _listed_member_ids(body) == {ann["id"]}
    assert membership_rows(engine, body["id"]) == {ann["id"]: "idp"}


def test_get_group_lists_members_with_value_display_type_and_ref(okta: TestClient) -> None:
    ann, bob = post_user(okta), post_user(okta)
    group = post_group(okta, members=members(ann["id"], bob["id"]))

    body = okta.get(f"/scim/v2/Groups/{group['id']}").json()

    assert sorted(body["members"], key=lambda m: m["value"]) == sorted(
        [
            {
                "value": user["id"],
                "display": user["userName"],
                "type": "User",
                "$ref": f"{BASE}/Users/{user['id']}",
            }
            for user in (ann, bob)
        ],
        key=lambda m: m["value"],
    )


@pytest.mark.parametrize(
    "query",
    ["?excludedAttributes=members", "?attributes=displayName", "?attributes=id,displayName"],
)
def test_get_group_without_members_when_asked(okta: TestClient, query: str) -> None:
    ann = post_user(okta)
    group = post_group(okta, displayName="Ops", members=members(ann["id"]))

    single = okta.get(f"/scim/v2/Groups/{group['id']}{query}")
    listed = okta.get(f"/scim/v2/Groups{query}&filter=displayName%20eq%20%22Ops%22")

    assert single.status_code == 200, single.text
    assert "members" not in single.json()
    assert single.json()["id"] == group["id"]
    assert single.json()["displayName"] == "Ops"
    assert listed.status_code == 200, listed.text
    (resource,) = listed.json()["Resources"]
    assert "members" not in resource
    assert resource["displayName"] == "Ops"


def test_attributes_display_name_leaves_out_other_attributes(okta: TestClient) -> None:
    group = post_group(okta, displayName="Ops", externalId="e1")

    body = okta.get(f"/scim/v2/Groups/{group['id']}?attributes=displayName").json()

    assert body == {"schemas": [GROUP_URN], "id": group["id"], "displayName": "Ops"}


def test_list_groups_includes_members_by_default(okta: TestClient) -> None:
    ann = post_user(okta)
    group = post_group(okta, members=members(ann["id"]))

    (resource,) = okta.get("/scim/v2/Groups").json()["Resources"]

    assert resource["id"] == group["id"]
    assert resource["members"] == [
        {
            "value": ann["id"],
            "display": ann["userName"],
            "type": "User",
            "$ref": f"{BASE}/Users/{ann['id']}",
        }
    ]


def test_get_group_with_a_members_sub_attribute_returns_only_that_field(
    okta: TestClient,
) -> None:
    # RFC 7644 §3.4.2.5: attributes=members.value asks for that sub-attribute only; the list
    # endpoint honours it, so the single read must too.
    ann = post_user(okta)
    group = post_group(okta, members=members(ann["id"]))

    single = okta.get(f"/scim/v2/Groups/{group['id']}?attributes=members.value").json()
    listed = okta.get("/scim/v2/Groups?attributes=members.value").json()["Resources"][0]

    assert listed["members"] == [{"value": ann["id"]}]
    assert single["members"] == [{"value": ann["id"]}]


def test_patch_answers_204_without_a_body(okta: TestClient) -> None:
    ann = post_user(okta)
    group = post_group(okta)

    response = _patch(
        okta, group["id"], {"op": "add", "path": "members", "value": members(ann["id"])}
    )

    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["ETag"] == 'W/"2"'


def test_patch_naming_excluded_members_answers_200_without_members(
    okta: TestClient, engine: Engine
) -> None:
    ann = post_user(okta)
    group = post_group(okta, displayName="Ops")

    response = _patch(
        okta,
        group["id"],
        {"op": "add", "path": "members", "value": members(ann["id"])},
        query="?excludedAttributes=members",
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert "members" not in body
    assert (body["id"], body["displayName"]) == (group["id"], "Ops")
    assert body["meta"]["version"] == 'W/"2"'
    assert member_ids(engine, group["id"]) == {ann["id"]}


def test_patch_naming_attributes_answers_200_with_the_group(okta: TestClient) -> None:
    ann = post_user(okta)
    group = post_group(okta)

    response = _patch(
        okta,
        group["id"],
        {"op": "add", "path": "members", "value": members(ann["id"])},
        query="?attributes=displayName,members",
    )

    assert response.status_code == 200, response.text
    assert _listed_member_ids(response.json()) == {ann["id"]}
    assert response.json()["displayName"] == group["displayName"]


def test_get_user_lists_its_groups_from_the_rows(okta: TestClient) -> None:
    ann = post_user(okta)
    ops = post_group(okta, displayName="Ops", members=members(ann["id"]))
    dev = post_group(okta, displayName="Dev")
    _patch(okta, dev["id"], {"op": "add", "path": "members", "value": members(ann["id"])})
    _patch(okta, ops["id"], _rename(ops["id"], "Operations"))

    body = okta.get(f"/scim/v2/Users/{ann['id']}").json()

    assert {(g["value"], g["display"]) for g in body["groups"]} == {
        (ops["id"], "Operations"),
        (dev["id"], "Dev"),
    }


def test_deactivated_user_stays_a_member_and_deleted_user_leaves(
    okta: TestClient, engine: Engine
) -> None:
    ann, bob = post_user(okta), post_user(okta)
    group = post_group(okta, members=members(ann["id"], bob["id"]))

    deactivated = okta.patch(
        f"/scim/v2/Users/{ann['id']}", json=patch_op({"op": "replace", "value": {"active": False}})
    )
    assert deactivated.status_code in (200, 204), deactivated.text
    assert member_ids(engine, group["id"]) == {ann["id"], bob["id"]}

    assert okta.delete(f"/scim/v2/Users/{bob['id']}").status_code == 204
    assert member_ids(engine, group["id"]) == {ann["id"]}
    read = okta.get(f"/scim/v2/Groups/{group['id']}").json()
    assert _listed_member_ids(read) == {ann["id"]}


def test_list_users_carries_groups_unless_excluded(okta: TestClient) -> None:
    ann = post_user(okta)
    group = post_group(okta, displayName="Ops", members=members(ann["id"]))
    wanted = f'userName eq "{ann["userName"]}"'

    listed = okta.get("/scim/v2/Users", params={"filter": wanted}).json()["Resources"][0]
    single = okta.get(f"/scim/v2/Users/{ann['id']}?excludedAttributes=groups").json()

    assert [(g["value"], g["display"]) for g in listed["groups"]] == [(group["id"], "Ops")]
    assert "groups" not in single


def test_user_recreated_after_deactivation_keeps_its_groups(
    okta: TestClient, engine: Engine
) -> None:
    # Okta re-assigns a deactivated user with a new POST (better-auth#11111).
    body = build_user()
    ann = okta.post("/scim/v2/Users", json=body).json()
    group = post_group(okta, displayName="Ops", members=members(ann["id"]))
    okta.patch(
        f"/scim/v2/Users/{ann['id']}", json=patch_op({"op": "replace", "value": {"active": False}})
    )

    revived = okta.post("/scim/v2/Users", json=body)

    assert revived.status_code == 201, revived.text
    assert revived.json()["id"] == ann["id"]
    assert [g["value"] for g in revived.json()["groups"]] == [group["id"]]
    assert member_ids(engine, group["id"]) == {ann["id"]}
