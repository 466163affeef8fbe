"""LogBuffer: entries wait while the database is down, and one bad entry holds nothing back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from muster.config import Settings
from muster.errors import ScimError
from muster.services import provisioning_log
from muster.services.provisioning_log import LogEntry
from muster.web.scim_api import log_buffer as module
from muster.web.scim_api.log_buffer import LogBuffer


def _entry(request_id: str) -> LogEntry:
    return LogEntry(
        datetime.now(UTC),
        "GET",
        "/scim/v2/Users",
        None,
        None,
        200,
        None,
        None,
        1.0,
        None,
        request_id,
    )


class _Wiring:
    settings = Settings(log_flush_seconds=0.2)

    def uow_factory(self, tenant_id: str | None) -> Any:
        return tenant_id


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    written: list[str] = []

    def record(uow: Any, entries: list[LogEntry], **_: Any) -> None:
        ids = [entry.request_id for entry in entries]
        if "down" in ids:
            raise ScimError.unavailable("down", retry_after=5, reason="unreachable")
        if "poison" in ids:
            raise ScimError.invalid_value("a value the database cannot store")
        written.extend(ids)

    monkeypatch.setattr(provisioning_log, "record_requests", record)
    return written


def test_one_bad_entry_is_dropped_and_its_batch_written(written: list[str]) -> None:
    buffer = LogBuffer(_Wiring())  # type: ignore[arg-type]
    for request_id in ("a", "poison", "b"):
        buffer.add("tenant", _entry(request_id))

    assert buffer.flush() is True
    assert written == ["a", "b"]


def test_entries_wait_while_the_database_is_down_and_are_bounded(
    written: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "MAX_PENDING", 3)
    buffer = LogBuffer(_Wiring())  # type: ignore[arg-type]
    buffer.add("tenant", _entry("down"))
    assert buffer.flush() is False  # kept for the next try
    for request_id in ("1", "2", "3"):
        buffer.add("tenant", _entry(request_id))  # the oldest ("down") makes room

    assert buffer.flush() is True
    assert written == ["1", "2", "3"]
