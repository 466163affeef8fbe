"""record_request / list_entries: each SCIM request's outcome, for an admin reading a failure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from muster.db.ids import new_id
from muster.db.unit_of_work import UnitOfWork
from muster.redaction import redact
from muster.services.clock import utcnow
from muster.services.log_hints import hint_for
from muster.services.pages import PAGE_SIZE, Page, offset_of

# Retention without a scheduler: each process prunes a tenant's log when it writes to it, at
# most this often (pruning by count walks the tenant's newest entries, so not on every write).
PRUNE_INTERVAL = timedelta(minutes=1)
_MAX_DETAIL = 2000
_last_pruned: dict[str, datetime] = {}


def _prune_is_due(tenant_id: str) -> bool:
    """The first write of a process starts the clock; then a prune every PRUNE_INTERVAL."""
    now = utcnow()
    last = _last_pruned.setdefault(tenant_id, now)
    if last == now or now - last < PRUNE_INTERVAL:
        return False
    _last_pruned[tenant_id] = now
    return True


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One provisioning log line."""

    at: datetime
    method: str
    path: str
    resource_type: str | None
    resource_id: str | None
    status: int
    scim_type: str | None
    detail: str | None
    duration_ms: float
    user_agent: str | None
    request_id: str
    client_quirks: str | None = None  # the client deviations Muster absorbed, comma-separated


def storable(text: str) -> str:
    """`text` as every database stores it: a NUL (PostgreSQL refuses it in text) or a lone
    surrogate (not UTF-8 at all) from a client's path or value is written as an escape."""
    if text.isascii() and "\x00" not in text:
        return text
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def _text(value: str | None, limit: int) -> str | None:
    return storable(redact(value))[:limit] if value else None


def _values(entry: LogEntry) -> dict[str, object]:
    return {
        "id": new_id(),
        "at": entry.at,
        "method": storable(entry.method)[:10],
        "path": _text(entry.path, 500),
        "resource_type": entry.resource_type,
        "resource_id": _text(entry.resource_id, 255),
        "status": entry.status,
        "scim_type": entry.scim_type,
        "detail": _text(entry.detail, _MAX_DETAIL),
        "duration_ms": round(entry.duration_ms, 3),
        "user_agent": _text(entry.user_agent, 300),
        "request_id": entry.request_id,
        "client_quirks": entry.client_quirks,
    }


def record_requests(
    uow: UnitOfWork,
    entries: Sequence[LogEntry],
    *,
    retention_days: int,
    max_entries: int,
    tenant_may_not_exist: bool = False,
    token_proof: str | None = None,
) -> None:
    """Store requests' outcomes in the tenant's log in one transaction, redacted.

    `token_proof`: the requests were refused before their token could be checked (the
    database was down, the body too large); they are the tenant's only if it is its live
    token, checked now, so a stranger naming a tenant in a made-up token writes nothing.
    """
    if not entries:
        return
    rows = [_values(entry) for entry in entries]
    with uow:
        assert uow.tenant_id is not None
        if tenant_may_not_exist and uow.tenants.get(uow.tenant_id) is None:
            return  # a token naming a tenant that does not exist: nobody to tell
        if token_proof is not None and uow.tokens.find_active(token_proof) is None:
            return  # not this tenant's token: nobody's log (web/failed_auth.py)
        uow.log.add_many(rows)
        if _prune_is_due(uow.tenant_id):
            uow.log.prune(older_than=utcnow() - timedelta(days=retention_days), keep=max_entries)
        uow.commit()


def record_request(
    uow: UnitOfWork,
    entry: LogEntry,
    *,
    retention_days: int,
    max_entries: int,
    tenant_may_not_exist: bool = False,
) -> None:
    """Store one request's outcome in its tenant's log."""
    record_requests(
        uow,
        [entry],
        retention_days=retention_days,
        max_entries=max_entries,
        tenant_may_not_exist=tenant_may_not_exist,
    )


def _entry(row: Any) -> LogEntry:
    return LogEntry(
        at=row.at,
        method=row.method,
        path=row.path,
        resource_type=row.resource_type,
        resource_id=row.resource_id,
        status=row.status,
        scim_type=row.scim_type,
        detail=row.detail,
        duration_ms=row.duration_ms,
        user_agent=row.user_agent,
        request_id=row.request_id,
        client_quirks=row.client_quirks,
    )


def list_entries(uow: UnitOfWork, *, failed_only: bool = False, limit: int = 50) -> list[LogEntry]:
    """Return the newest entries first."""
    with uow.reading():
        rows = uow.log.newest(failed_only=failed_only, limit=limit)
    return [_entry(row) for row in rows]


def prune(uow: UnitOfWork, *, retention_days: int, max_entries: int) -> int:
    """Apply retention to the tenant's log now; return how many entries went."""
    with uow:
        removed = uow.log.prune(
            older_than=utcnow() - timedelta(days=retention_days), keep=max_entries
        )
        uow.commit()
    return removed


@dataclass(frozen=True, slots=True)
class LogLine:
    """A log entry as the console shows it: with a hint, and a link when its resource exists."""

    entry: LogEntry
    hint: str | None
    links_to_resource: bool


def entries_page(
    uow: UnitOfWork, *, failed_only: bool = False, page: int = 1, resource_id: str | None = None
) -> Page[LogLine]:
    """One page of the log, newest first, each entry with its plain-language hint."""
    with uow.reading():
        total, rows = uow.console.log_page(
            failed_only=failed_only,
            resource_id=resource_id,
            offset=offset_of(page),
            limit=PAGE_SIZE,
        )
        entries = [_entry(row) for row in rows]
        user_ids = {e.resource_id for e in entries if e.resource_type == "User" and e.resource_id}
        group_ids = {e.resource_id for e in entries if e.resource_type == "Group" and e.resource_id}
        existing = uow.console.existing_ids(sorted(user_ids), sorted(group_ids))
    lines = [
        LogLine(e, hint_for(e.status, e.scim_type, e.detail), e.resource_id in existing)
        for e in entries
    ]
    return Page(lines, total, max(page, 1))
