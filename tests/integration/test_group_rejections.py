"""Every refused group request answers an RFC 7644 §3.12 error body and changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from muster.db.unit_of_work import UnitOfWork
from tests.factories import given_tenant, given_user, patch_op
from tests.group_factories import (
    GROUP_URN,
    given_group,
    member_ids,
    members,
    post_group,
    post_user,
    scim_error,
    stored_group_row,
)

pytestmark = pytest.mark.integration

UowFactory = Callable[..., UnitOfWork]


def _patch(client: TestClient, group_id: str, *operations: dict[str, Any]) -> Any:
    return client.patch(f"/scim/v2/Groups/{group_id}", json=patch_op(*operations))


def _put(client: TestClient, group_id: str, display_name: str, member_list: list[Any]) -> Any:
    return client.put(
        f"/scim/v2/Groups/{group_id}",
        json={"schemas": [GROUP_URN], "displayName": display_name, "members": member_list},
    )


def _add(*user_ids: str) -> dict[str, Any]:
    return {"op": "add", "path": "members", "value": members(*user_ids)}


def _unchanged(engine: Engine, group: dict[str, Any], expected_members: set[str]) -> None:
    row = stored_group_row(engine, group["id"])
    assert row.display_name == group["displayName"]
    assert row.version == int(group["meta"]["version"].removeprefix('W/"').rstrip('"'))
    assert member_ids(engine, group["id"]) == expected_members


@pytest.fixture
def strangers_user_id(uow_factory: UowFactory) -> str:
    """A user of another tenant."""
    other = given_tenant(uow_factory())
    return given_user(uow_factory(other.tenant_id)).user_id


# uniqueness


def test_create_with_a_taken_name_in_another_case_is_409(okta: TestClient) -> None:
    post_group(okta, displayName="Engineering")

    response = okta.post(
        "/scim/v2/Groups", json={"schemas": [GROUP_URN], "displayName": "engineering"}
    )

    body = scim_error(response, 409, "uniqueness")
    assert "displayName" in body["detail"]
    assert okta.get("/scim/v2/Groups").json()["totalResults"] == 1


def test_rename_by_patch_to_a_taken_name_is_409(okta: TestClient, engine: Engine) -> None:
    ann, bob = post_user(okta), post_user(okta)
    post_group(okta, displayName="Engineering")
    group = post_group(okta, displayName="Sales", members=members(ann["id"]))

    okta_shape = _patch(
        okta,
        group["id"],
        {"op": "remove", "path": f'members[value eq "{ann["id"]}"]'},
        _add(bob["id"]),
        {"op": "replace", "value": {"id": group["id"], "displayName": "ENGINEERING"}},
    )
    entra_shape = _patch(
        okta, group["id"], {"op": "Replace", "path": "displayName", "value": "Engineering"}
    )

    scim_error(okta_shape, 409, "uniqueness")
    scim_error(entra_shape, 409, "uniqueness")
    _unchanged(engine, group, {ann["id"]})


def test_rename_by_put_to_a_taken_name_is_409(okta: TestClient, engine: Engine) -> None:
    ann, bob = post_user(okta), post_user(okta)
    post_group(okta, displayName="Engineering")
    group = post_group(okta, displayName="Sales", members=members(ann["id"]))

    response = _put(okta, group["id"], "engineering", members(bob["id"]))

    scim_error(response, 409, "uniqueness")
    _unchanged(engine, group, {ann["id"]})


# refused members


def test_nested_group_in_patch_is_refused_and_nothing_applied(
    okta: TestClient, engine: Engine
) -> None:
    ann, bob = post_user(okta), post_user(okta)
    inner = post_group(okta, displayName="Inner")
    group = post_group(okta, displayName="Outer", members=members(ann["id"]))

    response = _patch(
        okta,
        group["id"],
        {"op": "replace", "path": "displayName", "value": "Outer Renamed"},
        {"op": "remove", "path": f'members[value eq "{ann["id"]}"]'},
        _add(bob["id"], inner["id"]),
    )

    body = scim_error(response, 400, "invalidValue")
    assert "nested" in body["detail"].lower()
    assert inner["id"] in body["detail"]
    _unchanged(engine, group, {ann["id"]})


def test_nested_group_in_create_stores_no_group(okta: TestClient) -> None:
    inner = post_group(okta, displayName="Inner")

    response = okta.post(
        "/scim/v2/Groups",
        json={"schemas": [GROUP_URN], "displayName": "Outer", "members": members(inner["id"])},
    )

    body = scim_error(response, 400, "invalidValue")
    assert "nested" in body["detail"].lower()
    assert okta.get('/scim/v2/Groups?filter=displayName eq "Outer"').json()["totalResults"] == 0


def test_nested_group_in_put_is_refused(okta: TestClient, engine: Engine) -> None:
    ann = post_user(okta)
    inner = post_group(okta, displayName="Inner")
    group = post_group(okta, displayName="Outer", members=members(ann["id"]))

    response = _put(okta, group["id"], "Outer", members(ann["id"], inner["id"]))

    assert "nested" in scim_error(response, 400, "invalidValue")["detail"].lower()
    _unchanged(engine, group, {ann["id"]})


def test_nested_group_in_full_push_is_refused(okta: TestClient, engine: Engine) -> None:
    ann = post_user(okta)
    inner = post_group(okta, displayName="Inner")
    group = post_group(okta, displayName="Outer", members=members(ann["id"]))

    response = _patch(
        okta, group["id"], {"op": "replace", "path": "members", "value": members(inner["id"])}
    )

    assert "nested" in scim_error(response, 400, "invalidValue")["detail"].lower()
    _unchanged(engine, group, {ann["id"]})


def test_unknown_member_id_is_refused_naming_it(okta: TestClient, engine: Engine) -> None:
    ann, bob = post_user(okta), post_user(okta)
    group = post_group(okta, members=members(ann["id"]))

    response = _patch(
        okta,
        group["id"],
        {"op": "replace", "value": {"id": group["id"], "displayName": "Renamed"}},
        _add(bob["id"], "010101001010101011001010101011"),
    )

    body = scim_error(response, 400, "invalidValue")
    assert "010101001010101011001010101011" in body["detail"]
    _unchanged(engine, group, {ann["id"]})


def test_entra_add_of_an_unknown_member_is_refused(okta: TestClient, engine: Engine) -> None:
    group = post_group(okta)

    response = _patch(
        okta,
        group["id"],
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": "u404"}]},
    )

    assert "u404" in scim_error(response, 400, "invalidValue")["detail"]
    _unchanged(engine, group, set())


def test_another_tenants_user_is_refused_naming_it(
    okta: TestClient, engine: Engine, strangers_user_id: str
) -> None:
    ann = post_user(okta)
    group = post_group(okta)

    patched = _patch(okta, group["id"], _add(ann["id"], strangers_user_id))
    replaced = _patch(
        okta, group["id"], {"op": "replace", "path": "members", "value": members(strangers_user_id)}
    )
    put = _put(okta, group["id"], group["displayName"], members(strangers_user_id))

    for response in (patched, replaced, put):
        assert strangers_user_id in scim_error(response, 400, "invalidValue")["detail"]
    _unchanged(engine, group, set())


def test_create_with_another_tenants_user_stores_no_group(
    okta: TestClient, strangers_user_id: str
) -> None:
    response = okta.post(
        "/scim/v2/Groups",
        json={
            "schemas": [GROUP_URN],
            "displayName": "Mixed",
            "members": members(strangers_user_id),
        },
    )

    assert strangers_user_id in scim_error(response, 400, "invalidValue")["detail"]
    assert okta.get("/scim/v2/Groups").json()["totalResults"] == 0


# other refusals


def test_unknown_group_is_404_without_scim_type(okta: TestClient) -> None:
    missing = "/scim/v2/Groups/00919288221112222"

    scim_error(okta.get(missing), 404, None)
    scim_error(_patch(okta, "00919288221112222", _add("x")), 404, None)
    scim_error(_put(okta, "00919288221112222", "X", []), 404, None)
    scim_error(okta.delete(missing), 404, None)


def test_another_tenants_group_is_404(
    okta: TestClient, uow_factory: UowFactory, engine: Engine
) -> None:
    other = given_tenant(uow_factory())
    theirs = given_group(uow_factory(other.tenant_id), displayName="Theirs")

    scim_error(okta.get(f"/scim/v2/Groups/{theirs.group_id}"), 404, None)
    scim_error(
        _patch(okta, theirs.group_id, {"op": "replace", "path": "displayName", "value": "Mine"}),
        404,
        None,
    )
    scim_error(okta.delete(f"/scim/v2/Groups/{theirs.group_id}"), 404, None)
    assert stored_group_row(engine, theirs.group_id).display_name == "Theirs"


@pytest.mark.parametrize(
    "body",
    [
        {"schemas": [GROUP_URN]},
        {"schemas": [GROUP_URN], "displayName": ""},
        {"displayName": "No schemas"},
        {"schemas": [GROUP_URN], "displayName": "Ops", "members": [{"display": "no value"}]},
    ],
)
def test_create_with_a_bad_body_is_invalid_value(okta: TestClient, body: dict[str, Any]) -> None:
    scim_error(okta.post("/scim/v2/Groups", json=body), 400, "invalidValue")
    assert okta.get("/scim/v2/Groups").json()["totalResults"] == 0


def test_create_with_malformed_json_is_invalid_syntax(okta: TestClient) -> None:
    response = okta.post("/scim/v2/Groups", content=b'{"displayName": ')

    scim_error(response, 400, "invalidSyntax")


@pytest.mark.parametrize(
    ("operation", "scim_type"),
    [
        ({"op": "remove", "path": 'members[display eq "ann"]'}, "invalidPath"),
        (
            {"op": "add", "path": 'members[value eq "u1"]', "value": [{"value": "u1"}]},
            "invalidPath",
        ),
        ({"op": "replace", "path": "nickName", "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": "id", "value": "x"}, "mutability"),
        ({"op": "remove", "path": "displayName"}, "invalidValue"),
        ({"op": "remove"}, "noTarget"),
        ({"op": "move", "path": "members", "value": []}, "invalidValue"),
    ],
)
def test_bad_patch_operation_is_refused_after_a_good_one(
    okta: TestClient, engine: Engine, operation: dict[str, Any], scim_type: str
) -> None:
    ann = post_user(okta)
    group = post_group(okta)

    response = _patch(okta, group["id"], _add(ann["id"]), operation)

    scim_error(response, 400, scim_type)
    _unchanged(engine, group, set())


def test_stale_if_match_is_412(okta: TestClient, engine: Engine) -> None:
    ann = post_user(okta)
    group = post_group(okta)
    _patch(okta, group["id"], {"op": "replace", "path": "displayName", "value": "Renamed"})

    response = okta.patch(
        f"/scim/v2/Groups/{group['id']}",
        json=patch_op(_add(ann["id"])),
        headers={"If-Match": 'W/"1"'},
    )

    scim_error(response, 412, None)
    assert member_ids(engine, group["id"]) == set()


def test_attributes_with_excluded_attributes_is_invalid_value(okta: TestClient) -> None:
    group = post_group(okta)

    response = okta.get(
        f"/scim/v2/Groups/{group['id']}?attributes=displayName&excludedAttributes=members"
    )

    scim_error(response, 400, "invalidValue")


@pytest.mark.parametrize(
    "text",
    ['title eq "x"', "displayName eq 5", 'members.display eq "a"', 'displayName eq "unclosed'],
)
def test_bad_group_filter_is_invalid_filter(okta: TestClient, text: str) -> None:
    response = okta.get("/scim/v2/Groups", params={"filter": text})

    scim_error(response, 400, "invalidFilter")


# garbage a client may send: a 400 or an accepted no-op, never a 500


@pytest.mark.parametrize(
    ("member_id", "named_as"),
    # The detail names the id (its first 40 characters), or the NUL character refused.
    [("z" * 300, "z" * 40), ("a\u0000b", "NUL")],
    ids=["longer-than-any-id", "nul-byte"],
)
def test_a_member_id_no_user_can_have_is_refused_as_unknown(
    okta: TestClient, engine: Engine, member_id: str, named_as: str
) -> None:
    ann = post_user(okta)
    group = post_group(okta)

    response = _patch(okta, group["id"], _add(ann["id"], member_id))

    assert named_as in scim_error(response, 400, "invalidValue")["detail"]
    _unchanged(engine, group, set())


@pytest.mark.parametrize(
    "remove",
    [
        {"op": "remove", "path": f'members[value eq "{"z" * 300}"]'},
        {"op": "Remove", "path": "members", "value": [{"value": "z" * 300}]},
    ],
    ids=["okta", "entra"],
)
def test_removing_a_member_id_no_user_can_have_is_a_no_op(
    okta: TestClient, engine: Engine, remove: dict[str, Any]
) -> None:
    ann = post_user(okta)
    group = post_group(okta, members=members(ann["id"]))

    response = _patch(okta, group["id"], remove)

    assert response.status_code == 204, response.text
    assert member_ids(engine, group["id"]) == {ann["id"]}


@pytest.mark.parametrize(
    "attributes",
    [
        {"displayName": "x" * 300},
        {"displayName": "Ops", "externalId": "e" * 300},
        {"displayName": "Nul\u0000Name"},
    ],
    ids=["long-display-name", "long-external-id", "nul-in-display-name"],
)
def test_an_unstorable_group_body_is_never_a_500(
    okta: TestClient, attributes: dict[str, str]
) -> None:
    response = okta.post("/scim/v2/Groups", json={"schemas": [GROUP_URN], **attributes})

    assert response.status_code in (201, 400), response.text
    if response.status_code == 400:
        scim_error(response, 400, "invalidValue")
        assert okta.get("/scim/v2/Groups").json()["totalResults"] == 0
    else:
        assert response.json()["displayName"] == attributes["displayName"]
