"""DatabaseHealth: a heartbeat write every half second, and what to do when it gets no answer.

Readiness is a fact about the database, learned off the request path: a thread of its own
writes this process's row in `heartbeats` (and reads the schema's revision) every
BEAT_SECONDS on a connection of its own, each call bounded by short timeouts. /readyz then
answers from the last beat at once and never waits on the database itself.

A write, not a `SELECT 1`: a full disk or a read-only database (SQLite on a full file system,
a PostgreSQL standby after a failover) still answers reads, and only a write tells.

A beat that gets no answer at all within STALL_SECONDS means the database is frozen or cut off
(a stopped server process, a dead network), where the server's own statement timeout cannot
act. Then the database is *stalled*: requests that need it are refused with 503 at once instead
of piling up, and every call already waiting on it is interrupted, so its request answers 503
too. The first beat that gets through ends the stall, with no restart.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, delete, text
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from muster.db import availability
from muster.db.engine import BEGIN_KEY, open_drivers
from muster.db.tables import HeartbeatRow
from muster.db.unit_of_work import interrupt_driver

logger = logging.getLogger("muster.database")

BEAT_SECONDS = 0.5
# A beat unanswered this long means a stalled database. Well above a healthy beat (a few ms)
# and a busy machine's worst scheduling delay; well under the 2 s /readyz promises.
STALL_SECONDS = 1.0
WATCH_SECONDS = 0.2
# Rows of processes that stopped beating this long ago are removed (every PRUNE_EVERY beats).
FORGET_AFTER = timedelta(days=1)
PRUNE_EVERY = 7200
_VERSION = text("SELECT version_num FROM alembic_version")
_TABLE = cast(Table, HeartbeatRow.__table__)


@dataclass(frozen=True, slots=True)
class Health:
    """The database as the last beat found it: ready, or a fixed word saying why not."""

    is_ready: bool
    status: str  # "ready", "starting", "stalled", "unreachable", "read_only", "disk_full", ...
    detail: str


_READY = Health(True, "ready", "the database answers and takes writes")
_STARTING = Health(False, "starting", "no heartbeat has reached the database yet")
_STALLED = Health(
    False, "stalled", f"the database has not answered a heartbeat for over {STALL_SECONDS:g} s"
)
_PENDING = Health(False, "migrations pending", "the database schema is not at the newest revision")


_HEALTH_TEXT = {
    "unreachable": "the database cannot be reached",
    "interrupted": "the database stopped answering",
    "read_only": "the database does not take writes: it is read-only",
    "disk_full": "the database does not take writes: its disk is full",
    "io_error": "the database cannot read or write its disk",
    "statement_timeout": "the database did not answer a heartbeat in time: it is overloaded",
    "overloaded": "the database has no room for another connection or query",
    "pool_timeout": "no connection for the heartbeat",
}


def _upsert(dialect: str) -> Any:
    statement = (postgres_insert if dialect == "postgresql" else sqlite_insert)(_TABLE)
    return statement.on_conflict_do_update(
        index_elements=[_TABLE.c.instance_id], set_={"beat_at": statement.excluded.beat_at}
    )


class DatabaseHealth:
    """Beats on `beat_engine` (a connection of its own); interrupts `engine`'s calls on a stall."""

    def __init__(
        self, engine: Engine, beat_engine: Engine | None, *, head_revision: Callable[[], str | None]
    ) -> None:
        self._engine = engine
        self._beat_engine = beat_engine
        self._head_revision = head_revision
        self._head: str | None = None
        self._instance_id = str(uuid.uuid4())
        self._upsert = _upsert(engine.dialect.name)
        # No beat engine (an in-memory database): it lives and dies with this process.
        self._health = _STARTING if beat_engine is not None else _READY
        self._beat_started: float | None = None  # monotonic start of the beat in flight
        self._beat_conn: Connection | None = None
        self._stalled = False
        self._pool_is_stale = False  # pooled connections may be dead: replace them once ready
        self._beats = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # Every driver connection the engine has open, to interrupt them all on a stall.
        self._drivers = open_drivers(engine)

    @property
    def health(self) -> Health:
        """What /readyz says: the last beat's finding, or `stalled` while one hangs."""
        return _STALLED if self.is_stalled else self._health

    @property
    def is_stalled(self) -> bool:
        """True while the database answers nothing: requests needing it are refused at once."""
        if self._stalled:
            return True
        started = self._beat_started
        return started is not None and time.monotonic() - started > STALL_SECONDS

    def start(self) -> None:
        """Start beating (a daemon thread) and watching for a stall (another)."""
        if self._threads or self._beat_engine is None:
            return
        self._stop.clear()
        for target, name in ((self._beat_forever, "beat"), (self._watch_forever, "watch")):
            thread = threading.Thread(target=target, name=f"muster-db-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop both threads; a beat stuck on a frozen database is interrupted first."""
        self._stop.set()
        conn = self._beat_conn
        if conn is not None:
            _interrupt(conn)
        for thread in self._threads:
            thread.join(timeout=STALL_SECONDS + 1)
        self._threads = []
        self._close_beat_connection()
        if self._beat_engine is not None:
            self._beat_engine.dispose()

    def beat(self) -> Health:
        """One heartbeat now (the beat thread calls it; tests may too)."""
        self._beat_started = time.monotonic()
        try:
            found = self._write_beat()
        except Exception as error:
            reason = availability.reason_of(error)
            self._close_beat_connection()
            if reason == "lock_timeout":
                # SQLite's write lock is busy: the database answers, someone else is writing.
                found = self._health if self._health.status != "starting" else _READY
            elif reason is None and "alembic_version" in str(error):
                found = _PENDING  # an empty database: not even the first migration ran
            elif reason is None:
                logger.warning("database heartbeat failed: %s", error)
                found = Health(False, "error", f"the heartbeat failed: {type(error).__name__}")
            else:
                found = Health(
                    False, reason, _HEALTH_TEXT.get(reason, f"the heartbeat failed: {reason}")
                )
        finally:
            self._beat_started = None
        self._settle(found)
        return found

    def _write_beat(self) -> Health:
        if self._head is None:
            self._head = self._head_revision()  # fixed for this process: read the scripts once
        conn = self._beat_connection()
        conn.info[BEGIN_KEY] = "BEGIN IMMEDIATE"  # SQLite: take the write lock at once
        with conn.begin():
            if self._head is not None and conn.execute(_VERSION).scalar() != self._head:
                return _PENDING
            now = datetime.now(UTC).replace(tzinfo=None)
            conn.execute(self._upsert, {"instance_id": self._instance_id, "beat_at": now})
            self._beats += 1
            if self._beats % PRUNE_EVERY == 0:
                conn.execute(delete(_TABLE).where(_TABLE.c.beat_at < now - FORGET_AFTER))
        return _READY

    def _settle(self, found: Health) -> None:
        was, self._health = self._health, found
        if found.status in ("unreachable", "interrupted"):
            self._pool_is_stale = True  # its connections died with the server, or by our hand
        elif self._stalled:
            # Any answer, even a refusal, ends a stall: the database is there again.
            self._stalled = False
            logger.warning("the database answers again (%s)", found.status)
        if found.is_ready and self._pool_is_stale:
            self._pool_is_stale = False
            self._replace_pooled_connections()
        if was.is_ready and not found.is_ready:
            logger.error("database not ready: %s (%s)", found.status, found.detail)
        elif found.is_ready and not was.is_ready and was.status != "starting":
            logger.warning("database ready again after: %s", was.status)

    def _watch(self) -> None:
        if not self.is_stalled:
            return
        if not self._stalled:
            self._stalled = True
            self._pool_is_stale = True
            logger.error(
                "the database has not answered a heartbeat for %.1f s: refusing requests that "
                "need it and interrupting the calls waiting on it",
                STALL_SECONDS,
            )
            conn = self._beat_conn
            if conn is not None:
                _interrupt(conn)
        # Again on every tick while it lasts: a call that slipped past the refusal just before
        # the stall was declared is cut short too.
        for driver in self._drivers.all():
            # A connection closing under us has nothing waiting on it any more.
            with contextlib.suppress(Exception):
                interrupt_driver(driver)

    def _replace_pooled_connections(self) -> None:
        """Drop the pool's connections from before an outage; the next requests open new ones."""
        if self._engine.dialect.name != "sqlite":  # a SQLite connection survives an interrupt
            self._engine.dispose(close=False)

    def _beat_forever(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.beat()
            self._stop.wait(max(0.0, BEAT_SECONDS - (time.monotonic() - started)))

    def _watch_forever(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(WATCH_SECONDS):
            now = time.monotonic()
            # A watcher that was itself paused (a stopped process, a suspended VM) cannot tell
            # how long the beat really waited: judge again on the next tick.
            if now - last < 3 * WATCH_SECONDS:
                self._watch()
            last = now

    def _beat_connection(self) -> Connection:
        assert self._beat_engine is not None
        if self._beat_conn is None:
            self._beat_conn = self._beat_engine.connect()
        return self._beat_conn

    def _close_beat_connection(self) -> None:
        conn, self._beat_conn = self._beat_conn, None
        if conn is None:
            return
        try:
            conn.invalidate()
            conn.close()
        except Exception:  # a connection the server dropped cannot say goodbye
            pass


def _interrupt(conn: Connection) -> None:
    with contextlib.suppress(Exception):
        interrupt_driver(conn.connection.driver_connection)
