"""new_id: time-ordered UUIDv7 strings, so ids sort in creation order."""

from __future__ import annotations

import uuid

import pytest

from muster.db.ids import new_id

pytestmark = pytest.mark.unit


def test_new_id_is_a_version_7_uuid() -> None:
    parsed = uuid.UUID(new_id())

    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_new_ids_sort_in_creation_order_even_within_one_millisecond() -> None:
    # The provisioning log lists and prunes by id ("newest first"), users page by id
    # ("creation order"); many rows are written within the same millisecond.
    ids = [new_id() for _ in range(2000)]

    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
