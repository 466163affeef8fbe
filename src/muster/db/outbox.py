"""EventRepository: one tenant's outbox rows, numbered by its counter in commit order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.sql import Executable

from muster.db import fast_exec as fast
from muster.db import statements as sql


class EventRepository:
    """Appends events inside the caller's transaction; they commit or roll back with it."""

    def __init__(self, conn: Connection, tenant_id: str) -> None:
        self._conn, self._tenant_id = conn, tenant_id

    def _reserve(self, count: int) -> int:
        """Add `count` to the counter (locking it until commit); return the new last number."""
        stmt = sql.RESERVE_EVENTS[self._conn.dialect.name]
        rows = fast.fetch(self._conn, stmt, {"b_tenant": self._tenant_id, "b_count": count})
        return int(rows[0][0])

    def append(
        self,
        type_: str,
        at: datetime,
        resource_type: str,
        resource_id: str,
        data: Mapping[str, Any] | None,
    ) -> int:
        """Write one event and return its number."""
        seq = self._reserve(1)
        fast.run(
            self._conn,
            sql.INSERT_EVENT,
            {
                "tenant_id": self._tenant_id,
                "seq": seq,
                "type": type_,
                "occurred_at": at,
                "resource_type": resource_type,
                "resource_id": resource_id,
                "data": data,
            },
        )
        return seq

    def append_selected(self, statement: Executable, params: Mapping[str, Any]) -> int:
        """Run an INSERT ... SELECT of events numbered after b_seq; return how many it wrote.

        The events are made by the database from rows (a group's members), so a change of
        100,000 memberships never brings the list into Python.
        """
        first = self._reserve(0)
        scoped: dict[str, Any] = {**params, "b_tenant": self._tenant_id, "b_seq": first}
        written = int(self._conn.execute(statement, scoped).rowcount)
        if written:
            self._reserve(written)
        return written

    def after(self, seq: int, limit: int) -> Sequence[Any]:
        """The events numbered after `seq`, oldest first."""
        return self._conn.execute(
            sql.EVENTS_AFTER, {"b_tenant": self._tenant_id, "b_seq": seq, "b_limit": limit}
        ).all()

    def position(self) -> tuple[int, int]:
        """(the last number given, the last number removed by retention); (0, 0) if none yet."""
        row = self._conn.execute(sql.EVENT_STREAM, {"b_tenant": self._tenant_id}).first()
        return (int(row.last_seq), int(row.pruned_through)) if row else (0, 0)
