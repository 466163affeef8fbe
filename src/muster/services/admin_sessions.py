"""sign_in, current_session, sign_out, csrf_is_valid: console sessions and the lock-out."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

from muster.db.unit_of_work import UnitOfWork
from muster.errors import ScimError
from muster.services.admins import MAX_PASSWORD_LENGTH, hash_secret, verify_password
from muster.services.clock import utcnow

SESSION_LIFETIME = timedelta(hours=12)
# Lock-out: this many failed sign-ins for one email within the window lock it for LOCK_TIME,
# whether or not the email belongs to an admin (so the answer never tells which emails exist).
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
LOCK_TIME = timedelta(minutes=15)
WRONG_CREDENTIALS = "the email address or the password is wrong"
LOCKED = (
    "too many failed sign-ins for this email address: sign-in is locked for {minutes} more "
    "minute{s}. Try again later, or ask for a new set-password link"
)


@dataclass(frozen=True, slots=True)
class AdminSession:
    """A signed-in admin: the tenant comes from here and nowhere else."""

    admin_id: str
    email: str
    tenant_id: str
    tenant_slug: str
    tenant_name: str
    csrf_token: str


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just opened: `secret` goes into the cookie and is never stored."""

    secret: str
    session: AdminSession


def _locked_error(remaining: timedelta) -> ScimError:
    minutes = max(1, -(-int(remaining.total_seconds()) // 60))
    return ScimError(429, LOCKED.format(minutes=minutes, s="" if minutes == 1 else "s"))


def sign_in(uow: UnitOfWork, email: str, password: str) -> NewSession:
    """Check an admin's email and password and open a session; count and lock out failures."""
    email_key = email.strip().lower()[:255]
    with uow.reading():
        attempts = uow.admins.attempts(email_key)
        account = uow.admins.by_email(email_key)
    now = utcnow()
    if attempts is not None and attempts.locked_until is not None and attempts.locked_until > now:
        # Refused before the password is even checked: a locked email cannot be brute-forced.
        raise _locked_error(attempts.locked_until - now)
    # argon2 runs outside any transaction: ~50 ms must not hold SQLite's write lock.
    is_valid = len(password) <= MAX_PASSWORD_LENGTH and verify_password(
        account.password_hash if account is not None else None, password
    )
    if not is_valid:
        _record_failure(uow, email_key)
    assert account is not None
    secret = secrets.token_urlsafe(32)
    csrf_token = secrets.token_urlsafe(32)
    with uow:
        uow.admins.clear_failures(email_key)
        uow.admins.prune_sessions(now)
        uow.admins.add_session(
            {
                "id": hash_secret(secret),
                "admin_id": account.id,
                "tenant_id": account.tenant_id,
                "csrf_token": csrf_token,
                "created_at": now,
                "expires_at": now + SESSION_LIFETIME,
            }
        )
        uow.admins.change(account.id, last_sign_in_at=now)
        uow.bind_tenant(account.tenant_id)
        tenant = uow.tenants.get(account.tenant_id)
        assert tenant is not None
        uow.commit()
    session = AdminSession(
        admin_id=account.id,
        email=account.email,
        tenant_id=account.tenant_id,
        tenant_slug=tenant.slug,
        tenant_name=tenant.name,
        csrf_token=csrf_token,
    )
    return NewSession(secret, session)


def _record_failure(uow: UnitOfWork, email_key: str) -> NoReturn:
    """Count a failed sign-in (in its own transaction) and refuse it; lock at MAX_FAILURES."""
    with uow:
        now = utcnow()
        uow.admins.prune_failures(now - max(FAILURE_WINDOW, LOCK_TIME))
        current = uow.admins.attempts(email_key)
        recent = current is not None and current.last_failed_at > now - FAILURE_WINDOW
        failures = (current.failures if recent else 0) + 1
        locked_until = now + LOCK_TIME if failures >= MAX_FAILURES else None
        uow.admins.record_failure(
            email_key,
            failures=0 if locked_until else failures,
            now=now,
            locked_until=locked_until,
        )
        uow.commit()
    if locked_until is not None:
        raise _locked_error(LOCK_TIME)
    left = MAX_FAILURES - failures
    raise ScimError(
        401,
        f"{WRONG_CREDENTIALS}. After {left} more failed attempt{'s' if left != 1 else ''} "
        f"sign-in is locked for {int(LOCK_TIME.total_seconds() // 60)} minutes",
    )


def current_session(uow: UnitOfWork, secret: str | None) -> AdminSession | None:
    """The live session a cookie's secret opens, or None (unknown, expired or signed out)."""
    if not secret or len(secret) > 128:
        return None
    with uow.reading():
        row = uow.admins.session(hash_secret(secret), utcnow())
    if row is None:
        return None
    return AdminSession(
        admin_id=row.admin_id,
        email=row.email,
        tenant_id=row.tenant_id,
        tenant_slug=row.slug,
        tenant_name=row.name,
        csrf_token=row.csrf_token,
    )


def sign_out(uow: UnitOfWork, secret: str) -> None:
    """End the session this cookie's secret opened."""
    with uow:
        uow.admins.remove_session(hash_secret(secret))
        uow.commit()


def csrf_is_valid(session: AdminSession, submitted: str | None) -> bool:
    """Compare a form's CSRF token with the session's, in constant time."""
    return bool(submitted) and hmac.compare_digest(session.csrf_token, submitted or "")
