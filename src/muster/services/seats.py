"""claim_seat / release_seat: the only code that changes a tenant's count of seats in use."""

from __future__ import annotations

from muster.db.unit_of_work import UnitOfWork
from muster.errors import ScimError


def claim_seat(uow: UnitOfWork) -> None:
    """Take a seat for a user becoming active, inside the caller's transaction; 403 when full."""
    assert uow.tenant_id is not None
    if not uow.tenants.claim_seat(uow.tenant_id):
        used, limit = uow.tenants.seats(uow.tenant_id)
        raise ScimError.forbidden(
            f"licence limit reached: {used} of {limit} seats in use; deactivate a user or ask "
            "for more seats before activating another"
        )


def release_seat(uow: UnitOfWork) -> None:
    """Give back the seat of a user who was deactivated or deleted."""
    assert uow.tenant_id is not None
    uow.tenants.release_seat(uow.tenant_id)


def move_seat(uow: UnitOfWork, *, was_active: bool, is_active: bool) -> None:
    """Claim or release a seat as a user's `active` flag changes."""
    if is_active and not was_active:
        claim_seat(uow)
    elif was_active and not is_active:
        release_seat(uow)
