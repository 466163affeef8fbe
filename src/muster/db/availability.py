"""unavailable(error): which database failures mean "not now, retry" (503), and what to say.

A lock wait past its timeout, a statement the server cancelled, a connection refused or lost, a
full or read-only disk, an exhausted pool: none of these is the client's fault or a bug, and
none is permanent. Each becomes ScimError.unavailable (503 with Retry-After), never a 500. What
is left (a syntax error, a missing table) is a bug and stays a 500.
"""

from __future__ import annotations

from sqlalchemy import exc

from muster.errors import ScimError

# SQLite's primary result codes (https://sqlite.org/rescode.html), read from the exception
# Python 3.11's sqlite3 attaches (sqlite_errorcode); extended codes keep them in the low byte.
_SQLITE = {
    5: "lock_timeout",  # SQLITE_BUSY: the write lock was held past the busy timeout
    6: "lock_timeout",  # SQLITE_LOCKED
    8: "read_only",  # SQLITE_READONLY
    9: "interrupted",  # SQLITE_INTERRUPT: Muster cut a call short (a stalled database)
    10: "io_error",  # SQLITE_IOERR
    13: "disk_full",  # SQLITE_FULL
    14: "unreachable",  # SQLITE_CANTOPEN
}
# PostgreSQL SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html).
_POSTGRES = {
    "57014": "statement_timeout",  # query_canceled: statement_timeout, or Muster's cancel
    "55P03": "lock_timeout",  # lock_not_available: lock_timeout
    "40001": "conflict",  # serialization_failure
    "40P01": "conflict",  # deadlock_detected
    "25006": "read_only",  # read_only_sql_transaction: a standby after a failover
    "53100": "disk_full",
    "53200": "overloaded",  # out_of_memory
    "53300": "overloaded",  # too_many_connections
    "57P01": "unreachable",  # admin_shutdown
    "57P02": "unreachable",  # crash_shutdown
    "57P03": "unreachable",  # cannot_connect_now: starting up or in recovery
}
_CLASSES = ("08", "53", "57")  # connection exception, insufficient resources, operator intervention

_TEXT = {
    "lock_timeout": (
        "another request held a lock on this resource for too long; nothing was changed",
        2,
    ),
    "statement_timeout": ("the database did not answer in time; nothing was changed", 5),
    "conflict": ("a concurrent change to the same resource won; nothing was changed", 1),
    "read_only": ("the database is read-only at the moment; nothing was changed", 30),
    "disk_full": ("the database's disk is full; nothing was changed", 30),
    "io_error": ("the database could not read or write its disk", 30),
    "overloaded": ("the database has no room for this request now", 5),
    "interrupted": ("the database stopped answering; the request was cut short", 5),
    "unreachable": ("the database cannot be reached; the request may not have been applied", 5),
    "pool_timeout": ("every database connection of this server is busy", 2),
}


def unavailable(error: BaseException) -> ScimError | None:
    """The 503 a database failure calls for, or None when it is not a transient one."""
    reason = reason_of(error)
    if reason is None:
        return None
    return unavailable_for(reason)


def unavailable_for(reason: str) -> ScimError:
    """The 503 for a reason word (`lock_timeout`, `unreachable`, ...)."""
    text, retry_after = _TEXT.get(reason, _TEXT["unreachable"])
    return ScimError.unavailable(
        f"{text}; retry in {retry_after} s", retry_after=retry_after, reason=reason
    )


def reason_of(error: BaseException) -> str | None:
    """A fixed word naming a transient database failure, or None for anything else.

    Takes SQLAlchemy's exceptions and the drivers' own (a hook on the driver raises those).
    """
    if isinstance(error, exc.TimeoutError):  # the pool had no connection free in time
        return "pool_timeout"
    if isinstance(error, exc.DisconnectionError):
        return "unreachable"
    original: BaseException | None = error.orig if isinstance(error, exc.DBAPIError) else error
    code = getattr(original, "sqlite_errorcode", None)
    if isinstance(code, int):
        return _SQLITE.get(code & 0xFF)
    state = getattr(original, "sqlstate", None)
    if isinstance(state, str):
        return _POSTGRES.get(state) or ("unreachable" if state[:2] in _CLASSES else None)
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return "unreachable"
    if isinstance(error, exc.OperationalError) or any(
        cls.__name__ == "OperationalError" for cls in type(original).__mro__
    ):
        # psycopg raises OperationalError (or a subclass: ConnectionTimeout) with no SQLSTATE
        # when it cannot connect, or when the server went away mid-request (the socket
        # closed, Muster shut it, a timeout).
        return "unreachable"
    return None
