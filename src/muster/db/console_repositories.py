"""The console's rows and queries: admins and their sessions, access groups, SAML settings, and
the paged, set-based views of users, groups, memberships and the log.

None of this is on the SCIM hot path, so statements are built per call where that reads best.
Counts are SQL aggregates over one page's groups; no query loads a group's member list.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    Text,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.exc import IntegrityError

from muster.db import statements as sql
from muster.db.row_mapping import to_stored_user
from muster.db.tables import (
    AccessGroupRow,
    AdminAccountRow,
    AdminSessionRow,
    SamlSettingsRow,
    SignInAttemptRow,
)
from muster.errors import ScimError
from muster.scim.records import StoredUser

admin_accounts = cast(Table, AdminAccountRow.__table__)
admin_sessions = cast(Table, AdminSessionRow.__table__)
sign_in_attempts = cast(Table, SignInAttemptRow.__table__)
access_groups = cast(Table, AccessGroupRow.__table__)
saml_settings = cast(Table, SamlSettingsRow.__table__)
groups = sql.groups
# The tenant's access groups: (id, displayName, lower-cased displayName), by name; the console
# lists them and SAML sign-in (sso_repositories.py) checks membership against them.
ACCESS_GROUPS = (
    select(groups.c.id, groups.c.display_name, groups.c.display_name_key)
    .join(
        access_groups,
        and_(
            access_groups.c.tenant_id == groups.c.tenant_id,
            access_groups.c.group_id == groups.c.id,
        ),
    )
    .where(groups.c.tenant_id == sql.TENANT)
    .order_by(groups.c.display_name_key)
)
users, groups, memberships, log = sql.users, sql.groups, sql.memberships, sql.provisioning_log
tenants = sql.tenants


class AdminRepository:
    """Admin accounts, their sessions and failed sign-ins. Platform-level: sign-in comes first,
    and it is the account found here that fixes the tenant."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    # -- accounts -------------------------------------------------------------------------------
    def add(self, values: dict[str, Any]) -> None:
        try:
            self._conn.execute(insert(admin_accounts), values)
        except IntegrityError as error:
            raise ScimError.uniqueness("admin email address") from error

    def by_email(self, email_key: str) -> Any:
        return self._conn.execute(
            select(admin_accounts).where(admin_accounts.c.email_key == email_key)
        ).first()

    def by_setup_token(self, token_hash: str) -> Any:
        return self._conn.execute(
            select(admin_accounts).where(admin_accounts.c.setup_token_hash == token_hash)
        ).first()

    def change(self, admin_id: str, **values: Any) -> None:
        self._conn.execute(
            update(admin_accounts).where(admin_accounts.c.id == admin_id).values(**values)
        )

    # -- sessions -------------------------------------------------------------------------------
    def add_session(self, values: dict[str, Any]) -> None:
        self._conn.execute(insert(admin_sessions), values)

    def session(self, session_hash: str, now: datetime) -> Any:
        """The live session with its admin's email and its tenant's slug and name, or None."""
        stmt = (
            select(
                admin_sessions.c.id,
                admin_sessions.c.admin_id,
                admin_sessions.c.tenant_id,
                admin_sessions.c.csrf_token,
                admin_accounts.c.email,
                tenants.c.slug,
                tenants.c.name,
            )
            .join(admin_accounts, admin_accounts.c.id == admin_sessions.c.admin_id)
            .join(tenants, tenants.c.id == admin_sessions.c.tenant_id)
            .where(admin_sessions.c.id == session_hash, admin_sessions.c.expires_at > now)
        )
        return self._conn.execute(stmt).first()

    def remove_session(self, session_hash: str) -> None:
        self._conn.execute(delete(admin_sessions).where(admin_sessions.c.id == session_hash))

    def remove_sessions_of(self, admin_id: str) -> None:
        self._conn.execute(delete(admin_sessions).where(admin_sessions.c.admin_id == admin_id))

    def prune_sessions(self, now: datetime) -> None:
        self._conn.execute(delete(admin_sessions).where(admin_sessions.c.expires_at <= now))

    # -- failed sign-ins ------------------------------------------------------------------------
    def attempts(self, email_key: str) -> Any:
        return self._conn.execute(
            select(sign_in_attempts).where(sign_in_attempts.c.email_key == email_key)
        ).first()

    def record_failure(
        self, email_key: str, *, failures: int, now: datetime, locked_until: datetime | None
    ) -> None:
        values = {"failures": failures, "last_failed_at": now, "locked_until": locked_until}
        changed = self._conn.execute(
            update(sign_in_attempts)
            .where(sign_in_attempts.c.email_key == email_key)
            .values(**values)
        ).rowcount
        if not changed:
            self._conn.execute(insert(sign_in_attempts), {"email_key": email_key, **values})

    def clear_failures(self, email_key: str) -> None:
        self._conn.execute(
            delete(sign_in_attempts).where(sign_in_attempts.c.email_key == email_key)
        )

    def prune_failures(self, older_than: datetime) -> None:
        """Forget failures that no longer count (guessed emails would otherwise pile up)."""
        self._conn.execute(
            delete(sign_in_attempts).where(
                sign_in_attempts.c.last_failed_at < older_than,
                or_(
                    sign_in_attempts.c.locked_until.is_(None),
                    sign_in_attempts.c.locked_until < older_than,
                ),
            )
        )


