"""EventRepository: one tenant's outbox rows, numbered by its counter in commit order; and
EventStreamRepository: which tenants have events at all (for retention)."""

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
        *,
        member_id: str | None = None,
    ) -> int:
        """Write one event and return its number."""
        if self._conn.dialect.name == "postgresql":
            params = {
                "b_tenant": self._tenant_id,
                "b_count": 1,
                "b_type": type_,
                "b_now": at,
                "b_resource_type": resource_type,
                "b_resource_id": resource_id,
                "b_member_id": member_id,
                "b_data": data,
            }
            return int(fast.fetch(self._conn, sql.APPEND_EVENT_POSTGRESQL, params)[0][0])
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
                "member_id": member_id,
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

    def prune(self, older_than: datetime, limit: int, *, keep_after: int | None = None) -> int:
        """Remove up to `limit` of the oldest events, only a leading run older than `older_than`
        (and numbered no higher than `keep_after`, when given).

        Only a run from the oldest kept event onwards goes, so `pruned_through` stays one
        number below which nothing is kept; the counter (last_seq) is never touched, so a
        number is never given twice. Return how many events went.
        """
        pruned = self.position()[1]
        rows = fast.fetch(
            self._conn,
            sql.OLDEST_EVENT_TIMES,
            {"b_tenant": self._tenant_id, "b_seq": pruned, "b_limit": limit},
        )
        through = pruned
        for seq, occurred_at in rows:
            # Times follow numbers only roughly (a change's time is read before its number is
            # given), so the run stops at the first event young enough to keep.
            if occurred_at >= older_than or (keep_after is not None and seq > keep_after):
                break
            through = seq
        if through == pruned:
            return 0
        params = {"b_tenant": self._tenant_id, "b_seq": pruned, "b_through": through}
        removed = fast.run(self._conn, sql.DELETE_EVENTS_THROUGH, params)
        # Last, so the counter row (which every writer of the tenant locks) is held briefly.
        fast.run(self._conn, sql.MARK_PRUNED, params)
        return removed


class EventStreamRepository:
    """The platform's event counters, across tenants (retention visits each in turn)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def tenants_with_events(self) -> list[str]:
        """The tenants that still keep at least one event."""
        return [row[0] for row in fast.fetch(self._conn, sql.STREAMS_WITH_EVENTS, {})]
