"""UnitOfWork(engine, tenant_id): `with uow:` is one transaction, rolled back unless committed."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DataError

from muster.db.engine import BEGIN_KEY
from muster.db.repositories import (
    ApiTokenRepository,
    GroupRepository,
    ProvisioningLogRepository,
    TenantRepository,
    UserRepository,
)
from muster.errors import ScimError

_NOT_YET: Any = object()


class UnitOfWork:
    """One tenant's transaction. Repositories only ever see that tenant's rows."""

    __slots__ = (
        "_conn",
        "_engine",
        "_held",
        "_platform_level",
        "_sqlite",
        "_write",
        "tenant_id",
    )

    def __init__(
        self, engine: Engine, tenant_id: str | None = None, *, hold_connection: bool = False
    ) -> None:
        self._engine = engine
        self.tenant_id = tenant_id
        self._platform_level = tenant_id is None
        self._conn: Connection | None = None
        self._write = True
        self._sqlite = engine.dialect.name == "sqlite"
        # A request's unit of work keeps one pooled connection for all its transactions
        # (authentication, the operation, streaming a group) until close().
        self._held: Connection | None = None if not hold_connection else _NOT_YET

    def reading(self) -> Self:
        """Make the next `with` a read-only transaction (no write lock on SQLite)."""
        self._write = False
        return self

    def __enter__(self) -> Self:
        if self._held is None:
            conn = self._engine.connect()
        else:
            if self._held is _NOT_YET:
                self._held = self._engine.connect()
            conn = self._held
        if self._sqlite and self._write:
            conn.info[BEGIN_KEY] = "BEGIN IMMEDIATE"
        conn.begin()
        self._conn = conn
        return self

    def bind_tenant(self, tenant_id: str) -> None:
        """Fix the tenant of a platform-level unit of work, once, after looking it up by slug."""
        if self.tenant_id not in (None, tenant_id):
            raise RuntimeError("a unit of work serves one tenant")
        self.tenant_id = tenant_id

    def _connection(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("repositories are only available inside `with uow:`")
        return self._conn

    def _scoped_tenant(self) -> str:
        if self.tenant_id is None:
            raise RuntimeError("this unit of work has no tenant yet; call bind_tenant()")
        return self.tenant_id

    # Repositories are built on first use: a request touches two or three of them.
    @property
    def tenants(self) -> TenantRepository:
        return TenantRepository(self._connection())

    @property
    def tokens(self) -> ApiTokenRepository:
        return ApiTokenRepository(self._connection(), self._scoped_tenant())

    @property
    def users(self) -> UserRepository:
        return UserRepository(self._connection(), self._scoped_tenant())

    @property
    def groups(self) -> GroupRepository:
        return GroupRepository(self._connection(), self._scoped_tenant())

    @property
    def log(self) -> ProvisioningLogRepository:
        return ProvisioningLogRepository(self._connection(), self._scoped_tenant())

    def commit(self) -> None:
        self._connection().commit()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn, self._write = self._conn, None, True
        self._end(conn)
        if isinstance(exc, DataError):
            # The last line of defence behind the protocol checks: a value the database
            # cannot store (too long, a character it refuses) is the client's error.
            raise ScimError.invalid_value(
                "a value is too long or contains characters that cannot be stored"
            ) from exc

    def _end(self, conn: Connection | None) -> None:
        if self._platform_level:
            self.tenant_id = None
        if conn is not None:
            try:
                if conn.in_transaction():
                    conn.rollback()
            finally:
                if self._held is None:
                    conn.close()

    def close(self) -> None:
        """Give back a held connection (the end of a request)."""
        held, self._held = self._held, None
        if held is not None and held is not _NOT_YET:
            held.close()