class IdentityProviderRepository:
    """One tenant's access groups and SAML settings."""

    def __init__(self, conn: Connection, tenant_id: str) -> None:
        self._conn, self._tenant_id = conn, tenant_id

    def access_groups(self) -> list[tuple[str, str]]:
        """(group id, displayName) of the access groups, by name."""
        rows = self._conn.execute(ACCESS_GROUPS, {"b_tenant": self._tenant_id})
        return [(row[0], row[1]) for row in rows]

    def add_access_group(self, group_id: str, now: datetime) -> None:
        exists = self._conn.execute(
            select(access_groups.c.group_id).where(
                access_groups.c.tenant_id == self._tenant_id,
                access_groups.c.group_id == group_id,
            )
        ).first()
        if exists is None:
            self._conn.execute(
                insert(access_groups),
                {"tenant_id": self._tenant_id, "group_id": group_id, "added_at": now},
            )

    def remove_access_group(self, group_id: str) -> bool:
        return (
            self._conn.execute(
                delete(access_groups).where(
                    access_groups.c.tenant_id == self._tenant_id,
                    access_groups.c.group_id == group_id,
                )
            ).rowcount
            == 1
        )

    def clear_access_groups(self) -> None:
        self._conn.execute(
            delete(access_groups).where(access_groups.c.tenant_id == self._tenant_id)
        )

    def saml_settings(self) -> Any:
        return self._conn.execute(
            select(saml_settings).where(saml_settings.c.tenant_id == self._tenant_id)
        ).first()

    def save_saml_settings(self, values: dict[str, Any]) -> None:
        where = saml_settings.c.tenant_id == self._tenant_id
        if not self._conn.execute(update(saml_settings).where(where).values(**values)).rowcount:
            self._conn.execute(insert(saml_settings), {"tenant_id": self._tenant_id, **values})

    def remove_saml_settings(self) -> None:
        self._conn.execute(
            delete(saml_settings).where(saml_settings.c.tenant_id == self._tenant_id)
        )


def _contains(column: Any, text: str) -> ColumnElement[bool]:
    """Case-insensitive substring match; % and _ typed by the admin match themselves."""
    result: ColumnElement[bool] = func.lower(column).contains(text.lower(), autoescape=True)
    return result


