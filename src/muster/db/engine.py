"""make_engine(url): one Engine per process, with SQLite's pragmas and JSON via orjson."""

from __future__ import annotations

import time
import weakref
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


# A PostgreSQL session left idle inside a transaction this long is ended by the server: the
# backstop for a connection a crashed or frozen client would otherwise leave holding locks.
IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000


def make_engine(
    url: str,
    *,
    sqlite_busy_timeout_ms: int = 5000,
    pool_size: int = 5,
    max_overflow: int = 10,
    pool_timeout: float = 30,
    statement_timeout_ms: int = 0,
    lock_timeout_ms: int = 0,
    connect_timeout_seconds: int = 0,
    ping_after_idle_seconds: float = 10.0,
) -> Engine:
    """Create the Engine; SQLite files get WAL, foreign keys and BEGIN IMMEDIATE for writes.

    The pool and timeout arguments apply to PostgreSQL (0: none); SQLite has its busy timeout,
    and its pool holds `pool_size` connections and opens more when asked.
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
            # Connections to a file cost nothing to keep; the threads that use them are what
            # bounds how many are open (web/blocking.py), so the pool never makes one wait.
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = -1
        engine = create_engine(url, **kwargs)
        _install_sqlite_hooks(engine, in_memory=in_memory, busy_timeout_ms=sqlite_busy_timeout_ms)
        open_drivers(engine)
        return engine
    kwargs["pool_size"] = pool_size
    kwargs["max_overflow"] = max_overflow
    kwargs["pool_timeout"] = pool_timeout
    kwargs["connect_args"] = _postgres_connect_args(
        statement_timeout_ms, lock_timeout_ms, connect_timeout_seconds
    )
    engine = create_engine(url, **kwargs)
    _ping_connections_that_sat_idle(engine, ping_after_idle_seconds)
    open_drivers(engine)
    return engine


class OpenDrivers:
    """The driver connections an engine has open, from any thread, so they can be interrupted.

    Kept by the pool's own connect and close events: no cost per request. (sqlite3 connections
    take no weak references, so this is a dict keyed by identity.)
    """

    def __init__(self) -> None:
        self._drivers: dict[int, Any] = {}

    def add(self, driver: Any, _record: Any = None) -> None:
        self._drivers[id(driver)] = driver

    def discard(self, driver: Any, _record: Any = None) -> None:
        self._drivers.pop(id(driver), None)

    def all(self) -> list[Any]:
        return list(self._drivers.values())


_open_drivers: weakref.WeakKeyDictionary[Engine, OpenDrivers] = weakref.WeakKeyDictionary()


def open_drivers(engine: Engine) -> OpenDrivers:
    """The driver connections `engine` has open now (tracked from make_engine on)."""
    drivers = _open_drivers.get(engine)
    if drivers is None:
        drivers = _open_drivers[engine] = OpenDrivers()
        event.listen(engine, "connect", drivers.add)
        event.listen(engine, "close", drivers.discard)
        event.listen(engine, "close_detached", drivers.discard)
    return drivers


def _postgres_connect_args(
    statement_timeout_ms: int, lock_timeout_ms: int, connect_timeout_seconds: int
) -> dict[str, Any]:
    """Every wait of a PostgreSQL session, bounded (0 leaves a bound at the server's default).

    Set at connect, so they cost nothing per statement and hold for every session: the server
    cancels a runaway query or a lock wait instead of letting it hold a connection. The TCP
    options find a server that vanished without a word (a failover, a cut network), which
    would otherwise leave a call waiting for the kernel's two hours of keepalive.
    """
    options = [f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT_MS}"]
    if statement_timeout_ms > 0:
        options.append(f"-c statement_timeout={int(statement_timeout_ms)}")
    if lock_timeout_ms > 0:
        options.append(f"-c lock_timeout={int(lock_timeout_ms)}")
    args: dict[str, Any] = {
        "options": " ".join(options),
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }
    if connect_timeout_seconds > 0:
        args["connect_timeout"] = max(2, int(connect_timeout_seconds))  # libpq's least is 2
        # Unacknowledged data this long means the peer is gone (libpq: milliseconds).
        args["tcp_user_timeout"] = max(2, int(connect_timeout_seconds)) * 1000 + max(
            0, int(statement_timeout_ms)
        )
    return args


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
    driver_end(). Driver errors come out as SQLAlchemy's, as from Connection.execute().
    """
    if conn.dialect.name == "sqlite":
        driver: Any = conn.connection.driver_connection
        statement = "BEGIN IMMEDIATE" if write else "BEGIN"
        try:
            driver.execute(statement)
        except conn.dialect.loaded_dbapi.Error as error:
            raise _wrapped(conn, statement, error) from error


def driver_end(conn: Connection, *, commit: bool) -> None:
    """Commit or roll back whatever transaction is open, SQLAlchemy's or the driver's alone."""
    # get_transaction(), not in_transaction(): a transaction whose commit failed is inactive
    # yet still SQLAlchemy's, and only its rollback() clears it.
    if conn.get_transaction() is not None:
        if commit:
            conn.commit()
        else:
            conn.rollback()
        return
    driver: Any = conn.connection.driver_connection
    try:
        if commit:
            driver.commit()
        else:
            driver.rollback()
    except conn.dialect.loaded_dbapi.Error as error:
        raise _wrapped(conn, "COMMIT" if commit else "ROLLBACK", error) from error


def _wrapped(conn: Connection, statement: str, error: Any) -> exc.StatementError:
    dialect = conn.dialect
    is_disconnect = dialect.is_disconnect(error, conn.connection.driver_connection, None)
    wrapped: exc.StatementError = exc.DBAPIError.instance(
        statement,
        None,
        error,
        dialect.loaded_dbapi.Error,
        connection_invalidated=is_disconnect,
        dialect=dialect,
    )
    return wrapped
