"""Tenant-scoped queries: each repository is built with one tenant_id and never leaves it.

Hot-path statements are prebuilt in statements.py; only filtered searches build SQL per call.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

from sqlalchemy import Column, ColumnElement, Connection, and_, func, literal, or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import UnaryExpression

from muster.db import fast_exec as fast
from muster.db import statements as sql
from muster.db.row_mapping import to_stored_group, to_stored_user, to_tenant_info
from muster.errors import ScimError
from muster.scim.identities import identity_key
from muster.scim.records import StoredGroup, StoredUser, TenantInfo

R = TypeVar("R")
# Up to this many emails are checked one prebuilt statement each, more with one IN list.
_FEW_EMAILS = 4


class ActiveToken(NamedTuple):
    """A live token and its tenant's switches, as authentication reads them."""

    id: str
    token_hash: str
    last_used_at: datetime | None
    plan: str
    scim_enabled: bool


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
            self._conn.execute(sql.INSERT_TENANT, values)
        except IntegrityError as error:
            raise ScimError.uniqueness(f"tenant slug {values['slug']!r}") from error

    def get(self, tenant_id: str) -> TenantInfo | None:
        row = self._conn.execute(sql.TENANT_BY_ID, {"b_tenant": tenant_id}).first()
        return to_tenant_info(row) if row else None

    def get_by_slug(self, slug: str) -> TenantInfo | None:
        row = self._conn.execute(sql.TENANT_BY_SLUG, {"b_slug": slug}).first()
        return to_tenant_info(row) if row else None

    def list(self) -> list[TenantInfo]:
        return [to_tenant_info(row) for row in self._conn.execute(sql.TENANTS)]

    def count(self) -> int:
        return int(self._conn.execute(sql.TENANT_COUNT).scalar_one())

    def change(self, tenant_id: str, **values: Any) -> None:
        self._conn.execute(sql.UPDATE_TENANT, {"b_tenant": tenant_id, **values})

    def claim_seat(self, tenant_id: str) -> bool:
        """Take one seat if one is free; one conditional UPDATE, so races cannot oversubscribe."""
        return fast.run(self._conn, sql.CLAIM_SEAT, {"b_tenant": tenant_id}) == 1

    def release_seat(self, tenant_id: str) -> None:
        fast.run(self._conn, sql.RELEASE_SEAT, {"b_tenant": tenant_id})

    def seats(self, tenant_id: str) -> tuple[int, int]:
        """Return (used, limit)."""
        row = self._conn.execute(sql.SEATS, {"b_tenant": tenant_id}).one()
        return int(row.seats_used), int(row.seat_limit)


class ApiTokenRepository:
    """One tenant's tokens of one kind (SCIM tokens, or events API keys); lookups by hash are
    still scoped by the tenant in the token."""

    def __init__(self, conn: Connection, tenant_id: str, kind: str = sql.SCIM) -> None:
        self._conn, self._tenant_id, self._kind = conn, tenant_id, kind
        self._sql = sql.TOKENS[kind]

    def add(self, values: dict[str, Any]) -> None:
        self._conn.execute(
            sql.INSERT_TOKEN, {**values, "tenant_id": self._tenant_id, "kind": self._kind}
        )

    def revoke_all(self, now: datetime) -> int:
        return self._conn.execute(
            self._sql.revoke, {"b_tenant": self._tenant_id, "b_now": now}
        ).rowcount

    def find_active(self, token_hash: str) -> ActiveToken | None:
        """Return the live token joined with its tenant's switches, or None."""
        rows = fast.fetch(
            self._conn, self._sql.active, {"b_tenant": self._tenant_id, "b_hash": token_hash}
        )
        return ActiveToken(*rows[0]) if rows else None

    def current(self) -> Any:
        """Return the tenant's live token row (prefix, created, last used), or None."""
        return self._conn.execute(self._sql.current, {"b_tenant": self._tenant_id}).first()

    def touch(self, token_id: str, now: datetime) -> None:
        fast.run(
            self._conn,
            self._sql.touch,
            {"b_tenant": self._tenant_id, "b_id": token_id, "b_now": now},
        )