class ConsoleQueries:
    """One tenant's paged reads for the console pages; all counts are SQL aggregates."""

    def __init__(self, conn: Connection, tenant_id: str) -> None:
        self._conn, self._tenant_id = conn, tenant_id

    def _page(self, page: Any, count: Any, offset: int, limit: int) -> tuple[int, list[Any]]:
        rows = self._conn.execute(page.offset(offset).limit(limit)).all()
        if len(rows) < limit and (rows or offset == 0):
            return offset + len(rows), list(rows)
        return int(self._conn.execute(count).scalar_one()), list(rows)

    def users_page(
        self,
        *,
        text: str,
        source: str | None,
        is_active: bool | None,
        offset: int,
        limit: int,
    ) -> tuple[int, list[StoredUser]]:
        """Users matching a name or email fragment, a source and a status; newest first."""
        conditions: list[ColumnElement[bool]] = [users.c.tenant_id == self._tenant_id]
        if text:
            document = users.c.document
            is_sqlite = self._conn.dialect.name == "sqlite"
            if is_sqlite and not any(c in text for c in '"\\'):
                # A cheap substring test on the stored JSON text first, so that only its few
                # candidate rows pay for extracting the name fields (SQLite parses the JSON
                # once per json_extract: 1.5 s over 100,000 users without this). PostgreSQL
                # reads JSONB fields directly; turning it into text would cost more.
                conditions.append(_contains(sql_cast(document, Text), text))
            conditions.append(
                or_(
                    _contains(users.c.user_name, text),
                    _contains(users.c.email_key, text),
                    _contains(document["displayName"].as_string(), text),
                    _contains(document[("name", "givenName")].as_string(), text),
                    _contains(document[("name", "familyName")].as_string(), text),
                )
            )
        if source:
            conditions.append(users.c.source == source)
        if is_active is not None:
            conditions.append(users.c.active == is_active)
        where = and_(*conditions)
        page = select(*sql.USER_COLUMNS).where(where).order_by(users.c.id.desc())
        count = select(func.count()).select_from(users).where(where)
        total, rows = self._page(page, count, offset, limit)
        return total, [to_stored_user(row) for row in rows]

    def groups_of_user(self, user_id: str) -> list[tuple[str, str, str]]:
        """(group id, displayName, membership source) of one user's groups, by name."""
        stmt = (
            select(groups.c.id, groups.c.display_name, memberships.c.source)
            .join(
                memberships,
                and_(
                    memberships.c.tenant_id == groups.c.tenant_id,
                    memberships.c.group_id == groups.c.id,
                ),
            )
            .where(memberships.c.tenant_id == self._tenant_id, memberships.c.user_id == user_id)
            .order_by(groups.c.display_name_key)
        )
        return [(row[0], row[1], row[2]) for row in self._conn.execute(stmt)]

    def groups_page(self, *, text: str, offset: int, limit: int) -> tuple[int, list[Any]]:
        """Groups by name, each with its member count and whether it is an access group.

        The counts are one grouped aggregate over the page's group ids, on memberships' key
        (tenant, group, user): never a member list, and one statement rather than a correlated
        count per group (PostgreSQL may plan each of those as a scan when one group is huge).
        """
        where = groups.c.tenant_id == self._tenant_id
        if text:
            where = and_(where, _contains(groups.c.display_name, text))
        page = (
            select(
                groups.c.id,
                groups.c.display_name,
                groups.c.external_id,
                groups.c.created_at,
                groups.c.last_modified,
            )
            .where(where)
            .order_by(groups.c.display_name_key)
        )
        count = select(func.count()).select_from(groups).where(where)
        total, rows = self._page(page, count, offset, limit)
        ids = [row.id for row in rows]
        counts: dict[str, int] = {}
        locked: set[str] = set()
        if ids:
            counted = (
                select(memberships.c.group_id, func.count())
                .where(memberships.c.tenant_id == self._tenant_id, memberships.c.group_id.in_(ids))
                .group_by(memberships.c.group_id)
            )
            counts = {row[0]: int(row[1]) for row in self._conn.execute(counted)}
            access = select(access_groups.c.group_id).where(
                access_groups.c.tenant_id == self._tenant_id, access_groups.c.group_id.in_(ids)
            )
            locked = {row[0] for row in self._conn.execute(access)}
        return total, [(row, counts.get(row.id, 0), row.id in locked) for row in rows]

    def group_names(self, limit: int) -> list[str]:
        stmt = (
            select(groups.c.display_name)
            .where(groups.c.tenant_id == self._tenant_id)
            .order_by(groups.c.display_name_key)
            .limit(limit)
        )
        return [row[0] for row in self._conn.execute(stmt)]

    def member_count(self, group_id: str) -> int:
        stmt = select(func.count()).where(
            memberships.c.tenant_id == self._tenant_id, memberships.c.group_id == group_id
        )
        return int(self._conn.execute(stmt).scalar_one())

    def is_access_group(self, group_id: str) -> bool:
        stmt = select(access_groups.c.group_id).where(
            access_groups.c.tenant_id == self._tenant_id, access_groups.c.group_id == group_id
        )
        return self._conn.execute(stmt).first() is not None

    def members_page(self, group_id: str, *, offset: int, limit: int) -> list[Any]:
        """One page of a group's members, in the membership key's order.

        The page's user ids are picked from the membership key alone (an index-only range, so a
        deep offset skips index entries, not joined rows); only those 50 users are joined.
        """
        picked = (
            select(memberships.c.user_id, memberships.c.source, memberships.c.added_at)
            .where(memberships.c.tenant_id == self._tenant_id, memberships.c.group_id == group_id)
            .order_by(memberships.c.user_id)
            .offset(offset)
            .limit(limit)
            .subquery()
        )
        stmt = (
            select(
                users.c.id,
                users.c.user_name,
                users.c.active,
                users.c.source.label("user_source"),
                picked.c.source,
                picked.c.added_at,
            )
            .join(picked, picked.c.user_id == users.c.id)
            .where(users.c.tenant_id == self._tenant_id)
            .order_by(users.c.id)
        )
        return list(self._conn.execute(stmt).all())

    def log_page(
        self,
        *,
        failed_only: bool,
        resource_id: str | None,
        offset: int,
        limit: int,
    ) -> tuple[int, list[Any]]:
        """The log, newest first (ids are time-ordered), optionally one resource's entries."""
        conditions: list[ColumnElement[bool]] = [log.c.tenant_id == self._tenant_id]
        if failed_only:
            conditions.append(log.c.status >= 400)
        if resource_id is not None:
            conditions.append(log.c.resource_id == resource_id)
        where = and_(*conditions)
        page = select(log).where(where).order_by(log.c.id.desc())
        count = select(func.count()).select_from(log).where(where)
        return self._page(page, count, offset, limit)

    def existing_ids(self, user_ids: Sequence[str], group_ids: Sequence[str]) -> set[str]:
        """Which of these ids still name a user or a group of this tenant (for log links)."""
        found: set[str] = set()
        if user_ids:
            found.update(
                row[0]
                for row in self._conn.execute(
                    select(users.c.id).where(
                        users.c.tenant_id == self._tenant_id, users.c.id.in_(list(user_ids))
                    )
                )
            )
        if group_ids:
            found.update(
                row[0]
                for row in self._conn.execute(
                    select(groups.c.id).where(
                        groups.c.tenant_id == self._tenant_id, groups.c.id.in_(list(group_ids))
                    )
                )
            )
        return found
