"""record_attempt / attempts_page: every SAML sign-in attempt, its outcome and refusal code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from muster.db.ids import new_id
from muster.db.unit_of_work import UnitOfWork
from muster.services import events
from muster.services.pages import PAGE_SIZE, Page, offset_of

MAX_DETAIL = 500
# Anyone can post to an ACS URL, so the log is bounded: 30 days, and the newest entries only.
RETENTION = timedelta(days=30)
MAX_ENTRIES = 100_000
PRUNE_EVERY = 500  # attempts recorded by this process between two prunes
_recorded: dict[str, int] = {}


@dataclass(frozen=True, slots=True)
class SignInAttempt:
    """One line of the sign-in log."""

    at: datetime
    email: str | None
    is_admitted: bool
    code: str | None
    detail: str | None
    flow: str  # sp: started here (/login); idp: from the Okta dashboard
    user_id: str | None


def record_attempt(
    uow: UnitOfWork,
    *,
    at: datetime,
    email: str | None,
    code: str | None,
    detail: str | None,
    flow: str,
    user_id: str | None = None,
) -> None:
    """Write one attempt in its own transaction; `code` None means the person was admitted."""
    with uow:
        uow.sso.add_log(
            {
                "id": new_id(),
                "at": at,
                "email": (email or "")[:255] or None,
                "is_admitted": code is None,
                "code": code,
                "detail": (detail or "")[:MAX_DETAIL] or None,
                "flow": flow,
                "user_id": user_id,
            }
        )
        if code is not None:
            events.sign_in_refused(
                uow, email=email, user_id=user_id, code=code, detail=detail, flow=flow, at=at
            )
        assert uow.tenant_id is not None
        seen = _recorded[uow.tenant_id] = _recorded.get(uow.tenant_id, 0) + 1
        if seen % PRUNE_EVERY == 0:
            uow.sso.prune_log(older_than=at - RETENTION, keep=MAX_ENTRIES)
        uow.commit()


def attempts_page(
    uow: UnitOfWork, *, refused_only: bool = False, page: int = 1
) -> Page[SignInAttempt]:
    """One page of the sign-in log, newest first."""
    with uow.reading():
        total, rows = uow.sso.log_page(
            refused_only=refused_only, offset=offset_of(page), limit=PAGE_SIZE
        )
    attempts = [
        SignInAttempt(
            row.at, row.email, bool(row.is_admitted), row.code, row.detail, row.flow, row.user_id
        )
        for row in rows
    ]
    return Page(attempts, total, max(page, 1))
