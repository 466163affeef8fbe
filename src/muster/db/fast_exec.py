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


def _execute(conn: Connection, statement: Executable, params: Mapping[str, Any]) -> Any:
    dialect = conn.dialect
    key = (id(statement), dialect.name)
    prepared = _prepared.get(key)
    if prepared is None:
        prepared = _prepared[key] = _prepare(statement, dialect)
    values = {**prepared.defaults, **params} if prepared.defaults else dict(params)
    for name, processor in prepared.bind:
        values[name] = processor(values[name])
    driver = conn.connection.driver_connection
    assert driver is not None
    arguments = tuple(values[n] for n in prepared.order) if prepared.order is not None else values
    try:
        return driver.execute(prepared.sql, arguments), prepared
    except dialect.loaded_dbapi.Error as error:
        # The same exception classes Connection.execute raises (IntegrityError, DataError...).
        raise DBAPIError.instance(
            prepared.sql, arguments, error, dialect.loaded_dbapi.Error, dialect=dialect
        ) from error


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
    if not rows:
        return
    dialect = conn.dialect
    key = (id(statement), dialect.name)
    prepared = _prepared.get(key)
    if prepared is None:
        prepared = _prepared[key] = _prepare(statement, dialect)
    arguments: list[Any] = []
    for params in rows:
        values = {**prepared.defaults, **params} if prepared.defaults else dict(params)
        for name, processor in prepared.bind:
            values[name] = processor(values[name])
        arguments.append(
            tuple(values[n] for n in prepared.order) if prepared.order is not None else values
        )
    driver: Any = conn.connection.driver_connection
    cursor = driver.cursor()
    try:
        cursor.executemany(prepared.sql, arguments)
    except dialect.loaded_dbapi.Error as error:
        raise DBAPIError.instance(
            prepared.sql, arguments, error, dialect.loaded_dbapi.Error, dialect=dialect
        ) from error
    finally:
        cursor.close()
