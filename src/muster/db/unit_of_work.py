"""UnitOfWork(engine, tenant_id): `with uow:` is one transaction, rolled back unless committed."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DataError

from muster.db.console_repositories import (
    AdminRepository,
    ConsoleQueries,
    IdentityProviderRepository,
)
from muster.db.engine import BEGIN_KEY, driver_begin, driver_end
from muster.db.outbox import EventRepository, EventStreamRepository
from muster.db.rate_limits import RateLimitRepository
from muster.db.repositories import (
    ApiTokenRepository,
    GroupRepository,
    ProvisioningLogRepository,
    TenantRepository,
    UserRepository,
)
from muster.db.sso_repositories import SsoRepository
from muster.db.statements import EVENTS as EVENTS_KEY
from muster.db.webhook_repositories import WebhookQueue, WebhookRepository
from muster.errors import ScimError


class ConnectionShelf:
    """Open connections kept between requests, so a request skips the pool's checkout.

    Requests run one at a time per event loop between awaits, yet several can be in flight
    (a streamed group), so this is a stack, not one connection. A connection that failed is
    dropped, never shelved.
    """

    def __init__(self, engine: Engine, size: int = 8) -> None:
        self._engine, self._size = engine, size
        self._idle: list[Connection] = []

    def take(self) -> Connection:
        idle = self._idle
        return idle.pop() if idle else self._engine.connect()

    def put_back(self, conn: Connection) -> None:
        try:
            if conn.in_transaction():
                conn.rollback()
        except Exception:
            conn.invalidate()
            conn.close()
            raise
        if conn.invalidated or conn.closed or len(self._idle) >= self._size:
            conn.close()
        else:
            self._idle.append(conn)

    def close_all(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class UnitOfWork:
    """One tenant's transaction. Repositories only ever see that tenant's rows.

    A request's unit of work (hold_connection=True) keeps one connection until close(), and
    may open the request's transaction up front with begin_request(): authentication and the
    service then run in that one transaction, each `with` joining it, the service's commit()
    ending it. Everywhere else each `with` is its own transaction.
    """

    __slots__ = (
        "_conn",
        "_engine",
        "_hold",
        "_joined",
        "_platform_level",
        "_request_open",
        "_shelf",
        "_sqlite",
        "_write",
        "tenant_id",
    )

    def __init__(
        self,
        engine: Engine,
        tenant_id: str | None = None,
        *,
        hold_connection: bool = False,
        shelf: ConnectionShelf | None = None,
    ) -> None:
        self._engine = engine
        self._shelf = shelf
        self.tenant_id = tenant_id
        self._platform_level = tenant_id is None
        self._hold = hold_connection
        self._conn: Connection | None = None  # open inside `with`, or held for a request
        self._joined = False
        self._request_open = False  # a request transaction opened on the driver is running
        self._write = True
        self._sqlite = engine.dialect.name == "sqlite"

    def reading(self) -> Self:
        """Make the next `with` a read-only transaction (no write lock on SQLite)."""
        self._write = False
        return self

    def _checkout(self) -> Connection:
        if self._conn is None:
            self._conn = self._shelf.take() if self._shelf else self._engine.connect()
        return self._conn

    def _begin(self, conn: Connection, *, write: bool) -> None:
        if self._sqlite and write:
            # Writers take SQLite's write lock at BEGIN (see engine.py).
            conn.info[BEGIN_KEY] = "BEGIN IMMEDIATE"
        conn.begin()

    def begin_request(self, *, write: bool) -> None:
        """Open the request's transaction now (a held unit of work only).

        It is opened on the driver, skipping SQLAlchemy's transaction bookkeeping (~10% of a
        request's CPU); SQLAlchemy statements run later simply join it.
        """
        assert self._hold, "begin_request() is for a request's held unit of work"
        conn = self._checkout()
        if not (self._request_open or conn.in_transaction()):
            driver_begin(conn, write=write)
            self._request_open = True

    def __enter__(self) -> Self:
        conn = self._checkout()
        self._joined = self._request_open or conn.in_transaction()
        if not self._joined:
            self._begin(conn, write=self._write)
        return self

    def bind_tenant(self, tenant_id: str) -> None:
        """Fix the tenant of a platform-level unit of work, once, after looking it up by slug."""
        if self.tenant_id not in (None, tenant_id):
            raise RuntimeError("a unit of work serves one tenant")
        self.tenant_id = tenant_id

    def _connection(self) -> Connection:
        conn = self._conn
        if conn is None or not (self._request_open or conn.in_transaction()):
            raise RuntimeError("repositories are only available inside `with uow:`")
        return conn

    def _scoped_tenant(self) -> str:
        if self.tenant_id is None:
            raise RuntimeError("this unit of work has no tenant yet; call bind_tenant()")
        return self.tenant_id

    # Repositories are built on first use: a request touches two or three of them.
    @property
    def tenants(self) -> TenantRepository:
        return TenantRepository(self._connection())

    @property
    def rate_limits(self) -> RateLimitRepository:
        return RateLimitRepository(self._connection())

    @property
    def tokens(self) -> ApiTokenRepository:
        return ApiTokenRepository(self._connection(), self._scoped_tenant())

    @property
    def events_keys(self) -> ApiTokenRepository:
        """The tenant's events API keys (never its SCIM token)."""
        return ApiTokenRepository(self._connection(), self._scoped_tenant(), EVENTS_KEY)

    @property
    def users(self) -> UserRepository:
        return UserRepository(self._connection(), self._scoped_tenant())

    @property
    def groups(self) -> GroupRepository:
        return GroupRepository(self._connection(), self._scoped_tenant())

    @property
    def events(self) -> EventRepository:
        return EventRepository(self._connection(), self._scoped_tenant())

    @property
    def event_streams(self) -> EventStreamRepository:
        """Every tenant's event counter (platform-level: retention)."""
        return EventStreamRepository(self._connection())

    @property
    def log(self) -> ProvisioningLogRepository:
        return ProvisioningLogRepository(self._connection(), self._scoped_tenant())

    # The console's repositories (web/console); never used on the SCIM path.
    @property
    def admins(self) -> AdminRepository:
        return AdminRepository(self._connection())

    @property
    def identity_providers(self) -> IdentityProviderRepository:
        return IdentityProviderRepository(self._connection(), self._scoped_tenant())

    @property
    def console(self) -> ConsoleQueries:
        return ConsoleQueries(self._connection(), self._scoped_tenant())

    # SAML sign-in's rows (web/sso); never used on the SCIM path.
    @property
    def sso(self) -> SsoRepository:
        return SsoRepository(self._connection(), self._scoped_tenant())

    # Webhooks: a tenant's endpoints and deliveries; the worker's queue spans tenants.
    @property
    def webhooks(self) -> WebhookRepository:
        return WebhookRepository(self._connection(), self._scoped_tenant())

    @property
    def webhook_queue(self) -> WebhookQueue:
        return WebhookQueue(self._connection())

    def commit(self) -> None:
        """Commit the open transaction (the request's, when this `with` joined it)."""
        driver_end(self._connection(), commit=True)
        self._request_open = False

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        joined, self._joined, self._write = self._joined, False, True
        if self._platform_level and not self._hold:
            self.tenant_id = None
        conn = self._conn
        if conn is not None:
            if joined and exc is not None and self._request_open:
                driver_end(conn, commit=False)
                self._request_open = False
            elif conn.in_transaction() and (not joined or exc is not None):
                conn.rollback()
            if not self._hold:
                self._conn = None
                conn.close()
        if isinstance(exc, DataError):
            # The last line of defence behind the protocol checks: a value the database
            # cannot store (too long, a character it refuses) is the client's error.
            raise ScimError.invalid_value(
                "a value is too long or contains characters that cannot be stored"
            ) from exc

    def close(self) -> None:
        """End any open transaction and give back a held connection (the end of a request)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._request_open:
            self._request_open = False
            try:
                driver_end(conn, commit=False)
            except Exception:
                conn.invalidate()
                conn.close()
                raise
        if self._shelf is not None:
            self._shelf.put_back(conn)
            return
        try:
            if conn.in_transaction():
                conn.rollback()
        finally:
            conn.close()
