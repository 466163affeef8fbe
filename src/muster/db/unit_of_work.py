"""UnitOfWork(engine, tenant_id): `with uow:` is one transaction, rolled back unless committed."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine

from muster.db.engine import BEGIN_KEY
from muster.db.repositories import (
    ApiTokenRepository,
    GroupRepository,
    ProvisioningLogRepository,
    TenantRepository,
    UserRepository,
)


class UnitOfWork:
    """One tenant's transaction. Repositories only ever see that tenant's rows."""

    users: UserRepository
    groups: GroupRepository
    tokens: ApiTokenRepository
    log: ProvisioningLogRepository
    tenants: TenantRepository

    def __init__(self, engine: Engine, tenant_id: str | None = None) -> None:
        self._engine = engine
        self.tenant_id = tenant_id
        self._platform_level = tenant_id is None
        self._conn: Connection | None = None
        self._write = True
        self._sqlite = engine.dialect.name == "sqlite"

    def reading(self) -> Self:
        """Make the next `with` a read-only transaction (no write lock on SQLite)."""
        self._write = False
        return self

    def __enter__(self) -> Self:
        conn = self._engine.connect()
        if self._sqlite and self._write:
            conn.info[BEGIN_KEY] = "BEGIN IMMEDIATE"
        conn.begin()
        self._conn = conn
        self.tenants = TenantRepository(conn)
        self._scope_repositories(self.tenant_id or "")
        return self

    def bind_tenant(self, tenant_id: str) -> None:
        """Fix the tenant of a platform-level unit of work, once, after looking it up by slug."""
        assert self._conn is not None, "bind_tenant() outside `with uow:`"
        if self.tenant_id not in (None, tenant_id):
            raise RuntimeError("a unit of work serves one tenant")
        self.tenant_id = tenant_id
        self._scope_repositories(tenant_id)

    def _scope_repositories(self, tenant_id: str) -> None:
        conn = self._conn
        assert conn is not None
        self.tokens = ApiTokenRepository(conn, tenant_id)
        self.users = UserRepository(conn, tenant_id)
        self.groups = GroupRepository(conn, tenant_id)
        self.log = ProvisioningLogRepository(conn, tenant_id)

    def commit(self) -> None:
        assert self._conn is not None, "commit() outside `with uow:`"
        self._conn.commit()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn, self._write = self._conn, None, True
        if self._platform_level:
            self.tenant_id = None
        if conn is not None:
            try:
                if conn.in_transaction():
                    conn.rollback()
            finally:
                conn.close()
