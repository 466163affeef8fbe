"""StoredUser, StoredGroup, TenantInfo: what the services hand to the web layer, free of ORM."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class StoredUser:
    """A user as stored: the SCIM document (no id, no meta) and the server-kept attributes."""

    user_id: str
    document: dict[str, Any]
    active: bool
    source: str
    created: datetime
    last_modified: datetime
    version: int
    # (group id, displayName) pairs, read from membership rows when the response wants them.
    groups: list[tuple[str, str]] | None = None


@dataclass(slots=True, frozen=True)
class TenantInfo:
    """A tenant's account settings as the services and the CLI see them."""

    tenant_id: str
    slug: str
    name: str
    plan: str
    seat_limit: int
    seats_used: int
    scim_enabled: bool
    created: datetime


@dataclass(slots=True)
class StoredGroup:
    """A group as stored: its document (no id, meta or members) and server-kept attributes."""

    group_id: str
    document: dict[str, Any]
    created: datetime
    last_modified: datetime
    version: int