class _ResourceRows(Generic[R]):
    """search and seek over one tenant's rows of one resource table (users or groups)."""

    _table: ClassVar[Any]
    _columns: ClassVar[tuple[Any, ...]]

    @staticmethod
    def _to_stored(row: Any) -> R:  # each subclass names its converter
        raise NotImplementedError

    def __init__(self, conn: Connection, tenant_id: str) -> None:
        self._conn, self._tenant_id = conn, tenant_id

    def search(
        self,
        where: ColumnElement[bool] | None,
        *,
        offset: int,
        limit: int,
        order: Sequence[ColumnElement[Any]] | None = None,
    ) -> tuple[int, list[R]]:
        """Return (total matches, one page; in id order, which is creation order, by default)."""
        return _search(
            self._conn,
            self._table,
            self._columns,
            self._tenant_id,
            where,
            offset,
            limit,
            self._to_stored,
            order,
        )

    def seek(
        self,
        where: ColumnElement[bool] | None,
        *,
        order: Sequence[ColumnElement[Any]],
        position: tuple[Any, str] | None,
        ascending: bool,
        limit: int,
        known_total: int | None = None,
    ) -> SeekPage:
        """A keyset page (RFC 9865 cursors); see `_seek`."""
        return _seek(
            self._conn,
            self._table,
            self._columns,
            self._tenant_id,
            where,
            order,
            position,
            ascending,
            limit,
            self._to_stored,
            known_total,
        )


