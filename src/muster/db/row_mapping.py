"""Rows <-> records: the only place that knows how a stored row becomes a StoredUser."""

from __future__ import annotations

from typing import Any

from muster.scim.records import StoredGroup, StoredUser, TenantInfo


def to_stored_user(row: Any) -> StoredUser:
    return StoredUser(
        user_id=row.id,
        document=row.document,
        active=row.active,
        source=row.source,
        created=row.created_at,
        last_modified=row.last_modified,
        version=row.version,
    )


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
    return StoredGroup(
        group_id=row.id,
        document=row.document,
        created=row.created_at,
        last_modified=row.last_modified,
        version=row.version,
    )
