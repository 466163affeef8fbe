"""Tenant-scoped queries: each repository is built with one tenant_id and never leaves it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    MetaData,
    String,
    Table,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from muster.db.row_mapping import to_stored_group, to_stored_user, to_tenant_info
from muster.db.tables import (
    ApiTokenRow,
    GroupRow,
    MembershipRow,
    ProvisioningLogRow,
    TenantRow,
    UserEmailRow,
    UserRow,
)
from muster.errors import ScimError
from muster.scim.records import StoredGroup, StoredUser, TenantInfo

tenants = cast(Table, TenantRow.__table__)
api_tokens = cast(Table, ApiTokenRow.__table__)
users = cast(Table, UserRow.__table__)
user_emails = cast(Table, UserEmailRow.__table__)
provisioning_log = cast(Table, ProvisioningLogRow.__table__)

_USER_COLUMNS = (
    users.c.id,
    users.c.document,
    users.c.active,
    users.c.source,
    users.c.created_at,
    users.c.last_modified,
    users.c.version,
)


def _uniqueness_error(error: IntegrityError) -> ScimError:
    # A concurrent writer won the race past our pre-check; the unique index is the last word.
    text = str(error.orig).lower()
    if "email" in text:
        return ScimError.uniqueness("email address")
    return ScimError.uniqueness("userName")


class TenantRepository:
    """Tenants are platform-level rows; this repository is not scoped to one tenant."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, values: dict[str, Any]) -> None:
        try:
            self._conn.execute(insert(tenants), values)
        except IntegrityError as error:
            raise ScimError.uniqueness(f"tenant slug {values['slug']!r}") from error

    def get(self, tenant_id: str) -> TenantInfo | None:
        row = self._conn.execute(select(tenants).where(tenants.c.id == tenant_id)).first()
        return to_tenant_info(row) if row else None

    def get_by_slug(self, slug: str) -> TenantInfo | None:
        row = self._conn.execute(select(tenants).where(tenants.c.slug == slug)).first()
        return to_tenant_info(row) if row else None

    def list(self) -> list[TenantInfo]:
        rows = self._conn.execute(select(tenants).order_by(tenants.c.slug))
        return [to_tenant_info(row) for row in rows]

    def count(self) -> int:
        return int(self._conn.execute(select(func.count()).select_from(tenants)).scalar_one())

    def change(self, tenant_id: str, **values: Any) -> None:
        self._conn.execute(update(tenants).where(tenants.c.id == tenant_id).values(**values))

    def claim_seat(self, tenant_id: str) -> bool:
        """Take one seat if one is free; one conditional UPDATE, so races cannot oversubscribe."""
        result = self._conn.execute(
            update(tenants)
            .where(tenants.c.id == tenant_id, tenants.c.seats_used < tenants.c.seat_limit)
            .values(seats_used=tenants.c.seats_used + 1)
        )
        return result.rowcount == 1

    def release_seat(self, tenant_id: str) -> None:
        self._conn.execute(
            update(tenants)
            .where(tenants.c.id == tenant_id, tenants.c.seats_used > 0)
            .values(seats_used=tenants.c.seats_used - 1)
        )

    def seats(self, tenant_id: str) -> tuple[int, int]:
        """Return (used, limit)."""
        row = self._conn.execute(
            select(tenants.c.seats_used, tenants.c.seat_limit).where(tenants.c.id == tenant_id)
        ).one()
        return int(row.seats_used), int(row.seat_limit)


