"""create_admin, reset_admin, setup_account, set_password: console admin accounts of a tenant."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from muster.db.ids import new_id
from muster.db.unit_of_work import UnitOfWork
from muster.errors import ScimError
from muster.services.clock import utcnow
from muster.services.tenants import tenant_by_slug

SETUP_LINK_VALIDITY = timedelta(hours=24)
MIN_PASSWORD_LENGTH = 12
# argon2 cost grows with the input; refuse megabyte "passwords" before hashing them.
MAX_PASSWORD_LENGTH = 256
SETUP_LINK_INVALID = (
    "this set-password link is not valid: it was already used, has expired (links last 24 "
    "hours) or was replaced by a newer one. Ask for a new one with `muster admin reset EMAIL`"
)

# argon2-cffi's defaults are argon2id with RFC 9106's low-memory profile (t=3, m=64 MiB, p=4).
_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    # Verified when the email is unknown, so that a wrong email costs as long as a wrong
    # password and the timing does not tell which admin emails exist. Made on first use, not at
    # import: every CLI command and worker would pay for it.
    return _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class SetupLink:
    """A one-time set-password token: `token` is the only copy there will ever be."""

    email: str
    tenant_slug: str
    token: str
    expires_at: datetime


def hash_secret(secret: str) -> str:
    # Setup tokens and session ids carry 256 random bits: a plain SHA-256 cannot be reversed,
    # and storing only the hash means a leaked table is not a set of working links or cookies.
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password against its argon2 hash; False (after the same work) when there is none."""
    try:
        return (
            _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
        )
    except (VerificationError, InvalidHashError):
        return False


def _check_email(email: str) -> str:
    email = email.strip()
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain or len(email) > 255 or " " in email:
        raise ScimError.invalid_value(f"{email!r} is not an email address")
    return email


def _new_setup(now: datetime) -> tuple[str, dict[str, object]]:
    token = secrets.token_urlsafe(32)
    return token, {
        "setup_token_hash": hash_secret(token),
        "setup_expires_at": now + SETUP_LINK_VALIDITY,
    }


def create_admin(uow: UnitOfWork, slug: str, email: str) -> SetupLink:
    """Create a console admin of a tenant and a set-password link valid for 24 hours."""
    email = _check_email(email)
    with uow:
        tenant = tenant_by_slug(uow, slug)
        if uow.admins.by_email(email.lower()) is not None:
            raise ScimError.uniqueness("admin email address")
        now = utcnow()
        token, setup = _new_setup(now)
        uow.admins.add(
            {
                "id": new_id(),
                "tenant_id": tenant.tenant_id,
                "email": email,
                "email_key": email.lower(),
                "password_hash": None,
                "created_at": now,
                "last_sign_in_at": None,
                **setup,
            }
        )
        uow.commit()
    return SetupLink(email, tenant.slug, token, now + SETUP_LINK_VALIDITY)


def reset_admin(uow: UnitOfWork, email: str) -> SetupLink:
    """Issue a new set-password link; the old password and sessions stop working."""
    with uow:
        account = uow.admins.by_email(email.strip().lower())
        if account is None:
            raise ScimError(404, f"no console admin with email {email!r}")
        tenant = uow.tenants.get(account.tenant_id)
        assert tenant is not None
        now = utcnow()
        token, setup = _new_setup(now)
        uow.admins.change(account.id, password_hash=None, **setup)
        uow.admins.remove_sessions_of(account.id)
        uow.commit()
    return SetupLink(account.email, tenant.slug, token, now + SETUP_LINK_VALIDITY)


def _live_setup(uow: UnitOfWork, token: str) -> Any:
    account = uow.admins.by_setup_token(hash_secret(token)) if token else None
    if account is None or account.setup_expires_at is None or account.setup_expires_at <= utcnow():
        raise ScimError(404, SETUP_LINK_INVALID)
    return account


def setup_account(uow: UnitOfWork, token: str) -> str:
    """Return the email a live set-password link is for; 404 when used, expired or unknown."""
    with uow.reading():
        account = _live_setup(uow, token)
    return str(account.email)


def check_password_rules(password: str, confirmation: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ScimError.invalid_value(
            f"the password must be at least {MIN_PASSWORD_LENGTH} characters long"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ScimError.invalid_value(
            f"the password must be at most {MAX_PASSWORD_LENGTH} characters long"
        )
    if password != confirmation:
        raise ScimError.invalid_value("the two passwords are not the same")


def set_password(uow: UnitOfWork, token: str, password: str, confirmation: str) -> str:
    """Set an admin's password through a live link, which is then used up; return the email."""
    check_password_rules(password, confirmation)
    password_hash = hash_password(password)  # slow on purpose: before the write transaction
    with uow:
        account = _live_setup(uow, token)
        admin_id = account.id
        uow.admins.change(
            admin_id, password_hash=password_hash, setup_token_hash=None, setup_expires_at=None
        )
        uow.admins.remove_sessions_of(admin_id)
        uow.commit()
    return str(account.email)
