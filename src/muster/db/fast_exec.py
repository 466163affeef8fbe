"""fetch / run: a prebuilt statement executed straight on the driver connection.

SQLAlchemy spends ~17 µs per execution on bookkeeping we do not use on the hot path (events,
cache lookups, result metadata). Here each prebuilt statement is compiled once per dialect,
and executed with SQLAlchemy's own bind and result processors, so values convert exactly as
they would through Connection.execute(); it runs inside the same transaction. Statements with
expanding (IN-list) parameters are not supported; those go through SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Prepared:
    sql: str
    order: tuple[str, ...] | None  # positional dialects (SQLite): parameter names in order
    defaults: dict[str, Any]  # literals SQLAlchemy bound itself, e.g. the 1 of `seats + 1`
    bind: tuple[tuple[str, Processor], ...]
    result: tuple[Processor | None, ...]


_prepared: dict[tuple[int, str], _Prepared] = {}


def _prepare(statement: Any, dialect: Dialect) -> _Prepared:
    compiled = statement.compile(dialect=dialect)
    binds = {name: bind for bind, name in compiled.bind_names.items()}
    if any(bind.expanding for bind in binds.values()):
        raise ValueError("fast_exec cannot run statements with expanding parameters")
    defaults = {name: bind.effective_value for name, bind in binds.items() if not bind.required}
    processors = []
    for name, bind in binds.items():
        processor = bind.type._cached_bind_processor(dialect)
        if processor is not None:
            processors.append((name, processor))
    columns = getattr(statement, "selected_columns", None)
    result = tuple(
        column.type._cached_result_processor(dialect, None) for column in (columns or ())
    )
    order = tuple(compiled.positiontup) if compiled.positional else None
    return _Prepared(str(compiled), order, defaults, tuple(processors), result)


def _prepared_for(conn: Connection, statement: Executable) -> _Prepared:
    key = (id(statement), conn.dialect.name)
    prepared = _prepared.get(key)
    if prepared is None:
        prepared = _prepared[key] = _prepare(statement, conn.dialect)
    return prepared


def _arguments(prepared: _Prepared, params: Mapping[str, Any]) -> Any:
    """The driver's arguments: processed values, as a tuple (SQLite) or a dict (psycopg)."""
    values = {**prepared.defaults, **params} if prepared.defaults else dict(params)
    for name, processor in prepared.bind:
        values[name] = processor(values[name])
    return tuple(values[n] for n in prepared.order) if prepared.order is not None else values


def _call(conn: Connection, prepared: _Prepared, arguments: Any, method: str) -> Any:
    dialect = conn.dialect
    driver: Any = conn.connection.driver_connection
    try:
        if method == "executemany":
            cursor = driver.cursor()
            try:
                cursor.executemany(prepared.sql, arguments)
            finally:
                cursor.close()
            return None
        return driver.execute(prepared.sql, arguments)
    except dialect.loaded_dbapi.Error as error:
        # The same exception classes Connection.execute raises (IntegrityError, DataError...).
        # A lost connection is flagged as SQLAlchemy flags it, so it is never lent out again.
        raise DBAPIError.instance(
            prepared.sql,
            arguments,
            error,
            dialect.loaded_dbapi.Error,
            connection_invalidated=dialect.is_disconnect(error, driver, None),
            dialect=dialect,
        ) from error


def _execute(conn: Connection, statement: Executable, params: Mapping[str, Any]) -> Any:
    prepared = _prepared_for(conn, statement)
    return _call(conn, prepared, _arguments(prepared, params), "execute"), prepared


def fetch(
    conn: Connection, statement: Executable, params: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """Run a prebuilt SELECT and return its rows as converted tuples."""
    cursor, prepared = _execute(conn, statement, params)
    rows = cursor.fetchall()
    processors = prepared.result
    if not any(processors):
        return [tuple(row) for row in rows]
    return [
        tuple(p(v) if p is not None else v for p, v in zip(processors, row, strict=True))
        for row in rows
    ]


def run(conn: Connection, statement: Executable, params: Mapping[str, Any]) -> int:
    """Run a prebuilt INSERT/UPDATE/DELETE and return its row count."""
    cursor, _ = _execute(conn, statement, params)
    return int(cursor.rowcount)


def run_many(conn: Connection, statement: Executable, rows: list[Mapping[str, Any]]) -> None:
    """Run a prebuilt INSERT once per row, in one driver call (executemany)."""
    if rows:
        prepared = _prepared_for(conn, statement)
        _call(conn, prepared, [_arguments(prepared, row) for row in rows], "executemany")
