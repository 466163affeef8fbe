"""utcnow(): the one clock the services read; naive UTC, as the database stores it."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
