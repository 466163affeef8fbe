"""LogBuffer: provisioning log entries written in batches, off the request's own cost.

One INSERT transaction per request would cost more CPU than the request itself (a commit is
~60-100 µs on SQLite); entries wait at most `log_flush_seconds` and are written together.
A crash loses at most that window of log lines, never provisioning data.
"""

from __future__ import annotations

import asyncio
import logging

from muster.services import provisioning_log
from muster.services.provisioning_log import LogEntry
from muster.web.wiring import Wiring

logger = logging.getLogger("muster.scim")
MAX_PENDING = 500


class LogBuffer:
    """Collects entries per tenant and writes them on a timer, when full, or at shutdown."""

    def __init__(self, wiring: Wiring) -> None:
        self._wiring = wiring
        self._pending: dict[tuple[str, bool], list[LogEntry]] = {}
        self._count = 0
        self._timer: asyncio.TimerHandle | None = None

    def add(self, tenant_id: str, entry: LogEntry, *, claimed: bool) -> None:
        """Queue one entry; `claimed` means the tenant comes from a token that failed."""
        interval = self._wiring.settings.log_flush_seconds
        self._pending.setdefault((tenant_id, claimed), []).append(entry)
        self._count += 1
        if interval <= 0 or self._count >= MAX_PENDING:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(interval, self.flush)

    def flush(self) -> None:
        """Write everything queued now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending, self._count = self._pending, {}, 0
        settings = self._wiring.settings
        for (tenant_id, claimed), entries in pending.items():
            try:
                provisioning_log.record_requests(
                    self._wiring.uow_factory(tenant_id),
                    entries,
                    retention_days=settings.log_retention_days,
                    max_entries=settings.log_max_entries,
                    tenant_may_not_exist=claimed,
                )
            except Exception:  # the log must never turn served requests into failures
                logger.exception("could not write %d provisioning log entries", len(entries))