class UserRepository(_ResourceRows[StoredUser]):
    """One tenant's users; every statement carries `tenant_id = :tenant`."""

    _table = sql.users
    _columns = sql.USER_COLUMNS
    _to_stored = staticmethod(to_stored_user)

    def get(self, user_id: str, *, for_update: bool = False) -> StoredUser | None:
        # FOR UPDATE (PostgreSQL) holds the row until commit so concurrent writers queue up;
        # SQLite's BEGIN IMMEDIATE already serialises writers and drops the clause.
        stmt = sql.USER_FOR_UPDATE if for_update else sql.USER
        rows = fast.fetch(self._conn, stmt, {"b_tenant": self._tenant_id, "b_id": user_id})
        return to_stored_user(rows[0]) if rows else None

    def find_holders(self, user_name_key: str, email_key: str) -> list[tuple[str, bool, str, str]]:
        """Return (id, active, user_name_key, email_key) of users holding either key."""
        rows = fast.fetch(
            self._conn,
            sql.USER_HOLDERS,
            {
                "b_tenant": self._tenant_id,
                "b_user_name_key": user_name_key,
                "b_email_key": email_key,
            },
        )
        return [(r[0], bool(r[1]), r[2], r[3]) for r in rows]

    def id_by_email(self, email: str) -> str | None:
        """The user whose identity email is this one, however it is spelled (its key)."""
        return self._conn.execute(
            sql.USER_ID_BY_EMAIL,
            {"b_tenant": self._tenant_id, "b_email_key": identity_key(email)},
        ).scalar()

    def email_holders(self, keys: Iterable[str], *, other_than: str | None) -> list[str]:
        """The keys among these that another user holds, primary or secondary, in key order."""
        wanted = sorted(set(keys))
        if not wanted:
            return []
        if len(wanted) <= _FEW_EMAILS:
            # One prebuilt statement per email costs less than compiling an IN list (~60 µs).
            params = {"b_tenant": self._tenant_id, "b_id": other_than or ""}
            return [
                key
                for key in wanted
                if fast.fetch(self._conn, sql.EMAIL_HOLDER, {**params, "b_key": key})
            ]
        rows = self._conn.execute(
            sql.EMAIL_HOLDERS,
            {"b_tenant": self._tenant_id, "b_keys": wanted, "b_id": other_than or ""},
        )
        return list(dict.fromkeys(row.value_key for row in rows))

    def add(self, values: dict[str, Any], emails: Iterable[str]) -> None:
        try:
            fast.run(self._conn, sql.INSERT_USER, {**values, "tenant_id": self._tenant_id})
        except IntegrityError as error:
            raise _uniqueness_error(error) from error
        self._add_emails(values["id"], set(emails))

    def change(
        self,
        user_id: str,
        values: dict[str, Any],
        emails: Iterable[str] | None,
        *,
        read_version: int,
    ) -> bool:
        """Write every column of USER_WRITE_COLUMNS if the user is still at `read_version`.

        `emails`, when given, replaces the email index. False: no such user at that version.
        """
        params = {"b_tenant": self._tenant_id, "b_id": user_id, "b_version": read_version}
        for name in sql.USER_WRITE_COLUMNS:
            params[f"v_{name}"] = values[name]
        try:
            changed = fast.run(self._conn, sql.UPDATE_USER, params)
        except IntegrityError as error:
            raise _uniqueness_error(error) from error
        if changed != 1:
            return False
        if emails is not None:
            self._replace_emails(user_id, set(emails))
        return True

    def _replace_emails(self, user_id: str, emails: set[str]) -> None:
        """Make the user's email rows these keys, touching only the ones that change.

        A row kept keeps its flag: a legacy duplicate stays one while the user still lists it.
        """
        scope = {"b_tenant": self._tenant_id, "b_id": user_id}
        current = {row[0] for row in fast.fetch(self._conn, sql.EMAIL_KEYS_OF_USER, scope)}
        gone = sorted(current - emails)
        if gone:
            self._conn.execute(sql.DELETE_EMAILS, {**scope, "b_keys": gone})
        self._add_emails(user_id, emails - current)

    def _add_emails(self, user_id: str, emails: set[str]) -> None:
        rows: list[Mapping[str, Any]] = [
            {"tenant_id": self._tenant_id, "user_id": user_id, "value_key": value}
            for value in sorted(emails)
        ]
        try:
            fast.run_many(self._conn, sql.INSERT_EMAILS, rows)
        except IntegrityError as error:
            # Another user's write took one of these emails after the service's check.
            raise ScimError.uniqueness("email address") from error

    def remove(self, user_id: str, *, read_version: int) -> bool:
        """Delete the user at `read_version` and (by cascade) their email and membership rows."""
        params = {"b_tenant": self._tenant_id, "b_id": user_id, "b_version": read_version}
        return fast.run(self._conn, sql.DELETE_USER, params) == 1

    def shared_emails(self) -> list[tuple[str, str, str, bool]]:
        """(email key, user id, userName, active) of every email more than one user holds."""
        rows = self._conn.execute(sql.SHARED_EMAILS, {"b_tenant": self._tenant_id})
        return [(r.value_key, r.id, r.user_name, bool(r.active)) for r in rows]

    def user_name_keys(self, batch_size: int = 5000) -> Iterator[list[tuple[str, str, str, bool]]]:
        """Yield (id, userName, user_name_key, active) of every user, a batch at a time."""
        after = ""
        while True:
            params = {"b_tenant": self._tenant_id, "b_after": after, "b_limit": batch_size}
            rows = fast.fetch(self._conn, sql.USER_NAME_KEYS, params)
            if not rows:
                return
            yield [(r[0], r[1], r[2], bool(r[3])) for r in rows]
            after = rows[-1][0]

    def holders_of_user_name_keys(self, keys: Iterable[str]) -> list[tuple[str, str, str, bool]]:
        """(id, userName, user_name_key, active) of the users holding these keys."""
        wanted = sorted(set(keys))
        if not wanted:
            return []
        rows = self._conn.execute(
            sql.USERS_BY_KEYS, {"b_tenant": self._tenant_id, "b_keys": wanted}
        )
        return [(r.id, r.user_name, r.user_name_key, bool(r.active)) for r in rows]

    def search_by_user_name(
        self, user_name_key: str, *, offset: int, limit: int
    ) -> tuple[int, list[StoredUser]]:
        """The `userName eq "…"` search (Okta's existence check) on a prebuilt statement."""
        if offset > 0 or limit == 0:
            where = sql.users.c.user_name_key == user_name_key
            return self.search(where, offset=offset, limit=limit)
        rows = fast.fetch(
            self._conn,
            sql.USERS_BY_USER_NAME_KEY,
            {"b_tenant": self._tenant_id, "b_key": user_name_key, "b_offset": 0, "b_limit": 1},
        )
        # userName is unique per tenant: the first page holds the one match, or none.
        return len(rows), [to_stored_user(row) for row in rows]

    def search_by_key(
        self, attribute: str, key: str, *, offset: int, limit: int
    ) -> tuple[int, list[StoredUser]] | None:
        """A lone `externalId eq` or `emails.value eq` on a prebuilt statement.

        None when the page cannot tell the total (a full page, or past the end): the caller
        then runs the general search, which counts.
        """
        if offset > 0 or limit == 0:
            return None
        stmt = sql.USERS_BY_EXTERNAL_ID if attribute == "externalId" else sql.USERS_BY_EMAIL_KEY
        rows = fast.fetch(
            self._conn,
            stmt,
            {"b_tenant": self._tenant_id, "b_key": key, "b_offset": 0, "b_limit": limit},
        )
        if len(rows) == limit:
            return None
        return len(rows), [to_stored_user(row) for row in rows]


