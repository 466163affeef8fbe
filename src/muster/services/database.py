"""Database: the engine, migrations, units of work and health, for the CLI and the app's wiring.

web/ and cli.py reach the database only through this module and the units of work it hands
out; an Engine passes through it only as an opaque handle (tests build one per database).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from muster.config import Settings
from muster.db import schema
from muster.db.engine import make_engine
from muster.db.health import DatabaseHealth, Health
from muster.db.pool_usage import watch_pool
from muster.db.unit_of_work import ConnectionShelf, UnitOfWork, WriteTurn

__all__ = ["Database", "Health", "UnitOfWork"]

# Besides its request threads, a process uses one more pooled connection for its background
# writes (the provisioning log, rate-limit counts, token use) and one of its own for the
# heartbeat, so neither ever waits behind requests.
BACKGROUND_CONNECTIONS = 1
# The heartbeat's own bounds: a healthy database answers it in milliseconds, and an answer
# that takes longer than the stall threshold (db/health.py) would look like no answer at all.
HEARTBEAT_STATEMENT_TIMEOUT_MS = 500
HEARTBEAT_LOCK_TIMEOUT_MS = 250
HEARTBEAT_SQLITE_BUSY_TIMEOUT_MS = 250
HEARTBEAT_CONNECT_TIMEOUT_SECONDS = 2


class Database:
    """One process's connection to Muster's database."""

    def __init__(self, settings: Settings, *, engine: Engine | None = None) -> None:
        self._owns_engine = engine is None
        self.settings = settings
        self.engine = engine or make_engine(
            settings.database_url,
            sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow + BACKGROUND_CONNECTIONS,
            pool_timeout=settings.db_pool_timeout,
            statement_timeout_ms=settings.db_statement_timeout_ms,
            lock_timeout_ms=settings.db_lock_timeout_ms,
            connect_timeout_seconds=settings.db_connect_timeout_seconds,
        )
        is_sqlite = self.engine.dialect.name == "sqlite"
        self.is_in_memory = is_sqlite and self.engine.url.database in (None, "", ":memory:")
        # SQLite only: a PostgreSQL connection idle on the shelf could have been dropped by the
        # server, and the pool's idle ping is what catches that.
        self._shelf = (
            ConnectionShelf(self.engine, size=settings.db_pool_size)
            if is_sqlite and not self.is_in_memory
            else None
        )
        # SQLite has one writer: this process's threads take turns before asking SQLite.
        self._write_turn = WriteTurn(settings.sqlite_busy_timeout_ms / 1000) if is_sqlite else None
        self.health = DatabaseHealth(
            self.engine, self._heartbeat_engine(), head_revision=schema.head_revision
        )

    @property
    def request_threads(self) -> int:
        """How many requests may use the database at once: one thread and connection each."""
        if self.is_in_memory:
            return 1  # one shared connection: its users must take turns
        return self.settings.db_pool_size + self.settings.db_max_overflow

    def uow(self, tenant_id: str | None = None) -> UnitOfWork:
        """A unit of work for one tenant, or a platform-level one (tenants, tokens by slug)."""
        return UnitOfWork(self.engine, tenant_id, shelf=self._shelf, write_turn=self._write_turn)

    def upgrade(self) -> None:
        """Apply every pending migration."""
        schema.upgrade(self.engine)

    def current_revision(self) -> str | None:
        return schema.current_revision(self.engine)

    def is_current(self) -> bool:
        """Tell whether the schema is at the newest migration."""
        return schema.current_revision(self.engine) == schema.head_revision()

    def _heartbeat_engine(self) -> Engine | None:
        if self.is_in_memory:
            return None  # nothing to watch: the database lives and dies with this process
        return make_engine(
            self.engine.url.render_as_string(hide_password=False),
            sqlite_busy_timeout_ms=HEARTBEAT_SQLITE_BUSY_TIMEOUT_MS,
            pool_size=1,
            max_overflow=0,
            pool_timeout=1,
            statement_timeout_ms=HEARTBEAT_STATEMENT_TIMEOUT_MS,
            lock_timeout_ms=HEARTBEAT_LOCK_TIMEOUT_MS,
            connect_timeout_seconds=HEARTBEAT_CONNECT_TIMEOUT_SECONDS,
        )

    def watch_pool(self, on_change: Callable[[int], None]) -> int | None:
        """Report the connections in use as they change; return the pool's size (or None)."""
        if not self._owns_engine:
            # An engine handed in (tests share one across many apps) would pile up listeners.
            return None
        return watch_pool(self.engine, on_change)

    def close_idle_connections(self) -> None:
        """Stop the heartbeat and close the connections kept between requests (at shutdown)."""
        self.health.stop()
        if self._shelf is not None:
            self._shelf.close_all()

    def dispose(self) -> None:
        self.close_idle_connections()
        self.engine.dispose()
