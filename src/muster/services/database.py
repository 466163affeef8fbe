"""Database: the engine, migrations and units of work, for the CLI and the app's wiring.

web/ and cli.py reach the database only through this module and the units of work it hands
out; an Engine passes through it only as an opaque handle (tests build one per database).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from muster.config import Settings
from muster.db import schema
from muster.db.engine import make_engine
from muster.db.pool_usage import watch_pool
from muster.db.unit_of_work import ConnectionShelf, UnitOfWork

__all__ = ["Database", "UnitOfWork"]


class Database:
    """One process's connection to Muster's database."""

    def __init__(self, settings: Settings, *, engine: Engine | None = None) -> None:
        self._owns_engine = engine is None
        self.engine = engine or make_engine(
            settings.database_url,
            sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            statement_timeout_ms=settings.db_statement_timeout_ms,
        )
        # Fewer than the pool's 5 connections, leaving room for log writes and CLI-style units.
        # SQLite only: a PostgreSQL connection idle on the shelf could have been dropped by the
        # server, and the pool's idle ping is what catches that.
        self._head: str | None = None
        self._shelf = (
            ConnectionShelf(self.engine, size=3) if self.engine.dialect.name == "sqlite" else None
        )

    def uow(self, tenant_id: str | None = None) -> UnitOfWork:
        """A unit of work for one tenant, or a platform-level one (tenants, tokens by slug)."""
        return UnitOfWork(self.engine, tenant_id)

    def request_uow(self, tenant_id: str | None) -> UnitOfWork:
        """A unit of work that keeps its connection until close(): one per HTTP request."""
        return UnitOfWork(self.engine, tenant_id, hold_connection=True, shelf=self._shelf)

    def upgrade(self) -> None:
        """Apply every pending migration."""
        schema.upgrade(self.engine)

    def current_revision(self) -> str | None:
        return schema.current_revision(self.engine)

    def is_current(self) -> bool:
        """Tell whether the schema is at the newest migration."""
        # The newest migration is fixed for this process: read the scripts once, not per probe.
        if self._head is None:
            self._head = schema.head_revision()
        return schema.current_revision(self.engine) == self._head

    def watch_pool(self, on_change: Callable[[int], None]) -> int | None:
        """Report the connections in use as they change; return the pool's size (or None)."""
        if not self._owns_engine:
            # An engine handed in (tests share one across many apps) would pile up listeners.
            return None
        return watch_pool(self.engine, on_change)

    def close_idle_connections(self) -> None:
        """Close the connections kept between requests (at shutdown)."""
        if self._shelf is not None:
            self._shelf.close_all()

    def dispose(self) -> None:
        self.close_idle_connections()
        self.engine.dispose()