def _search(
    conn: Connection,
    table: Any,
    columns: Sequence[Any],
    tenant_id: str,
    where: ColumnElement[bool] | None,
    offset: int,
    limit: int,
    convert: Any,
    order: Sequence[ColumnElement[Any]] | None = None,
) -> tuple[int, list[Any]]:
    """A filtered page of one tenant's rows (in id order unless told), and the total."""
    condition = table.c.tenant_id == tenant_id
    if where is not None:
        condition = and_(condition, where)
    page = select(*columns).where(condition).order_by(*(order or [table.c.id]))
    count = select(func.count()).select_from(table).where(condition)
    return _paged(conn, page, count, offset, limit, convert)


def _paged(
    conn: Connection, page: Any, count: Any, offset: int, limit: int, convert: Any
) -> tuple[int, list[Any]]:
    """Run a page query and, only when the page cannot tell the total, a count."""
    if limit == 0:
        return int(conn.execute(count).scalar_one()), []
    rows = conn.execute(page.offset(offset).limit(limit)).all()
    if len(rows) < limit and (rows or offset == 0):
        # A short page is the last one: the total is what came before plus what is here.
        return offset + len(rows), [convert(row) for row in rows]
    return int(conn.execute(count).scalar_one()), [convert(row) for row in rows]


class SeekPage(NamedTuple):
    """A keyset page: records in read order, each row's (sort value, id), and whether more lie
    beyond it; `total` counts every match (one COUNT, skipped when the first page is short)."""

    total: int
    items: list[Any]
    keys: list[tuple[Any, str]]
    has_more: bool


def _is_nullable(column: Any) -> bool:
    # Only plain NOT NULL columns are known never to be NULL; expressions over the JSON
    # document (displayName, name.givenName) and nullable columns (externalId) may be.
    return not (isinstance(column, Column) and not column.nullable)


def _seek(
    conn: Connection,
    table: Any,
    columns: Sequence[Any],
    tenant_id: str,
    where: ColumnElement[bool] | None,
    order: Sequence[ColumnElement[Any]],
    position: tuple[Any, str] | None,
    ascending: bool,
    limit: int,
    convert: Any,
    known_total: int | None = None,
) -> SeekPage:
    """Read `limit` rows after `position` (before it when not `ascending`), by seek, not OFFSET.

    The total is counted unless the caller knows it (`known_total`, carried in the cursor) or
    the page shows it (a short first page); COUNT is what costs at a million rows.

    `order` is filter_sql's ORDER BY (a sort column then id, or id alone); the rows are
    ordered by (sort value, id) with NULL as the smallest value on every database, so a page
    is "the rows whose (sort value, id) is past the position": an index range, whatever the
    depth, and rows added or removed elsewhere shift nothing.
    """
    id_column = table.c.id
    sort_column: Any = None
    if len(order) > 1:
        sort_column = order[0]
        while isinstance(sort_column, UnaryExpression):  # strip .asc() / .desc() / nulls
            sort_column = sort_column.element
    condition = table.c.tenant_id == tenant_id
    if where is not None:
        condition = and_(condition, where)
    count = select(func.count()).select_from(table).where(condition)
    if limit == 0:
        if known_total is not None:
            return SeekPage(known_total, [], [], False)
        return SeekPage(int(conn.execute(count).scalar_one()), [], [], False)
    seek = condition
    if sort_column is None:
        key_columns: list[Any] = [id_column]
        ordering = [id_column.asc() if ascending else id_column.desc()]
        if position is not None:
            past = id_column > position[1] if ascending else id_column < position[1]
            seek = and_(condition, past)
    else:
        key_columns = [sort_column, id_column]
        nullable = _is_nullable(sort_column)
        if ascending:
            first = sort_column.asc().nulls_first() if nullable else sort_column.asc()
            ordering = [first, id_column.asc()]
        else:
            first = sort_column.desc().nulls_last() if nullable else sort_column.desc()
            ordering = [first, id_column.desc()]
        if position is not None:
            seek = and_(condition, _past(sort_column, id_column, position, ascending, nullable))
    page = select(*columns, *key_columns).where(seek).order_by(*ordering).limit(limit + 1)
    rows = conn.execute(page).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    width = len(columns)
    if sort_column is None:
        keys = [(row[width], row[width]) for row in rows]
    else:
        keys = [(row[width], row[width + 1]) for row in rows]
    items = [convert(tuple(row[:width])) for row in rows]
    if known_total is not None:
        total = known_total
    elif position is None and not has_more:
        total = len(items)  # the whole result fits on the first page
    else:
        total = int(conn.execute(count).scalar_one())
    return SeekPage(total, items, keys, has_more)


