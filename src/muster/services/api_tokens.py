"""SCIM tokens and events API keys: issued (secret shown once), revoked, authenticated."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from muster.db.ids import new_id
from muster.db.repositories import ActiveToken, ApiTokenRepository
from muster.db.statements import EVENTS, SCIM
from muster.db.unit_of_work import UnitOfWork
from muster.errors import ScimError
from muster.scim.records import TenantInfo
from muster.services import events
from muster.services.clock import utcnow
from muster.services.tenants import ENTERPRISE, tenant_by_slug

TOKEN_PREFIX = "mst_"
EVENTS_KEY_PREFIX = "mev_"
# last_used_at is written at most this often per token, so authentication stays a read.
LAST_USED_RESOLUTION = timedelta(seconds=60)
ENTERPRISE_ONLY = (
    "SCIM provisioning is available on the Enterprise plan only; ask your account manager "
    "(or support) to upgrade this account"
)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new token: `secret` is the only copy there will ever be."""

    secret: str
    prefix: str
    tenant: TenantInfo
    replaced: str | None = None  # the prefix of the token this one replaced


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What may be shown about the live token later: never the secret."""

    prefix: str
    created: datetime
    last_used: datetime | None


def token_proof(token: str) -> str:
    """What proves a token later without keeping it: its hash, as the tokens table holds it."""
    return _hash(token)


def _hash(token: str) -> str:
    # The token carries 256 random bits, so a fast unsalted SHA-256 is enough: nobody can
    # brute-force a preimage, and unlike a password hash it costs microseconds per request.
    return hashlib.sha256(token.encode()).hexdigest()


def tenant_of_token(token: str, prefix: str = TOKEN_PREFIX) -> str | None:
    """Read the tenant id embedded in a token of the form mst_<tenant hex>_<secret>."""
    if not token.startswith(prefix):
        return None
    tenant_hex, sep, secret = token[len(prefix) :].partition("_")
    if not sep or len(tenant_hex) != 32 or not secret:
        return None
    try:
        int(tenant_hex, 16)
    except ValueError:
        return None
    h = tenant_hex.lower()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def issue_scim_token(uow: UnitOfWork, slug: str) -> IssuedToken:
    """Turn SCIM on and issue a new token; the tenant's previous token stops working at once."""
    with uow:
        tenant = _tenant_for_change(uow, slug)
        if tenant.plan != ENTERPRISE:
            raise ScimError.forbidden(ENTERPRISE_ONLY)
        now = utcnow()
        token, prefix, _ = _replace_token(
            uow, uow.tokens, TOKEN_PREFIX, events.SCIM_TOKEN_ISSUED, events.SCIM_TOKEN_REVOKED, now
        )
        _set_scim(uow, tenant, enabled=True, now=now)
        refreshed = uow.tenants.get(tenant.tenant_id)
        uow.commit()
    assert refreshed is not None
    return IssuedToken(secret=token, prefix=prefix, tenant=refreshed)


def _replace_token(
    uow: UnitOfWork,
    tokens: ApiTokenRepository,
    kind_prefix: str,
    issued: str,
    revoked: str,
    now: datetime,
) -> tuple[str, str, str | None]:
    """Revoke the tenant's live token of this kind and store a new one: (token, prefix, old)."""
    assert uow.tenant_id is not None
    # The tenant id travels in the token so that a lookup is scoped by tenant like every
    # other query (and a shard can be found from the token alone); the secret is 256 bits.
    secret = secrets.token_urlsafe(32)
    token = f"{kind_prefix}{uow.tenant_id.replace('-', '')}_{secret}"
    prefix = f"{kind_prefix}…{secret[:8]}"
    previous = tokens.current()
    tokens.revoke_all(now)
    if previous is not None:
        events.tenant_event(uow, revoked, now, prefix=previous.prefix)
    tokens.add({"id": new_id(), "prefix": prefix, "token_hash": _hash(token), "created_at": now})
    events.tenant_event(uow, issued, now, prefix=prefix)
    return token, prefix, previous.prefix if previous is not None else None


def _tenant_for_change(uow: UnitOfWork, slug: str) -> TenantInfo:
    tenant = tenant_by_slug(uow, slug)
    uow.bind_tenant(tenant.tenant_id)
    return tenant


def _set_scim(uow: UnitOfWork, tenant: TenantInfo, *, enabled: bool, now: datetime) -> None:
    if tenant.scim_enabled != enabled:
        uow.tenants.change(tenant.tenant_id, scim_enabled=enabled)
        events.tenant_event(uow, events.SCIM_ENABLED if enabled else events.SCIM_DISABLED, now)


def turn_scim_off(uow: UnitOfWork, slug: str) -> None:
    """Turn SCIM off: the tenant's token stops working, answered 403 "SCIM is turned off"."""
    # The token is kept (not revoked) so a client still using it learns *why* it is refused
    # (403, SCIM off) rather than being told its token is wrong (401).
    with uow:
        tenant = _tenant_for_change(uow, slug)
        _set_scim(uow, tenant, enabled=False, now=utcnow())
        uow.commit()


