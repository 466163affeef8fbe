"""create_tenant, list_tenants, get_tenant, set_tenant: customer accounts, plans and seat limits."""

from __future__ import annotations

import re

from muster.db.ids import new_id
from muster.db.unit_of_work import UnitOfWork
from muster.errors import ScimError
from muster.scim.records import TenantInfo
from muster.services.clock import utcnow

PLANS = ("free", "business", "enterprise")
ENTERPRISE = "enterprise"
DEFAULT_SEATS = 25
# Slugs end up in URLs; Okta refuses base URLs containing "_", so only letters, digits, "-".
_SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def _check_plan(plan: str) -> None:
    if plan not in PLANS:
        raise ScimError.invalid_value(f"plan must be one of {', '.join(PLANS)}, got {plan!r}")


def _check_seats(seats: int) -> None:
    if seats < 0:
        raise ScimError.invalid_value(f"seats must be zero or more, got {seats}")


def create_tenant(
    uow: UnitOfWork,
    slug: str,
    *,
    name: str | None = None,
    plan: str = "free",
    seats: int = DEFAULT_SEATS,
) -> TenantInfo:
    """Create a customer account; SCIM stays off until a token is issued."""
    if not _SLUG_RE.match(slug):
        raise ScimError.invalid_value(
            f"slug {slug!r} must be 1-63 lower-case letters, digits or '-', "
            "starting and ending with a letter or digit"
        )
    _check_plan(plan)
    _check_seats(seats)
    with uow:
        tenant_id = new_id()
        uow.tenants.add(
            {
                "id": tenant_id,
                "slug": slug,
                "name": name or slug,
                "plan": plan,
                "seat_limit": seats,
                "seats_used": 0,
                "scim_enabled": False,
                "created_at": utcnow(),
            }
        )
        tenant = uow.tenants.get(tenant_id)
        uow.commit()
    assert tenant is not None
    return tenant


def list_tenants(uow: UnitOfWork) -> list[TenantInfo]:
    """List every tenant, by slug."""
    with uow.reading():
        return uow.tenants.list()


def tenant_by_slug(uow: UnitOfWork, slug: str) -> TenantInfo:
    """Inside a transaction: the tenant with this slug, or 404."""
    tenant = uow.tenants.get_by_slug(slug)
    if tenant is None:
        raise ScimError(404, f"no tenant with slug {slug!r}")
    return tenant


def get_tenant(uow: UnitOfWork, slug: str) -> TenantInfo:
    """Find a tenant by slug."""
    with uow.reading():
        return tenant_by_slug(uow, slug)


def set_tenant(
    uow: UnitOfWork, slug: str, *, plan: str | None = None, seats: int | None = None
) -> TenantInfo:
    """Change a tenant's plan or seat limit. Lowering seats below use admits nobody new."""
    changes: dict[str, object] = {}
    if plan is not None:
        _check_plan(plan)
        changes["plan"] = plan
    if seats is not None:
        _check_seats(seats)
        changes["seat_limit"] = seats
    with uow:
        tenant = tenant_by_slug(uow, slug)
        if changes:
            uow.tenants.change(tenant.tenant_id, **changes)
        updated = uow.tenants.get(tenant.tenant_id)
        uow.commit()
    assert updated is not None
    return updated


def is_empty(uow: UnitOfWork) -> bool:
    """Tell whether no tenant exists yet (a first start)."""
    with uow.reading():
        return uow.tenants.count() == 0
