"""RateLimitRepository: tokens' shared request counts per window, added to in one upsert."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite

from muster.db.tables import RateLimitRow

rate_limits = cast(Table, RateLimitRow.__table__)
_KEY = ("tenant_id", "token_id", "window_start")
# Rows per statement: 4 parameters each, well under SQLite's 32,766 bound parameters.
_CHUNK = 1000

WindowKey = tuple[str, str, int]  # (tenant_id, token_id, window_start)


def _upsert_one(insert: Any) -> Any:
    stmt = insert(rate_limits).values(
        tenant_id=bindparam("tenant_id"),
        token_id=bindparam("token_id"),
        window_start=bindparam("window_start"),
        count=bindparam("count"),
    )
    return stmt.on_conflict_do_update(
        index_elements=list(_KEY), set_={"count": rate_limits.c.count + stmt.excluded["count"]}
    ).returning(rate_limits.c.count)


# A process usually syncs one or two tokens: one prebuilt statement per row skips building and
# compiling a multi-row INSERT on every sync (py-spy: most of the sync's cost under load).
_UPSERT_ONE = {"postgresql": _upsert_one(postgresql.insert), "sqlite": _upsert_one(sqlite.insert)}
_FEW = 8


class RateLimitRepository:
    """Platform-level: one statement adds the counts of many tenants' tokens at once."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add_counts(self, counts: Sequence[tuple[WindowKey, int]]) -> dict[WindowKey, int]:
        """Add each delta to its window's shared count; return the totals after the additions."""
        is_postgres = self._conn.dialect.name == "postgresql"
        insert: Any = postgresql.insert if is_postgres else sqlite.insert
        # Rows in key order: two processes upserting overlapping sets then lock the rows in the
        # same order, so PostgreSQL cannot deadlock them against each other.
        ordered = sorted(counts)
        totals: dict[WindowKey, int] = {}
        if len(ordered) <= _FEW:
            upsert = _UPSERT_ONE[self._conn.dialect.name]
            for (t, k, w), n in ordered:
                params = {"tenant_id": t, "token_id": k, "window_start": w, "count": n}
                totals[(t, k, w)] = int(self._conn.execute(upsert, params).scalar_one())
            return totals
        for start in range(0, len(ordered), _CHUNK):
            rows = [
                {"tenant_id": t, "token_id": k, "window_start": w, "count": n}
                for (t, k, w), n in ordered[start : start + _CHUNK]
            ]
            stmt = insert(rate_limits).values(rows)
            stmt = stmt.on_conflict_do_update(
                index_elements=list(_KEY),
                set_={"count": rate_limits.c.count + stmt.excluded["count"]},
            ).returning(*(rate_limits.c[name] for name in _KEY), rate_limits.c.count)
            for tenant_id, token_id, window_start, count in self._conn.execute(stmt):
                totals[(tenant_id, token_id, int(window_start))] = int(count)
        return totals

    def prune(self, *, before: int) -> int:
        """Delete the windows that started before `before` (Unix seconds)."""
        result = self._conn.execute(delete(rate_limits).where(rate_limits.c.window_start < before))
        return int(result.rowcount)
