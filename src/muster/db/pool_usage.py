"""watch_pool(engine, on_change): report how many pooled connections are in use as it changes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event


def watch_pool(engine: Engine, on_change: Callable[[int], None]) -> int | None:
    """Call on_change(connections checked out) at each checkout and checkin; return the
    pool's size, or None for a pool without one (in-memory SQLite's single connection)."""
    pool: Any = engine.pool
    if not hasattr(pool, "size"):
        return None
    checked_out = 0
    lock = threading.Lock()  # sync endpoints check out from a thread pool

    # A count of our own: at the checkin event the pool still counts the connection as out.
    def on_checkout(*_: Any) -> None:
        nonlocal checked_out
        with lock:
            checked_out += 1
            on_change(checked_out)

    def on_checkin(*_: Any) -> None:
        nonlocal checked_out
        with lock:
            checked_out -= 1
            on_change(checked_out)

    event.listen(engine, "checkout", on_checkout)
    event.listen(engine, "checkin", on_checkin)
    on_change(checked_out)
    return int(pool.size())