def _past(
    sort_column: Any, id_column: Any, position: tuple[Any, str], ascending: bool, nullable: bool
) -> ColumnElement[bool]:
    """(sort value, id) strictly after `position` in the read direction; NULL sorts first."""
    key, last_id = position
    if key is None:
        if ascending:  # past a NULL: the later NULLs, then every non-NULL value
            return or_(and_(sort_column.is_(None), id_column > last_id), sort_column.is_not(None))
        return and_(sort_column.is_(None), id_column < last_id)
    bound = tuple_(literal(key, type_=sort_column.type), literal(last_id, type_=id_column.type))
    if ascending:
        return tuple_(sort_column, id_column) > bound
    before = tuple_(sort_column, id_column) < bound
    return or_(before, sort_column.is_(None)) if nullable else before


class ProvisioningLogRepository:
    """One tenant's provisioning log."""

    def __init__(self, conn: Connection, tenant_id: str) -> None:
        self._conn, self._tenant_id = conn, tenant_id

    def add_many(self, rows: Sequence[dict[str, Any]]) -> None:
        fast.run_many(
            self._conn, sql.INSERT_LOG, [{**row, "tenant_id": self._tenant_id} for row in rows]
        )

    def newest(self, *, failed_only: bool, limit: int) -> Sequence[Any]:
        log = sql.provisioning_log
        stmt = select(log).where(log.c.tenant_id == self._tenant_id)
        if failed_only:
            stmt = stmt.where(log.c.status >= 400)
        return self._conn.execute(stmt.order_by(log.c.id.desc()).limit(limit)).all()

    def prune(self, *, older_than: datetime, keep: int) -> int:
        """Delete entries older than the cutoff, and all but the newest `keep`."""
        scope = {"b_tenant": self._tenant_id}
        removed = self._conn.execute(sql.PRUNE_LOG_BY_AGE, {**scope, "b_cutoff": older_than})
        boundary = self._conn.execute(sql.LOG_BOUNDARY, {**scope, "b_offset": keep}).scalar()
        total = removed.rowcount
        if boundary is not None:
            total += self._conn.execute(
                sql.PRUNE_LOG_BY_COUNT, {**scope, "b_boundary": boundary}
            ).rowcount
        return total


