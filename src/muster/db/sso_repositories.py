"""SAML sign-in rows of one tenant: requests in flight, used assertion IDs, sessions, the log.

Not on the SCIM hot path; statements are built per call where that reads best.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from muster.db import statements as sql
from muster.db.console_repositories import ACCESS_GROUPS
from muster.db.tables import (
    SamlAssertionIdRow,
    SamlRequestRow,
    SignInLogRow,
    SsoSessionRow,
)

saml_requests = cast(Table, SamlRequestRow.__table__)
saml_assertion_ids = cast(Table, SamlAssertionIdRow.__table__)
sso_sessions = cast(Table, SsoSessionRow.__table__)
sign_in_log = cast(Table, SignInLogRow.__table__)
users, groups, memberships = sql.users, sql.groups, sql.memberships


class SsoRepository:
    """One tenant's SAML state; every statement carries `tenant_id = :tenant`."""

    def __init__(self, conn: Connection, tenant_id: str) -> None:
        self._conn, self._tenant_id = conn, tenant_id

    # -- AuthnRequests and assertion IDs ---------------------------------------------------------
    def add_request(self, request_id: str, expires_at: datetime) -> None:
        self._conn.execute(
            insert(saml_requests),
            {"tenant_id": self._tenant_id, "id": request_id, "expires_at": expires_at},
        )

    def take_request(self, request_id: str, now: datetime) -> bool:
        """Use up a live request we issued; False when unknown, expired or already used."""
        taken = self._conn.execute(
            delete(saml_requests).where(
                saml_requests.c.tenant_id == self._tenant_id,
                saml_requests.c.id == request_id,
                saml_requests.c.expires_at > now,
            )
        ).rowcount
        return taken == 1

    def remember_assertion(self, assertion_id: str, expires_at: datetime) -> bool:
        """Record an assertion ID as used; False when it already was (the caller rolls back)."""
        try:
            self._conn.execute(
                insert(saml_assertion_ids),
                {
                    "tenant_id": self._tenant_id,
                    "assertion_id": assertion_id,
                    "expires_at": expires_at,
                },
            )
        except IntegrityError:
            return False
        return True

    def prune(self, now: datetime) -> None:
        """Forget expired requests and assertion IDs (an expired assertion is refused anyway)."""
        for table in (saml_requests, saml_assertion_ids):
            self._conn.execute(
                delete(table).where(table.c.tenant_id == self._tenant_id, table.c.expires_at <= now)
            )

    # -- access groups ---------------------------------------------------------------------------
    def access_groups(self) -> list[tuple[str, str]]:
        """(group id, lower-cased displayName) of the tenant's access groups."""
        rows = self._conn.execute(ACCESS_GROUPS, {"b_tenant": self._tenant_id})
        return [(row[0], row[2]) for row in rows]

    def is_member_of_any(self, user_id: str, group_ids: Sequence[str]) -> bool:
        if not group_ids:
            return False
        stmt = select(memberships.c.group_id).where(
            memberships.c.tenant_id == self._tenant_id,
            memberships.c.user_id == user_id,
            memberships.c.group_id.in_(list(group_ids)),
        )
        return self._conn.execute(stmt.limit(1)).first() is not None

    # -- sessions --------------------------------------------------------------------------------
    def add_session(self, values: dict[str, Any]) -> None:
        self._conn.execute(insert(sso_sessions), {**values, "tenant_id": self._tenant_id})

    def session(self, session_hash: str, now: datetime) -> Any:
        """The live session with its user's state and document, or None (the user is gone)."""
        stmt = (
            select(
                sso_sessions.c.user_id,
                sso_sessions.c.groups,
                sso_sessions.c.expires_at,
                users.c.active,
                users.c.document,
            )
            .join(
                users,
                and_(
                    users.c.tenant_id == sso_sessions.c.tenant_id,
                    users.c.id == sso_sessions.c.user_id,
                ),
            )
            .where(
                sso_sessions.c.id == session_hash,
                sso_sessions.c.tenant_id == self._tenant_id,
                sso_sessions.c.expires_at > now,
            )
        )
        return self._conn.execute(stmt).first()

    def remove_session(self, session_hash: str) -> None:
        self._conn.execute(
            delete(sso_sessions).where(
                sso_sessions.c.id == session_hash, sso_sessions.c.tenant_id == self._tenant_id
            )
        )

    def prune_sessions(self, now: datetime) -> None:
        self._conn.execute(
            delete(sso_sessions).where(
                sso_sessions.c.tenant_id == self._tenant_id, sso_sessions.c.expires_at <= now
            )
        )

    # -- the sign-in log -------------------------------------------------------------------------
    def add_log(self, values: dict[str, Any]) -> None:
        self._conn.execute(insert(sign_in_log), {**values, "tenant_id": self._tenant_id})

    def prune_log(self, *, older_than: datetime, keep: int) -> None:
        """Delete attempts older than the cutoff, and all but the newest `keep`."""
        tenant = sign_in_log.c.tenant_id == self._tenant_id
        self._conn.execute(delete(sign_in_log).where(tenant, sign_in_log.c.at < older_than))
        boundary = self._conn.execute(
            select(sign_in_log.c.id)
            .where(tenant)
            .order_by(sign_in_log.c.id.desc())
            .offset(keep)
            .limit(1)
        ).scalar()
        if boundary is not None:  # ids are time-ordered: the boundary and older ones go
            self._conn.execute(delete(sign_in_log).where(tenant, sign_in_log.c.id <= boundary))

    def log_page(self, *, refused_only: bool, offset: int, limit: int) -> tuple[int, list[Any]]:
        """The sign-in log, newest first (ids are time-ordered)."""
        where = sign_in_log.c.tenant_id == self._tenant_id
        if refused_only:
            where = and_(where, sign_in_log.c.is_admitted.is_(False))
        rows = self._conn.execute(
            select(sign_in_log)
            .where(where)
            .order_by(sign_in_log.c.id.desc())
            .offset(offset)
            .limit(limit)
        ).all()
        total = self._conn.execute(select(func.count()).select_from(sign_in_log).where(where))
        return int(total.scalar_one()), list(rows)
