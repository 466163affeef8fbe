"""build_user(**overrides) makes an Okta-shaped User body; given_user and given_tenant store."""

from __future__ import annotations

import uuid
from typing import Any

from muster.db.unit_of_work import UnitOfWork
from muster.scim.records import StoredUser, TenantInfo
from muster.services import tenants, users

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
OKTA_HEADERS = {
    "User-Agent": "Okta SCIM Client 1.0.0",
    "Accept": "application/scim+json",
    "Accept-Charset": "utf-8",
    "Content-Type": "application/scim+json; charset=utf-8",
}


def suffix() -> str:
    return uuid.uuid4().hex[:8]


def build_user(**overrides: Any) -> dict[str, Any]:
    """A User body as Okta's create sends it; keyword overrides replace top-level keys."""
    tag = suffix()
    email = overrides.pop("email", f"user.{tag}@example.com")
    body: dict[str, Any] = {
        "schemas": [USER_URN],
        "userName": email,
        "name": {"givenName": "Ann", "familyName": f"Lee{tag[:4]}"},
        "emails": [{"primary": True, "value": email, "type": "work"}],
        "displayName": "Ann Lee",
        "locale": "en-US",
        "externalId": f"00u{tag}",
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    }
    body.update(overrides)
    return body


def patch_op(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_URN], "Operations": list(operations)}


def given_user(uow: UnitOfWork, **overrides: Any) -> StoredUser:
    """Store a user through the service and return it."""
    return users.create_user(uow, build_user(**overrides)).user


def given_tenant(
    platform_uow: UnitOfWork, *, plan: str = "enterprise", seats: int = 25, slug: str | None = None
) -> TenantInfo:
    """Store a tenant (Enterprise, 25 seats, SCIM off) and return it."""
    return tenants.create_tenant(platform_uow, slug or f"t-{suffix()}", plan=plan, seats=seats)