def current_token(uow: UnitOfWork) -> TokenInfo | None:
    """Describe the tenant's live token (prefix, created, last used), never its secret."""
    with uow.reading():
        row = uow.tokens.current()
    if row is None:
        return None
    return TokenInfo(prefix=row.prefix, created=row.created_at, last_used=row.last_used_at)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the tenant fixed by a bearer token."""

    tenant_id: str
    token_id: str
    last_used: datetime | None = None
    kind: str = SCIM  # scim: a SCIM token; events: an events API key

    @property
    def is_use_stale(self) -> bool:
        """Tell whether the token's last-used time is due for a write (see record_token_use)."""
        return self.last_used is None or utcnow() - self.last_used > LAST_USED_RESOLUTION


def _tokens(uow: UnitOfWork, kind: str) -> ApiTokenRepository:
    return uow.tokens if kind == SCIM else uow.events_keys


_KIND_PREFIXES = {SCIM: TOKEN_PREFIX, EVENTS: EVENTS_KEY_PREFIX}
_NOT_VALID = "the bearer token is not valid (revoked, replaced or mistyped)"


def _live_token(uow: UnitOfWork, token: str | None, kind: str) -> tuple[str, ActiveToken]:
    """Find the live token of this kind matching `token`: (tenant id, row); 401 otherwise."""
    # A request's unit of work was made for the tenant its token names (the pipeline read it);
    # a token of another tenant then simply finds no row below.
    tenant_id = uow.tenant_id or (tenant_of_token(token, _KIND_PREFIXES[kind]) if token else None)
    if tenant_id is None:
        raise ScimError.unauthorized()
    computed = _hash(token or "")
    with uow.reading():
        uow.bind_tenant(tenant_id)
        row = _tokens(uow, kind).find_active(computed)
    # The row was found by its hash; the constant-time compare keeps any future change of the
    # lookup (say, by prefix) from turning into a timing oracle on the secret.
    if row is None or not hmac.compare_digest(row.token_hash, computed):
        raise ScimError.unauthorized(_NOT_VALID)
    return tenant_id, row


def authenticate_token(uow: UnitOfWork, token: str | None) -> Principal:
    """Resolve a bearer token to its tenant; 401 for an unknown one, 403 when SCIM is off."""
    tenant_id, row = _live_token(uow, token, SCIM)
    if row.plan != ENTERPRISE:
        raise ScimError.forbidden(ENTERPRISE_ONLY)
    if not row.scim_enabled:
        raise ScimError.forbidden(
            "SCIM provisioning is turned off for this account; an admin can turn it on under "
            "Settings > Identity Providers > SCIM Integration"
        )
    return Principal(tenant_id=tenant_id, token_id=row.id, last_used=row.last_used_at)


def record_token_use(uow: UnitOfWork, principal: Principal) -> None:
    """Write the token's last-used time, at most once a minute, after the request it served."""
    if not principal.is_use_stale:
        return
    with uow:
        _tokens(uow, principal.kind).touch(principal.token_id, utcnow())
        uow.commit()


def turn_scim_on(uow: UnitOfWork, slug: str) -> TokenInfo | None:
    """Turn SCIM on (Enterprise only); a live token works again. Return that token, if any."""
    with uow:
        tenant = _tenant_for_change(uow, slug)
        if tenant.plan != ENTERPRISE:
            raise ScimError.forbidden(ENTERPRISE_ONLY)
        _set_scim(uow, tenant, enabled=True, now=utcnow())
        row = uow.tokens.current()
        uow.commit()
    if row is None:
        return None
    return TokenInfo(prefix=row.prefix, created=row.created_at, last_used=row.last_used_at)


# -- the platform's events API key (GET /api/v1/events) --------------------------------------
# Any plan may read its own events: they describe changes the tenant made or received, and the
# key is apart from the SCIM token, so neither can be used, replaced or revoked as the other.


def issue_events_key(uow: UnitOfWork, slug: str) -> IssuedToken:
    """Issue a new events API key; the tenant's previous key stops working at once."""
    with uow:
        tenant = _tenant_for_change(uow, slug)
        token, prefix, replaced = _replace_token(
            uow,
            uow.events_keys,
            EVENTS_KEY_PREFIX,
            events.EVENTS_KEY_ISSUED,
            events.EVENTS_KEY_REVOKED,
            utcnow(),
        )
        uow.commit()
    return IssuedToken(secret=token, prefix=prefix, tenant=tenant, replaced=replaced)


def revoke_events_key(uow: UnitOfWork, slug: str) -> str | None:
    """Revoke the tenant's events API key at once; return its prefix (None: there was none)."""
    with uow:
        _tenant_for_change(uow, slug)
        now = utcnow()
        previous = uow.events_keys.current()
        if previous is None:
            return None
        uow.events_keys.revoke_all(now)
        events.tenant_event(uow, events.EVENTS_KEY_REVOKED, now, prefix=previous.prefix)
        uow.commit()
    return str(previous.prefix)


def current_events_key(uow: UnitOfWork) -> TokenInfo | None:
    """Describe the tenant's live events API key (prefix, created, last used), never its secret."""
    with uow.reading():
        row = uow.events_keys.current()
    if row is None:
        return None
    return TokenInfo(prefix=row.prefix, created=row.created_at, last_used=row.last_used_at)


def authenticate_events_key(uow: UnitOfWork, key: str | None) -> Principal:
    """Resolve an events API key to its tenant; 401 for an unknown, revoked or SCIM token."""
    tenant_id, row = _live_token(uow, key, EVENTS)
    return Principal(tenant_id=tenant_id, token_id=row.id, last_used=row.last_used_at, kind=EVENTS)
