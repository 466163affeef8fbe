"""make_engine(url): one Engine per process, with SQLite's pragmas and JSON via orjson."""

from __future__ import annotations

import time
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

BEGIN_KEY = "muster_begin"


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def normalise_url(url: str) -> str:
    """Let operators write postgresql://; we drive PostgreSQL with psycopg 3."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(
    url: str,
    *,
    sqlite_busy_timeout_ms: int = 5000,
    pool_size: int = 5,
    max_overflow: int = 10,
    pool_timeout: float = 30,
    statement_timeout_ms: int = 0,
    ping_after_idle_seconds: float = 10.0,
) -> Engine:
    """Create the Engine; SQLite files get WAL, foreign keys and BEGIN IMMEDIATE for writes.

    The pool and statement-timeout arguments apply to PostgreSQL; SQLite has its busy timeout.
    """
    url = normalise_url(url)
    parsed = make_url(url)
    kwargs: dict[str, Any] = {
        "json_serializer": _json_dumps,
        "json_deserializer": orjson.loads,
    }
    if parsed.get_backend_name() == "sqlite":
        in_memory = parsed.database in (None, "", ":memory:")
        kwargs["connect_args"] = {
            "check_same_thread": False,
            "timeout": sqlite_busy_timeout_ms / 1000,
        }
        if in_memory:
            # One shared connection, or each checkout would see its own empty database.
            kwargs["poolclass"] = StaticPool
        else:
            # Connections to a file cost nothing to keep, and a pool that runs dry would block
            # the event loop itself (requests streaming a big group hold theirs while sending).
            kwargs["pool_size"] = 10
            kwargs["max_overflow"] = -1
        engine = create_engine(url, **kwargs)
        _install_sqlite_hooks(engine, in_memory=in_memory, busy_timeout_ms=sqlite_busy_timeout_ms)
        return engine
    kwargs["pool_size"] = pool_size
    kwargs["max_overflow"] = max_overflow
    kwargs["pool_timeout"] = pool_timeout
    if statement_timeout_ms > 0:
        # Set at connect, so it costs nothing per statement and holds for every session;
        # the server cancels a runaway query instead of letting it hold a connection forever.
        kwargs["connect_args"] = {"options": f"-c statement_timeout={int(statement_timeout_ms)}"}
    engine = create_engine(url, **kwargs)
    _ping_connections_that_sat_idle(engine, ping_after_idle_seconds)
    return engine


def _ping_connections_that_sat_idle(engine: Engine, after_seconds: float) -> None:
    """Check a pooled connection before lending it, but only if it sat idle a while.

    SQLAlchemy's pool_pre_ping pings on every checkout: one more round trip per SCIM request,
    13-16% of a lookup's CPU on PostgreSQL (py-spy). A connection the server or a failover
    dropped has almost always sat idle; one that dies while busy fails its request, and
    SQLAlchemy then replaces the whole pool (its disconnect handling), so the next one is fresh.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < after_seconds:
            return
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            dbapi_connection.rollback()  # lend it outside any transaction, as it came in
        except Exception as error:
            # The pool discards this connection and tries another (SQLAlchemy's contract).
            raise exc.DisconnectionError(str(error)) from error


def _unicode_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _install_sqlite_hooks(engine: Engine, *, in_memory: bool, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own implicit BEGIN is off so that we choose DEFERRED or IMMEDIATE below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit survives a process crash; only an OS crash may lose the
            # last transactions, never corrupt the file.
            cursor.execute("PRAGMA synchronous=NORMAL")
            # Read pages through a memory map rather than a read() syscall each. Capped at
            # 64 MiB: mapped pages count in the process's RSS, and reading a 100k-member group
            # touches most of a large file (the group benchmark saw +180 MB at 256 MiB).
            cursor.execute("PRAGMA mmap_size=67108864")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()
        # Case-insensitive filters fold all of Unicode, as PostgreSQL's lower() and Python do;
        # SQLite's own lower() folds ASCII only (names here may use any script).
        dbapi_connection.create_function("muster_lower", 1, _unicode_lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers take the write lock up front: a DEFERRED transaction that reads and then
        # writes can fail with SQLITE_BUSY without waiting when another process wrote meanwhile.
        mode = connection.info.pop(BEGIN_KEY, "BEGIN")
        driver = connection.connection.driver_connection
        if driver.in_transaction:
            return  # a request's transaction opened on the driver (driver_begin) is joined
        # Straight to the driver: this runs once per transaction, on every request.
        driver.execute(mode)


def driver_begin(conn: Connection, *, write: bool) -> None:
    """Open a transaction on the driver itself, without SQLAlchemy's bookkeeping.

    SQLite gets BEGIN or BEGIN IMMEDIATE; psycopg opens one implicitly at the first statement.
    A later Connection.execute() joins it (see _on_begin); commit or roll back with
    driver_end().
    """
    if conn.dialect.name == "sqlite":
        driver: Any = conn.connection.driver_connection
        driver.execute("BEGIN IMMEDIATE" if write else "BEGIN")


def driver_end(conn: Connection, *, commit: bool) -> None:
    """Commit or roll back whatever transaction is open, SQLAlchemy's or the driver's alone."""
    if conn.in_transaction():
        if commit:
            conn.commit()
        else:
            conn.rollback()
        return
    driver: Any = conn.connection.driver_connection
    if commit:
        driver.commit()
    else:
        driver.rollback()
