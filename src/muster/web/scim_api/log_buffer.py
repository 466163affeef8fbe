"""LogBuffer: provisioning log entries and token last-use times, written after the request.

One INSERT transaction per request would cost more CPU than the request itself (a commit is
~60-100 µs on SQLite), and a request must never wait on the log: entries are handed to a
background thread (web/background.py) and written in batches every `log_flush_seconds`. When
the database is down they wait in memory (at most MAX_PENDING; beyond, the oldest are dropped
and counted in a process-log line) and are written once it answers again, so the requests
refused during an outage still reach the tenant's log. A crash loses at most what waits.
"""

from __future__ import annotations

import logging
import threading

from muster.errors import ScimError
from muster.services import provisioning_log
from muster.services.api_tokens import Principal, record_token_use
from muster.services.provisioning_log import LogEntry
from muster.web.background import BackgroundWriter
from muster.web.wiring import Wiring

logger = logging.getLogger("muster.scim")
MAX_PENDING = 20_000


class LogBuffer:
    """Collects entries per tenant; a background thread writes them."""

    def __init__(self, wiring: Wiring) -> None:
        self._wiring = wiring
        # By tenant, and the proof of an unchecked token (None: the request's token was good).
        self._pending: dict[tuple[str, str | None], list[LogEntry]] = {}
        self._count = 0
        self._dropped = 0
        self._uses: dict[str, Principal] = {}  # token id -> its latest use, once a minute
        self._lock = threading.Lock()
        self.writer = BackgroundWriter(
            "provisioning-log", wiring.settings.log_flush_seconds, self.flush
        )

    @property
    def writes_at_once(self) -> bool:
        """log_flush_seconds=0: the request's own entries are written before it ends."""
        return self._wiring.settings.log_flush_seconds <= 0

    def add(self, tenant_id: str, entry: LogEntry, *, token_proof: str | None = None) -> None:
        """Queue one entry of a tenant's log; with `token_proof`, only if that token is live."""
        with self._lock:
            if self._count >= MAX_PENDING:
                self._drop_oldest()
            self._pending.setdefault((tenant_id, token_proof), []).append(entry)
            self._count += 1
        if not self.writes_at_once:
            self.writer.wake()

    def note_use(self, principal: Principal) -> None:
        """Remember that a token was used; its last-used time is written with the next batch."""
        if principal.is_use_stale:
            with self._lock:
                self._uses[principal.token_id] = principal
            if not self.writes_at_once:
                self.writer.wake()

    def _write(self, tenant_id: str, proof: str | None, entries: list[LogEntry]) -> list[LogEntry]:
        """Write a tenant's entries; return those to try again (the database cannot now).

        An entry the database refuses for itself (a value it cannot store) is written on its
        own and, failing again, dropped with a process-log line: one such entry must never
        hold the tenant's log back, nor fill the memory it waits in.
        """
        settings = self._wiring.settings

        def record(batch: list[LogEntry]) -> None:
            provisioning_log.record_requests(
                self._wiring.uow_factory(tenant_id),
                batch,
                retention_days=settings.log_retention_days,
                max_entries=settings.log_max_entries,
                tenant_may_not_exist=proof is not None,
                token_proof=proof,
            )

        try:
            record(entries)
            return []
        except Exception as error:  # the log must never turn served requests into failures
            if _is_unavailable(error):
                logger.warning(
                    "could not write %d provisioning log entries yet (%s); will retry",
                    len(entries),
                    type(error).__name__,
                )
                return entries
        left = []
        for entry in entries:
            try:
                record([entry])
            except Exception as error:
                if _is_unavailable(error):
                    left.append(entry)
                else:
                    logger.error(
                        "dropped the provisioning log entry of request %s: %s",
                        entry.request_id,
                        error,
                    )
        return left

    def _drop_oldest(self) -> None:
        key = next(iter(self._pending))
        entries = self._pending[key]
        entries.pop(0)
        if not entries:
            del self._pending[key]
        self._count -= 1
        self._dropped += 1

    def flush(self) -> bool:
        """Write everything queued now; return whether all of it was written."""
        with self._lock:
            pending, self._pending, self._count = self._pending, {}, 0
            uses, self._uses = self._uses, {}
            dropped, self._dropped = self._dropped, 0
        if dropped:
            logger.error(
                "%d provisioning log entries were dropped: the database took no writes and "
                "more than %d waited",
                dropped,
                MAX_PENDING,
            )
        failed: dict[tuple[str, str | None], list[LogEntry]] = {}
        for (tenant_id, proof), entries in pending.items():
            left = self._write(tenant_id, proof, entries)
            if left:
                failed[(tenant_id, proof)] = left
        unrecorded: dict[str, Principal] = {}
        for principal in uses.values():
            try:
                record_token_use(self._wiring.uow_factory(principal.tenant_id), principal)
            except Exception:
                unrecorded[principal.token_id] = principal
        if not failed and not unrecorded:
            return True
        with self._lock:  # back in front of what came meanwhile, oldest first
            for key, entries in failed.items():
                self._pending[key] = entries + self._pending.get(key, [])
                self._count += len(entries)
            for token_id, principal in unrecorded.items():
                self._uses.setdefault(token_id, principal)
        return False


def _is_unavailable(error: Exception) -> bool:
    """The database could not take the write now (503-class): the entries wait and retry."""
    return isinstance(error, ScimError) and error.status == 503
