"""Rows <-> records: the only place that knows how a stored row becomes a StoredUser."""

from __future__ import annotations

from typing import Any

from muster.scim.records import StoredGroup, StoredUser, TenantInfo


def to_stored_user(row: Any) -> StoredUser:
    """Map a row of statements.USER_COLUMNS (a Row or a plain tuple, by position)."""
    user_id, document, active, source, created, last_modified, version = row
    return StoredUser(user_id, document, bool(active), source, created, last_modified, version)


def to_tenant_info(row: Any) -> TenantInfo:
    return TenantInfo(
        tenant_id=row.id,
        slug=row.slug,
        name=row.name,
        plan=row.plan,
        seat_limit=row.seat_limit,
        seats_used=row.seats_used,
        scim_enabled=row.scim_enabled,
        created=row.created_at,
    )


def to_stored_group(row: Any) -> StoredGroup:
    """Map a row of statements.GROUP_COLUMNS (a Row or a plain tuple, by position)."""
    group_id, document, created, last_modified, version = row
    return StoredGroup(group_id, document, created, last_modified, version)