class GroupRepository(_ResourceRows[StoredGroup]):
    """One tenant's groups and their membership rows.

    Membership statements are set-based: none of them reads a group's member list.
    """

    _table = sql.groups
    _columns = sql.GROUP_COLUMNS
    _to_stored = staticmethod(to_stored_group)

    def _scope(self, group_id: str, **more: Any) -> dict[str, Any]:
        return {"b_tenant": self._tenant_id, "b_id": group_id, **more}

    def get(self, group_id: str, *, for_update: bool = False) -> StoredGroup | None:
        # PostgreSQL: concurrent PATCHes of one group queue on its row instead of racing.
        stmt = sql.GROUP_FOR_UPDATE if for_update else sql.GROUP
        rows = fast.fetch(self._conn, stmt, self._scope(group_id))
        return to_stored_group(rows[0]) if rows else None

    def add(self, values: dict[str, Any]) -> None:
        try:
            self._conn.execute(sql.INSERT_GROUP, {**values, "tenant_id": self._tenant_id})
        except IntegrityError as error:
            raise ScimError.uniqueness("displayName") from error

    def change(self, group_id: str, values: dict[str, Any], *, read_version: int) -> bool:
        """Write the group's columns if it is still at `read_version`."""
        params = self._scope(group_id, b_version=read_version, **values)
        try:
            return self._conn.execute(sql.UPDATE_GROUP, params).rowcount == 1
        except IntegrityError as error:
            raise ScimError.uniqueness("displayName") from error

    def holder_of_name(self, display_name_key: str) -> str | None:
        return self._conn.execute(
            sql.GROUP_BY_NAME_KEY, {"b_tenant": self._tenant_id, "b_key": display_name_key}
        ).scalar()

    def remove(self, group_id: str, *, read_version: int) -> bool:
        params = self._scope(group_id, b_version=read_version)
        return self._conn.execute(sql.DELETE_GROUP, params).rowcount == 1

    def stage(self, user_ids: Sequence[str]) -> None:
        """Put a list of ids into this connection's scratch table, replacing what was there."""
        # IF NOT EXISTS each time: cheap, and a rolled-back CREATE leaves no stale flag behind.
        self._conn.exec_driver_sql(sql.CREATE_STAGE)
        self._conn.execute(sql.CLEAR_STAGE)
        chunk = 5000
        for start in range(0, len(user_ids), chunk):
            rows = [{"user_id": u} for u in user_ids[start : start + chunk]]
            self._conn.execute(sql.STAGE, rows)

    def unknown_staged(self, limit: int = 5) -> list[str]:
        """Staged ids that are no user of this tenant."""
        rows = self._conn.execute(
            sql.UNKNOWN_STAGED, {"b_tenant": self._tenant_id, "b_limit": limit}
        )
        return [row.user_id for row in rows]

    def groups_among(self, ids: Sequence[str]) -> list[str]:
        rows = self._conn.execute(sql.GROUPS_AMONG, {"b_tenant": self._tenant_id, "b_ids": ids})
        return [row.id for row in rows]

    def add_staged(
        self, group_id: str, *, source: str, now: datetime, skip_sources: Sequence[str] = ()
    ) -> int:
        """Insert the staged users who are not yet members, leaving out `skip_sources` users."""
        params = self._scope(
            group_id, b_source=source, b_now=now, b_skipped_sources=list(skip_sources)
        )
        return self._conn.execute(sql.ADD_STAGED, params).rowcount

    def remove_staged(self, group_id: str, *, source: str) -> int:
        return self._conn.execute(
            sql.REMOVE_STAGED, self._scope(group_id, b_source=source)
        ).rowcount

    def remove_unstaged(self, group_id: str, *, source: str) -> int:
        """Delete this source's memberships whose user is not staged (a full replace)."""
        return self._conn.execute(
            sql.REMOVE_UNSTAGED, self._scope(group_id, b_source=source)
        ).rowcount

    def remove_all(self, group_id: str, *, source: str) -> int:
        return self._conn.execute(sql.REMOVE_ALL, self._scope(group_id, b_source=source)).rowcount

    def set_member(self, group_id: str, user_id: str, *, source: str, now: datetime) -> bool:
        """Make one membership exist with this source (an admin's manual add); True if new."""
        params = self._scope(group_id, b_user=user_id, b_source=source)
        if self._conn.execute(sql.SET_MEMBER_SOURCE, params).rowcount:
            return False
        self._conn.execute(
            sql.INSERT_MEMBERSHIP,
            {
                "tenant_id": self._tenant_id,
                "group_id": group_id,
                "user_id": user_id,
                "source": source,
                "added_at": now,
            },
        )
        return True

    def remove_member(self, group_id: str, user_id: str) -> str | None:
        """End one membership; return who had made it (idp | manual), None if there was none."""
        params = self._scope(group_id, b_user=user_id)
        row = self._conn.execute(sql.REMOVE_MEMBER, params).first()
        return None if row is None else str(row.source)

    def member_batches(self, group_id: str, batch_size: int) -> Iterator[list[tuple[str, str]]]:
        """Yield (user id, userName) of the members in batches, in id order, never all at once."""
        # Options on the statement, not the connection: Connection.execution_options() changes
        # the connection itself, which outlives this request on the shelf.
        streamed = sql.MEMBERS.execution_options(stream_results=True, yield_per=batch_size)
        result = self._conn.execute(streamed, self._scope(group_id))
        for partition in result.partitions(batch_size):
            yield [(row[0], row[1]) for row in partition]

    def members_of_groups(self, group_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """Members of a page of groups, keyed by group id."""
        found: dict[str, list[tuple[str, str]]] = {g: [] for g in group_ids}
        rows = self._conn.execute(
            sql.MEMBERS_OF_GROUPS, {"b_tenant": self._tenant_id, "b_ids": list(group_ids)}
        )
        for row in rows:
            found[row.group_id].append((row.user_id, row.user_name))
        return found

    def groups_of_users(self, user_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """Each user's (group id, displayName) pairs, for the users' read-only `groups`."""
        found: dict[str, list[tuple[str, str]]] = {u: [] for u in user_ids}
        rows: Any
        params: dict[str, Any]
        if len(user_ids) == 1:
            params = {"b_tenant": self._tenant_id, "b_id": user_ids[0]}
            rows = fast.fetch(self._conn, sql.GROUPS_OF_USER, params)
        else:
            params = {"b_tenant": self._tenant_id, "b_ids": list(user_ids)}
            rows = self._conn.execute(sql.GROUPS_OF_USERS, params)
        for user_id, group_id, display_name in rows:
            found[user_id].append((group_id, display_name))
        return found
