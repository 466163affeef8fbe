"""UnitOfWork(engine, tenant_id): `with uow:` is one transaction, rolled back unless committed.

It has two things and few states. A connection: none, or held from the outermost `with` until
that `with` ends. A transaction: none, or open and owned by the `with` that began it. A `with`
that finds a transaction open joins it; the one that began it ends it, rolling back unless
commit() ran; an error in any of them rolls back at once. So a request that wraps its work in
one `with` (web/scim_api/pipeline.py) runs authentication and the service's own `with` blocks
in one transaction on one connection, and gives the connection back when it ends, whatever
happened in between.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
from types import TracebackType
from typing import Any, Self

import psycopg
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DataError, DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from muster.db import availability
from muster.db.console_repositories import (
    AdminRepository,
    ConsoleQueries,
    IdentityProviderRepository,
)
from muster.db.engine import driver_begin, driver_end
from muster.db.outbox import EventRepository, EventStreamRepository
from muster.db.rate_limits import RateLimitRepository
from muster.db.repositories import (
    ApiTokenRepository,
    GroupRepository,
    ProvisioningLogRepository,
    TenantRepository,
    UserRepository,
)
from muster.db.server_secrets import ServerSecretRepository
from muster.db.sso_repositories import SsoRepository
from muster.db.statements import EVENTS as EVENTS_KEY
from muster.db.webhook_repositories import WebhookQueue, WebhookRepository
from muster.errors import ScimError

# SQLAlchemy's, and the drivers' own (raised from a hook on the driver, see db/engine.py).
_DATABASE_ERRORS = (DBAPIError, PoolTimeout, DisconnectionError, sqlite3.Error, psycopg.Error)


class WriteTurn:
    """SQLite's one writer, taken in turn by this process's threads before BEGIN IMMEDIATE.

    SQLite's busy handler waits for the write lock by sleeping and polling (up to 100 ms a
    sleep): threads of one process contending through it would add latency and CPU to every
    write. Waiting here instead, each is woken the moment the writer before it ends. Other
    processes on the same file still meet in SQLite's own lock, as before.
    """

    def __init__(self, timeout_seconds: float) -> None:
        self._lock = threading.Lock()
        self._timeout = timeout_seconds

    def take(self) -> bool:
        """Wait for the turn at most the busy timeout; False when it did not come."""
        return self._lock.acquire(timeout=self._timeout)

    def give_back(self) -> None:
        self._lock.release()


class ConnectionShelf:
    """Open SQLite connections kept between units of work, so one skips the pool's checkout.

    Request threads take and put back concurrently: list.pop() and append() are atomic. A
    connection that failed is dropped, never shelved.
    """

    def __init__(self, engine: Engine, size: int = 8) -> None:
        self._engine, self._size = engine, size
        self._idle: list[Connection] = []

    def take(self) -> Connection:
        try:
            return self._idle.pop()
        except IndexError:
            return self._engine.connect()

    def put_back(self, conn: Connection) -> None:
        if conn.invalidated or conn.closed or len(self._idle) >= self._size:
            conn.close()
        else:
            self._idle.append(conn)

    def close_all(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def interrupt_driver(driver: Any) -> None:
    """Make a driver connection's running call return now, from any thread.

    SQLite's interrupt() ends the running statement with SQLITE_INTERRUPT (a no-op when none
    runs). A PostgreSQL call waits on its socket, and a frozen or unreachable server answers
    neither the call nor a cancel request: shutting the socket down wakes the waiting thread
    with an error, and the connection, now dead, is thrown away by the pool.
    """
    interrupt = getattr(driver, "interrupt", None)
    if interrupt is not None:
        interrupt()
        return
    try:
        descriptor = driver.pgconn.socket
    except Exception:  # already closed: nothing is waiting on it
        return
    duplicate = socket.socket(fileno=os.dup(descriptor))
    try:
        duplicate.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        duplicate.close()


class UnitOfWork:
    """One tenant's transaction. Repositories only ever see that tenant's rows."""

    __slots__ = (
        "_cancelled",
        "_conn",
        "_depth",
        "_engine",
        "_has_turn",
        "_owner",
        "_platform_level",
        "_shelf",
        "_turn",
        "_write",
        "tenant_id",
    )

    def __init__(
        self,
        engine: Engine,
        tenant_id: str | None = None,
        *,
        shelf: ConnectionShelf | None = None,
        write_turn: WriteTurn | None = None,
    ) -> None:
        self._engine = engine
        self._shelf = shelf
        self._turn = write_turn
        self._has_turn = False
        self.tenant_id = tenant_id
        self._platform_level = tenant_id is None
        self._conn: Connection | None = None  # held from the outermost `with` to its end
        self._depth = 0  # how many `with` blocks are open
        self._owner = 0  # the depth of the `with` that began the open transaction; 0: none
        self._write = True  # the next transaction begun takes SQLite's write lock
        self._cancelled = False

    def reading(self) -> Self:
        """Make the next transaction begun read-only (no write lock on SQLite)."""
        self._write = False
        return self

    def __enter__(self) -> Self:
        if self._cancelled:
            raise availability.unavailable_for("interrupted")
        write, self._write = self._write, True
        self._depth += 1
        try:
            if self._conn is None:
                self._conn = self._shelf.take() if self._shelf else self._engine.connect()
            if not self._owner:
                self._owner = self._depth
                if write and self._turn is not None:
                    if not self._turn.take():
                        raise availability.unavailable_for("lock_timeout")
                    self._has_turn = True
                # Opened on the driver, skipping SQLAlchemy's transaction bookkeeping (~10% of
                # a request's CPU); SQLAlchemy statements run later simply join it.
                driver_begin(self._conn, write=write)
        except BaseException as error:
            self.__exit__(type(error), error, error.__traceback__)
            raise  # __exit__ raised the ScimError a database error maps to, if any
        return self

    def bind_tenant(self, tenant_id: str) -> None:
        """Fix the tenant of a platform-level unit of work, once, after looking it up by slug."""
        if self.tenant_id not in (None, tenant_id):
            raise RuntimeError("a unit of work serves one tenant")
        self.tenant_id = tenant_id

    def commit(self) -> None:
        """Commit the open transaction (the one this `with` began or joined)."""
        conn = self._connection()
        if self._cancelled:  # the request was given up: its answer said nothing was written
            raise availability.unavailable_for("interrupted")
        driver_end(conn, commit=True)  # a commit that fails leaves the rollback to __exit__
        self._transaction_ended()

    def _transaction_ended(self) -> None:
        self._owner = 0
        if self._has_turn:
            self._has_turn = False
            assert self._turn is not None
            self._turn.give_back()

    def cancel(self) -> None:
        """Give this unit of work up from another thread: interrupt its call, never commit."""
        self._cancelled = True
        conn = self._conn
        if conn is not None:
            # It may be ending on its own thread at this very moment.
            with contextlib.suppress(Exception):
                interrupt_driver(conn.connection.driver_connection)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        depth = self._depth
        self._depth = depth - 1
        conn = self._conn
        try:
            if self._owner and (exc is not None or self._owner >= depth):
                # An error ends the whole transaction at once, joined or not; otherwise the
                # `with` that began it ends it: what was not committed is rolled back.
                try:
                    if conn is not None:
                        driver_end(conn, commit=False)
                finally:
                    self._transaction_ended()
        except _DATABASE_ERRORS as error:
            if exc is None:
                exc = error
            if conn is not None and not conn.invalidated:
                conn.invalidate()  # a connection that cannot roll back is not reused
        finally:
            if (
                isinstance(exc, DBAPIError)
                and exc.connection_invalidated
                and conn is not None
                and not conn.invalidated
            ):
                conn.invalidate()  # it died under this transaction: never lend it again
            if depth <= 1:
                self._depth = 0
                self._release()
        if isinstance(exc, DataError):
            # The last line of defence behind the protocol checks: a value the database
            # cannot store (too long, a character it refuses) is the client's error.
            raise ScimError.invalid_value(
                "a value is too long or contains characters that cannot be stored"
            ) from exc
        if exc is not None and isinstance(exc, _DATABASE_ERRORS):
            refused = availability.unavailable(exc)
            if refused is not None:
                raise refused from exc

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        self._write = True
        if self._platform_level:
            self.tenant_id = None
        if conn is None:
            return
        if self._cancelled and not conn.invalidated:
            conn.invalidate()  # it may still be mid-call on a frozen server
        elif conn.get_transaction() is not None and not conn.invalidated:
            # SQLAlchemy's bookkeeping of a transaction the driver already ended (a failed
            # commit): cleared, so the next unit of work starts clean.
            try:
                conn.rollback()
            except _DATABASE_ERRORS:
                conn.invalidate()
        if self._shelf is not None:
            self._shelf.put_back(conn)
        else:
            conn.close()

    def _connection(self) -> Connection:
        conn = self._conn
        if conn is None or not self._owner:
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
    def server_secrets(self) -> ServerSecretRepository:
        """Secrets shared by every process of the deployment (platform-level)."""
        return ServerSecretRepository(self._connection())

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
