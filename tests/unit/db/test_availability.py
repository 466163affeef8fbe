"""availability: which database failures are a 503 with Retry-After, and which stay bugs."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from psycopg import errors as pg
from sqlalchemy import exc

from muster.db.availability import reason_of, unavailable


def _wrapped(error: Exception) -> exc.DBAPIError:
    wrapped = exc.DBAPIError.instance("SELECT 1", None, error, type(error).__mro__[1])
    assert isinstance(wrapped, exc.DBAPIError)
    return wrapped


def _sqlite(code: int) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("boom")
    error.sqlite_errorcode = code
    return error


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (_sqlite(5), "lock_timeout"),  # SQLITE_BUSY
        (_sqlite(8), "read_only"),
        (_sqlite(13), "disk_full"),
        (_sqlite(9), "interrupted"),
        (_sqlite(10 | (3 << 8)), "io_error"),  # an extended SQLITE_IOERR code
        (pg.LockNotAvailable("lock timeout"), "lock_timeout"),
        (pg.QueryCanceled("statement timeout"), "statement_timeout"),
        (pg.ReadOnlySqlTransaction("read only"), "read_only"),
        (pg.AdminShutdown("terminating"), "unreachable"),
        (pg.ConnectionTimeout("connection timeout expired"), "unreachable"),
        (psycopg.OperationalError("server closed the connection"), "unreachable"),
        (pg.SerializationFailure("could not serialize"), "conflict"),
    ],
)
def test_transient_failures_are_named(error: Exception, reason: str) -> None:
    assert reason_of(error) == reason  # the driver's own exception, raised from a hook
    refused = unavailable(_wrapped(error))  # and SQLAlchemy's
    assert refused is not None
    assert (refused.status, refused.reason) == (503, reason)
    assert refused.retry_after is not None and refused.retry_after >= 1
    assert refused.detail.endswith(f"retry in {refused.retry_after} s")


def test_an_exhausted_pool_is_a_503() -> None:
    assert reason_of(exc.TimeoutError("QueuePool limit")) == "pool_timeout"


@pytest.mark.parametrize(
    "error",
    [
        _sqlite(1),  # SQLITE_ERROR: "no such table", a syntax error: a bug
        pg.UndefinedTable("no such table"),
        pg.SyntaxError("syntax error"),
        ValueError("not a database error"),
    ],
)
def test_bugs_stay_bugs(error: Exception) -> None:
    assert reason_of(error) is None
