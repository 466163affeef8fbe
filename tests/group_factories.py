"""build_group and given_group make groups; the rest read membership rows and check error bodies."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from muster.db.tables import GroupRow, MembershipRow
from muster.db.unit_of_work import UnitOfWork
from muster.scim.records import StoredGroup, StoredUser
from muster.services import groups, users
from tests.factories import build_user, suffix

GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTRA_GROUP_URN = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST_RESPONSE_URN = "urn:ietf:params:scim:api:messages:2.0:ListResponse"

_memberships = MembershipRow.__table__
_groups = GroupRow.__table__


def build_group(**overrides: Any) -> dict[str, Any]:
    """A Group body as Okta's push sends it (no members key unless given)."""
    body: dict[str, Any] = {"schemas": [GROUP_URN], "displayName": f"Team {suffix()}"}
    body.update(overrides)
    return body


def given_group(uow: UnitOfWork, **overrides: Any) -> StoredGroup:
    """Store a group through the service and return it."""
    return groups.create_group(uow, build_group(**overrides)).group


def given_users(uow: UnitOfWork, count: int) -> list[StoredUser]:
    """Store `count` IdP users."""
    return [users.create_user(uow, build_user()).user for _ in range(count)]


def given_local_user(uow: UnitOfWork) -> StoredUser:
    """Store a user created by hand (source `local`)."""
    return users.create_local_user(uow, f"local.{suffix()}@example.com", given_name="Lou")


def members(*user_ids: str) -> list[dict[str, str]]:
    """A members value as Okta sends it: value and display."""
    return [{"value": user_id, "display": f"user {user_id[-4:]}"} for user_id in user_ids]


def membership_rows(engine: Engine, group_id: str) -> dict[str, str]:
    """{user id: source} of the group's rows in the memberships table."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(_memberships.c.user_id, _memberships.c.source).where(
                _memberships.c.group_id == group_id
            )
        ).all()
    return {row.user_id: row.source for row in rows}


def member_ids(engine: Engine, group_id: str) -> set[str]:
    """The user ids of the group's membership rows."""
    return set(membership_rows(engine, group_id))


def rows_of_user(engine: Engine, user_id: str) -> set[str]:
    """The group ids of the user's membership rows."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(_memberships.c.group_id).where(_memberships.c.user_id == user_id)
        ).all()
    return {row.group_id for row in rows}


def stored_group_row(engine: Engine, group_id: str) -> Any:
    """The group's row (display_name, display_name_key, external_id, document, version)."""
    with engine.connect() as conn:
        return conn.execute(select(_groups).where(_groups.c.id == group_id)).first()


def scim_error(response: Any, status: int, scim_type: str | None) -> dict[str, Any]:
    """Assert an RFC 7644 §3.12 error body and return it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/scim+json")
    body: dict[str, Any] = response.json()
    assert body["schemas"] == [ERROR_URN]
    assert body["status"] == str(status)
    assert isinstance(body["detail"], str) and body["detail"]
    if scim_type is None:
        assert "scimType" not in body
    else:
        assert body["scimType"] == scim_type
    return body


def post_user(client: Any, **overrides: Any) -> dict[str, Any]:
    """Create a user over HTTP as Okta does and return the served body."""
    response = client.post("/scim/v2/Users", json=build_user(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def post_group(client: Any, **overrides: Any) -> dict[str, Any]:
    """Create a group over HTTP and return the served body."""
    response = client.post("/scim/v2/Groups", json=build_group(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
