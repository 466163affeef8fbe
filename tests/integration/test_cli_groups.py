"""`muster user create` and `muster group add-member/remove-member` against IdP pushes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from muster.db.unit_of_work import UnitOfWork
from muster.scim.records import TenantInfo
from muster.services import users
from tests.cli_runner import Muster
from tests.factories import given_tenant, patch_op
from tests.group_factories import (
    GROUP_URN,
    given_group,
    member_ids,
    members,
    membership_rows,
    post_group,
    post_user,
    stored_group_row,
)

pytestmark = pytest.mark.integration

UowFactory = Callable[..., UnitOfWork]


@pytest.fixture
def muster(database_url: str, engine: Engine) -> Muster:
    """The CLI on the test database; `engine` has made (or emptied) the schema."""
    return Muster(database_url)


def _patch(okta: TestClient, group_id: str, *operations: dict[str, Any]) -> Any:
    response = okta.patch(f"/scim/v2/Groups/{group_id}", json=patch_op(*operations))
    assert response.status_code == 204, response.text
    return response


def _create_local_user(muster: Muster, tenant: TenantInfo, email: str) -> str:
    result = muster.ok(
        "user", "create", tenant.slug, email, "--given-name", "Lou", "--family-name", "Cal"
    )
    user_id, printed_email, source = result.stdout.strip().split("\t")
    assert (printed_email, source) == (email, "local")
    return user_id


def test_user_create_stores_a_local_user(
    muster: Muster, tenant: TenantInfo, uow: UnitOfWork
) -> None:
    user_id = _create_local_user(muster, tenant, "lou@example.com")

    stored = users.get_user(uow, user_id)
    assert stored.source == "local"
    assert stored.active is True
    assert stored.document["userName"] == "lou@example.com"
    assert stored.document["name"] == {"givenName": "Lou", "familyName": "Cal"}


def test_user_create_refuses_a_taken_email(muster: Muster, tenant: TenantInfo) -> None:
    _create_local_user(muster, tenant, "lou@example.com")

    assert "already in use" in muster.fails("user", "create", tenant.slug, "LOU@example.com")


def test_user_create_in_an_unknown_tenant_fails(muster: Muster) -> None:
    assert "no-such-tenant" in muster.fails("user", "create", "no-such-tenant", "a@example.com")


def test_local_user_survives_every_idp_push_only_as_a_manual_member(
    muster: Muster, okta: TestClient, tenant: TenantInfo, engine: Engine
) -> None:
    local_id = _create_local_user(muster, tenant, "lou@example.com")
    ann = post_user(okta)
    group = post_group(okta, displayName="Admins")

    # The IdP can neither add a local user...
    _patch(
        okta, group["id"], {"op": "add", "path": "members", "value": members(local_id, ann["id"])}
    )
    _patch(okta, group["id"], {"op": "replace", "path": "members", "value": members(local_id)})
    put = okta.put(
        f"/scim/v2/Groups/{group['id']}",
        json={
            "schemas": [GROUP_URN],
            "displayName": "Admins",
            "members": members(local_id, ann["id"]),
        },
    )
    assert put.status_code == 200, put.text
    assert membership_rows(engine, group["id"]) == {ann["id"]: "idp"}

    # ...nor remove one an admin added by hand.
    added = muster.ok("group", "add-member", tenant.slug, "admins", "LOU@example.com")
    assert "lou@example.com" in added.stdout.lower()
    assert membership_rows(engine, group["id"]) == {ann["id"]: "idp", local_id: "manual"}
    _patch(okta, group["id"], {"op": "replace", "path": "members", "value": members(ann["id"])})
    _patch(okta, group["id"], {"op": "remove", "path": f'members[value eq "{local_id}"]'})
    _patch(okta, group["id"], {"op": "Remove", "path": "members", "value": [{"value": local_id}]})
    okta.put(
        f"/scim/v2/Groups/{group['id']}",
        json={"schemas": [GROUP_URN], "displayName": "Admins", "members": []},
    )
    assert membership_rows(engine, group["id"]) == {local_id: "manual"}
    served = okta.get(f"/scim/v2/Groups/{group['id']}").json()
    assert [m["value"] for m in served["members"]] == [local_id]
    assert [g["value"] for g in okta.get(f"/scim/v2/Users/{local_id}").json()["groups"]] == [
        group["id"]
    ]

    muster.ok("group", "remove-member", tenant.slug, "Admins", "lou@example.com")
    assert member_ids(engine, group["id"]) == set()
    assert "members" not in stored_group_row(engine, group["id"]).document


def test_add_member_makes_an_idp_membership_manual(
    muster: Muster, okta: TestClient, tenant: TenantInfo, engine: Engine
) -> None:
    ann = post_user(okta)
    group = post_group(okta, displayName="Ops", members=members(ann["id"]))

    muster.ok("group", "add-member", tenant.slug, "Ops", ann["userName"])
    _patch(okta, group["id"], {"op": "remove", "path": f'members[value eq "{ann["id"]}"]'})

    assert membership_rows(engine, group["id"]) == {ann["id"]: "manual"}


def test_remove_member_removes_an_idp_membership_too(
    muster: Muster, okta: TestClient, tenant: TenantInfo, engine: Engine
) -> None:
    ann, bob = post_user(okta), post_user(okta)
    group = post_group(okta, displayName="Ops", members=members(ann["id"], bob["id"]))

    muster.ok("group", "remove-member", tenant.slug, "Ops", ann["userName"])

    assert member_ids(engine, group["id"]) == {bob["id"]}


def test_add_member_refuses_unknown_group_and_unknown_email(
    muster: Muster, okta: TestClient, tenant: TenantInfo, engine: Engine
) -> None:
    _create_local_user(muster, tenant, "lou@example.com")
    group = post_group(okta, displayName="Ops")

    assert "Nope" in muster.fails("group", "add-member", tenant.slug, "Nope", "lou@example.com")
    assert "ghost@example.com" in muster.fails(
        "group", "add-member", tenant.slug, "Ops", "ghost@example.com"
    )
    assert member_ids(engine, group["id"]) == set()


def test_remove_member_of_a_non_member_fails(
    muster: Muster, okta: TestClient, tenant: TenantInfo
) -> None:
    _create_local_user(muster, tenant, "lou@example.com")
    post_group(okta, displayName="Ops")

    assert "not a member" in muster.fails(
        "group", "remove-member", tenant.slug, "Ops", "lou@example.com"
    )


def test_add_member_never_reaches_another_tenants_group_or_user(
    muster: Muster, tenant: TenantInfo, uow_factory: UowFactory, engine: Engine
) -> None:
    other = given_tenant(uow_factory())
    _create_local_user(muster, other, "theirs@example.com")
    _create_local_user(muster, tenant, "ours@example.com")
    theirs = given_group(uow_factory(other.tenant_id), displayName="Theirs")

    muster.fails("group", "add-member", tenant.slug, "Theirs", "ours@example.com")
    muster.fails("group", "add-member", other.slug, "Theirs", "ours@example.com")

    assert member_ids(engine, theirs.group_id) == set()