class ApiTokenRepository:
    """One tenant's SCIM tokens; lookups by hash are still scoped by the tenant in the token."""

    def __init__(self, conn: Connection, tenant_id: str) -> None:
        self._conn, self._tenant_id = conn, tenant_id

    def add(self, values: dict[str, Any]) -> None:
        self._conn.execute(insert(api_tokens), {**values, "tenant_id": self._tenant_id})

    def revoke_all(self, now: datetime) -> int:
        result = self._conn.execute(
            update(api_tokens)
            .where(api_tokens.c.tenant_id == self._tenant_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return result.rowcount

    def find_active(self, token_hash: str) -> Any:
        """Return the live token joined with its tenant's switches, or None."""
        stmt = (
            select(
                api_tokens.c.id,
                api_tokens.c.token_hash,
                api_tokens.c.last_used_at,
                tenants.c.plan,
                tenants.c.scim_enabled,
            )
            .join(tenants, tenants.c.id == api_tokens.c.tenant_id)
            .where(
                api_tokens.c.tenant_id == self._tenant_id,
                api_tokens.c.token_hash == token_hash,
                api_tokens.c.revoked_at.is_(None),
            )
        )
        return self._conn.execute(stmt).first()

    def current(self) -> Any:
        """Return the tenant's live token row (prefix, created, last used), or None."""
        stmt = select(api_tokens).where(
            api_tokens.c.tenant_id == self._tenant_id, api_tokens.c.revoked_at.is_(None)
        )
        return self._conn.execute(stmt).first()

    def touch(self, token_id: str, now: datetime) -> None:
        self._conn.execute(
            update(api_tokens)
            .where(api_tokens.c.tenant_id == self._tenant_id, api_tokens.c.id == token_id)
            .values(last_used_at=now)
        )


class UserRepository:
    """One tenant's users; every statement carries `tenant_id = :tenant`."""

    def __init__(self, conn: Connection, tenant_id: str) -> None:
        self._conn, self._tenant_id = conn, tenant_id
        self._scope = users.c.tenant_id == tenant_id

    def get(self, user_id: str, *, for_update: bool = False) -> StoredUser | None:
        stmt = select(*_USER_COLUMNS).where(self._scope, users.c.id == user_id)
        if for_update:
            # PostgreSQL: hold the row until commit so concurrent writers queue up. SQLite's
            # BEGIN IMMEDIATE already serialises writers and ignores FOR UPDATE.
            stmt = stmt.with_for_update()
        row = self._conn.execute(stmt).first()
        return to_stored_user(row) if row else None

    def find_holders(self, user_name_key: str, email_key: str) -> list[tuple[str, bool, str, str]]:
        """Return (id, active, user_name_key, email_key) of users holding either key."""
        rows = self._conn.execute(
            select(users.c.id, users.c.active, users.c.user_name_key, users.c.email_key).where(
                self._scope,
                (users.c.user_name_key == user_name_key) | (users.c.email_key == email_key),
            )
        )
        return [(r.id, r.active, r.user_name_key, r.email_key) for r in rows]

    def id_by_email(self, email_key: str) -> str | None:
        return self._conn.execute(
            select(users.c.id).where(self._scope, users.c.email_key == email_key)
        ).scalar()

    def add(self, values: dict[str, Any], emails: Iterable[str]) -> None:
        try:
            self._conn.execute(insert(users), {**values, "tenant_id": self._tenant_id})
        except IntegrityError as error:
            raise _uniqueness_error(error) from error
        self._add_emails(values["id"], emails)

    def change(self, user_id: str, values: dict[str, Any], emails: Iterable[str] | None) -> bool:
        """Write new values; `emails`, when given, replaces the user's email index rows."""
        try:
            result = self._conn.execute(
                update(users).where(self._scope, users.c.id == user_id).values(**values)
            )
        except IntegrityError as error:
            raise _uniqueness_error(error) from error
        if result.rowcount != 1:
            return False
        if emails is not None:
            self._conn.execute(
                delete(user_emails).where(
                    user_emails.c.tenant_id == self._tenant_id, user_emails.c.user_id == user_id
                )
            )
            self._add_emails(user_id, emails)
        return True

    def _add_emails(self, user_id: str, emails: Iterable[str]) -> None:
        rows = [
            {"tenant_id": self._tenant_id, "user_id": user_id, "value_key": value}
            for value in emails
        ]
        if rows:
            self._conn.execute(insert(user_emails), rows)

    def remove(self, user_id: str) -> bool:
        """Delete the user and (by cascade) their index rows; tell whether one was deleted."""
        result = self._conn.execute(delete(users).where(self._scope, users.c.id == user_id))
        return result.rowcount == 1

    def search(
        self,
        where: ColumnElement[bool] | None,
        *,
        offset: int,
        limit: int,
    ) -> tuple[int, list[StoredUser]]:
        """Return (total matches, one page in id order, which is creation order)."""
        condition = self._scope if where is None else and_(self._scope, where)
        total = int(
            self._conn.execute(
                select(func.count()).select_from(users).where(condition)
            ).scalar_one()
        )
        if limit == 0 or offset >= total:
            return total, []
        rows = self._conn.execute(
            select(*_USER_COLUMNS).where(condition).order_by(users.c.id).offset(offset).limit(limit)
        )
        return total, [to_stored_user(row) for row in rows]


class ProvisioningLogRepository:
    """One tenant's provisioning log."""

    def __init__(self, conn: Connection, tenant_id: str) -> None:
        self._conn, self._tenant_id = conn, tenant_id

    def add(self, values: dict[str, Any]) -> None:
        self._conn.execute(insert(provisioning_log), {**values, "tenant_id": self._tenant_id})

    def newest(self, *, failed_only: bool, limit: int) -> Sequence[Any]:
        stmt = select(provisioning_log).where(provisioning_log.c.tenant_id == self._tenant_id)
        if failed_only:
            stmt = stmt.where(provisioning_log.c.status >= 400)
        stmt = stmt.order_by(provisioning_log.c.id.desc()).limit(limit)
        return self._conn.execute(stmt).all()

    def prune(self, *, older_than: datetime, keep: int) -> int:
        """Delete entries older than the cutoff, and all but the newest `keep`."""
        scope = provisioning_log.c.tenant_id == self._tenant_id
        removed = self._conn.execute(
            delete(provisioning_log).where(scope, provisioning_log.c.at < older_than)
        ).rowcount
        boundary = self._conn.execute(
            select(provisioning_log.c.id)
            .where(scope)
            .order_by(provisioning_log.c.id.desc())
            .offset(keep)
            .limit(1)
        ).scalar()
        if boundary is not None:
            removed += self._conn.execute(
                delete(provisioning_log).where(scope, provisioning_log.c.id <= boundary)
            ).rowcount
        return removed


groups = cast(Table, GroupRow.__table__)
memberships = cast(Table, MembershipRow.__table__)

# A per-connection scratch table for member id lists, so that membership changes are
# set-based statements however long the list is (SQLite caps bound parameters at 32,766).
_scratch = MetaData()
staged_members = Table(
    "muster_staged_members",
    _scratch,
    Column("user_id", String(255), primary_key=True),
    prefixes=["TEMPORARY"],
)
_STAGE_CHUNK = 5000

_GROUP_COLUMNS = (
    groups.c.id,
    groups.c.document,
    groups.c.created_at,
    groups.c.last_modified,
    groups.c.version,
)


class GroupRepository:
    """One tenant's groups and their membership rows."""

    def __init__(self, conn: Connection, tenant_id: str) -> None:
        self._conn, self._tenant_id = conn, tenant_id
        self._scope = groups.c.tenant_id == tenant_id

    def get(self, group_id: str, *, for_update: bool = False) -> StoredGroup | None:
        stmt = select(*_GROUP_COLUMNS).where(self._scope, groups.c.id == group_id)
        if for_update:
            # PostgreSQL: concurrent PATCHes of one group queue on its row instead of racing.
            stmt = stmt.with_for_update()
        row = self._conn.execute(stmt).first()
        return to_stored_group(row) if row else None

    def add(self, values: dict[str, Any]) -> None:
        try:
            self._conn.execute(insert(groups), {**values, "tenant_id": self._tenant_id})
        except IntegrityError as error:
            raise ScimError.uniqueness("displayName") from error

    def change(self, group_id: str, values: dict[str, Any]) -> None:
        try:
            self._conn.execute(
                update(groups).where(self._scope, groups.c.id == group_id).values(**values)
            )
        except IntegrityError as error:
            raise ScimError.uniqueness("displayName") from error

    def holder_of_name(self, display_name_key: str) -> str | None:
        return self._conn.execute(
            select(groups.c.id).where(self._scope, groups.c.display_name_key == display_name_key)
        ).scalar()

    def remove(self, group_id: str) -> bool:
        result = self._conn.execute(delete(groups).where(self._scope, groups.c.id == group_id))
        return result.rowcount == 1

    def search(
        self, where: ColumnElement[bool] | None, *, offset: int, limit: int
    ) -> tuple[int, list[StoredGroup]]:
        condition = self._scope if where is None else and_(self._scope, where)
        total = int(
            self._conn.execute(
                select(func.count()).select_from(groups).where(condition)
            ).scalar_one()
        )
        if limit == 0 or offset >= total:
            return total, []
        rows = self._conn.execute(
            select(*_GROUP_COLUMNS)
            .where(condition)
            .order_by(groups.c.id)
            .offset(offset)
            .limit(limit)
        )
        return total, [to_stored_group(row) for row in rows]

    # Membership: every statement below is set-based; none reads the group's member list.

    def _members_of(self, group_id: str) -> ColumnElement[bool]:
        return and_(memberships.c.tenant_id == self._tenant_id, memberships.c.group_id == group_id)

    def stage(self, user_ids: Sequence[str]) -> None:
        """Put a list of ids into this connection's scratch table, replacing what was there."""
        # IF NOT EXISTS each time: cheap, and a rolled-back CREATE leaves no stale flag behind.
        self._conn.exec_driver_sql(
            "CREATE TEMPORARY TABLE IF NOT EXISTS muster_staged_members "
            "(user_id VARCHAR(255) PRIMARY KEY)"
        )
        self._conn.execute(delete(staged_members))
        for start in range(0, len(user_ids), _STAGE_CHUNK):
            chunk = user_ids[start : start + _STAGE_CHUNK]
            self._conn.execute(insert(staged_members), [{"user_id": u} for u in chunk])

    def unknown_staged(self, limit: int = 5) -> list[str]:
        """Staged ids that are no user of this tenant."""
        rows = self._conn.execute(
            select(staged_members.c.user_id)
            .where(
                ~exists().where(
                    users.c.tenant_id == self._tenant_id, users.c.id == staged_members.c.user_id
                )
            )
            .limit(limit)
        )
        return [row.user_id for row in rows]

    def groups_among(self, ids: Sequence[str]) -> list[str]:
        rows = self._conn.execute(select(groups.c.id).where(self._scope, groups.c.id.in_(ids)))
        return [row.id for row in rows]

    def add_staged(self, group_id: str, *, source: str, now: datetime) -> int:
        """Insert the staged users not yet members; local users are never added by the IdP."""
        candidates = select(
            literal(self._tenant_id), literal(group_id), users.c.id, literal(source), literal(now)
        ).where(
            users.c.tenant_id == self._tenant_id,
            users.c.id.in_(select(staged_members.c.user_id)),
            ~exists().where(self._members_of(group_id), memberships.c.user_id == users.c.id),
        )
        if source == "idp":
            candidates = candidates.where(users.c.source != "local")
        result = self._conn.execute(
            insert(memberships).from_select(
                ["tenant_id", "group_id", "user_id", "source", "added_at"], candidates
            )
        )
        return result.rowcount

    def remove_staged(self, group_id: str, *, source: str) -> int:
        result = self._conn.execute(
            delete(memberships).where(
                self._members_of(group_id),
                memberships.c.source == source,
                memberships.c.user_id.in_(select(staged_members.c.user_id)),
            )
        )
        return result.rowcount

    def remove_unstaged(self, group_id: str, *, source: str) -> int:
        """Delete this source's memberships whose user is not staged (a full replace)."""
        result = self._conn.execute(
            delete(memberships).where(
                self._members_of(group_id),
                memberships.c.source == source,
                ~memberships.c.user_id.in_(select(staged_members.c.user_id)),
            )
        )
        return result.rowcount

    def remove_all(self, group_id: str, *, source: str) -> int:
        result = self._conn.execute(
            delete(memberships).where(self._members_of(group_id), memberships.c.source == source)
        )
        return result.rowcount

    def set_member(self, group_id: str, user_id: str, *, source: str, now: datetime) -> None:
        """Make one membership exist with this source (an admin's manual add)."""
        changed = self._conn.execute(
            update(memberships)
            .where(self._members_of(group_id), memberships.c.user_id == user_id)
            .values(source=source)
        ).rowcount
        if not changed:
            self._conn.execute(
                insert(memberships),
                {
                    "tenant_id": self._tenant_id,
                    "group_id": group_id,
                    "user_id": user_id,
                    "source": source,
                    "added_at": now,
                },
            )

    def remove_member(self, group_id: str, user_id: str) -> bool:
        result = self._conn.execute(
            delete(memberships).where(self._members_of(group_id), memberships.c.user_id == user_id)
        )
        return result.rowcount == 1

    def member_batches(self, group_id: str, batch_size: int) -> Iterator[list[tuple[str, str]]]:
        """Yield (user id, userName) of the members in batches, in id order, never all at once."""
        result = self._conn.execution_options(stream_results=True, yield_per=batch_size).execute(
            select(memberships.c.user_id, users.c.user_name)
            .join(
                users,
                and_(
                    users.c.tenant_id == memberships.c.tenant_id,
                    users.c.id == memberships.c.user_id,
                ),
            )
            .where(self._members_of(group_id))
            .order_by(memberships.c.user_id)
        )
        for partition in result.partitions(batch_size):
            yield [(row[0], row[1]) for row in partition]

    def members_of_groups(self, group_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """Members of a page of groups, keyed by group id."""
        found: dict[str, list[tuple[str, str]]] = {g: [] for g in group_ids}
        rows = self._conn.execute(
            select(memberships.c.group_id, memberships.c.user_id, users.c.user_name)
            .join(
                users,
                and_(
                    users.c.tenant_id == memberships.c.tenant_id,
                    users.c.id == memberships.c.user_id,
                ),
            )
            .where(
                memberships.c.tenant_id == self._tenant_id, memberships.c.group_id.in_(group_ids)
            )
            .order_by(memberships.c.group_id, memberships.c.user_id)
        )
        for row in rows:
            found[row.group_id].append((row.user_id, row.user_name))
        return found

    def groups_of_users(self, user_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """Each user's (group id, displayName) pairs, for the users' read-only `groups`."""
        found: dict[str, list[tuple[str, str]]] = {u: [] for u in user_ids}
        rows = self._conn.execute(
            select(memberships.c.user_id, groups.c.id, groups.c.display_name)
            .join(
                groups,
                and_(
                    groups.c.tenant_id == memberships.c.tenant_id,
                    groups.c.id == memberships.c.group_id,
                ),
            )
            .where(memberships.c.tenant_id == self._tenant_id, memberships.c.user_id.in_(user_ids))
            .order_by(groups.c.display_name_key)
        )
        for row in rows:
            found[row.user_id].append((row.id, row.display_name))
        return found

    def member_count(self, group_id: str) -> int:
        return int(
            self._conn.execute(
                select(func.count()).select_from(memberships).where(self._members_of(group_id))
            ).scalar_one()
        )
