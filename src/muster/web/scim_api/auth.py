"""Bearer token -> Principal (the tenant, fixed once per request); 401 otherwise."""

from __future__ import annotations

import logging
from collections.abc import Callable

from muster.errors import ScimError
from muster.services.api_tokens import (
    Principal,
    authenticate_token,
    record_token_use,
    tenant_of_token,
)
from muster.services.database import UnitOfWork

logger = logging.getLogger("muster.tokens")


def bearer_token(authorization: str | None) -> str | None:
    """Read `Authorization: Bearer <token>`; anything else is no token at all."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


def authenticate(authorization: str | None, uow: UnitOfWork) -> Principal:
    """Resolve the request's bearer token; raises ScimError 401/403."""
    token = bearer_token(authorization)
    if token is None:
        raise ScimError.unauthorized("send the SCIM token as `Authorization: Bearer <token>`")
    return authenticate_token(uow, token)


def claimed_tenant(authorization: str | None) -> str | None:
    """The tenant a (possibly invalid) token names, so its owner's log shows the refusal."""
    token = bearer_token(authorization)
    return tenant_of_token(token) if token else None


def note_use(uow_factory: Callable[[str | None], UnitOfWork], principal: Principal) -> None:
    """Write a token's or key's last-used time when due, after the request it served.

    Bookkeeping: a failure is logged, never passed on to the request.
    """
    if not principal.is_use_stale:
        return
    try:
        record_token_use(uow_factory(principal.tenant_id), principal)
    except Exception:
        logger.exception("could not record the use of token %s", principal.token_id)
