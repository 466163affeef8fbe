"""RateLimiter: a fixed-window request limit per SCIM token, shared by every Muster process.

Nothing that must be shared lives in one process's memory: several instances behind a load
balancer serve one token, so the count that decides is a row per (tenant, token, window) in the
database. Touching that row on every request would put a write on the hot path, so each process
counts its own requests in memory and, every `sync` interval (~0.1 s), adds them to the shared
rows in one set-based upsert that returns the totals. A process refuses a token's requests as
soon as the last total it read plus its own unsynced count reaches the limit, until the window
ends. The limit can therefore be overshot by what *other* processes serve in one sync interval.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from muster.db.rate_limits import WindowKey
from muster.db.unit_of_work import UnitOfWork


@dataclass(slots=True)
class _TokenWindow:
    window_start: int
    known_total: int = 0  # the shared count as of this process's last sync (its own included)
    unsynced: int = 0  # requests admitted here since that sync


class RateLimiter:
    """One process's view of every token's current window.

    Request threads admit while a background thread syncs: the counts change under a lock,
    which is never held across the database call.
    """

    def __init__(self, limit: int, window_seconds: int) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._windows: dict[tuple[str, str], _TokenWindow] = {}
        self._pruned_before = 0
        self._lock = threading.Lock()

    def admit(self, tenant_id: str, token_id: str, now: float) -> int | None:
        """Count one request; return None to serve it, or the seconds until it may retry."""
        window = self.window_seconds
        window_start = int(now) // window * window
        key = (tenant_id, token_id)
        with self._lock:
            state = self._windows.get(key)
            if state is None or state.window_start != window_start:
                # A new window: whatever the last one had left unsynced decides nothing now.
                state = self._windows[key] = _TokenWindow(window_start)
            if state.known_total + state.unsynced >= self.limit:
                return max(1, math.ceil(window_start + window - now))
            state.unsynced += 1
        return None

    def has_unsynced(self) -> bool:
        with self._lock:
            return any(state.unsynced for state in self._windows.values())

    def sync(self, uow: UnitOfWork, now: float) -> None:
        """Add this process's counts to the shared ones and learn the totals (one transaction)."""
        current = int(now) // self.window_seconds * self.window_seconds
        deltas: list[tuple[WindowKey, int]] = []
        with self._lock:
            for (tenant_id, token_id), state in list(self._windows.items()):
                if state.window_start < current:
                    del self._windows[(tenant_id, token_id)]  # ended: its count matters no more
                elif state.unsynced:
                    deltas.append(((tenant_id, token_id, state.window_start), state.unsynced))
        if not deltas:
            return
        # Windows before the previous one are dead for every process; prune once per window.
        prune_before = current - self.window_seconds
        with uow:
            totals = uow.rate_limits.add_counts(deltas)
            if self._pruned_before < prune_before:
                uow.rate_limits.prune(before=prune_before)
            uow.commit()
        self._pruned_before = max(self._pruned_before, prune_before)
        with self._lock:
            for (tenant_id, token_id, window_start), sent in deltas:
                synced = self._windows.get((tenant_id, token_id))
                if synced is not None and synced.window_start == window_start:
                    synced.unsynced -= sent
                    synced.known_total = totals[(tenant_id, token_id, window_start)]
