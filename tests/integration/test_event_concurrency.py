"""Many writers of one tenant at once: event numbers 1..N, and a polling reader sees each once."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from muster.db.unit_of_work import UnitOfWork
from muster.services import event_log
from tests.conftest import POSTGRES_URL
from tests.factories import given_tenant, given_user

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        not POSTGRES_URL, reason="PostgreSQL only: SQLite lets one writer in at a time"
    ),
]

UowFactory = Callable[..., UnitOfWork]
WRITERS = 8
USERS_PER_WRITER = 15


def test_concurrent_writers_number_events_without_gaps_and_a_reader_misses_none(
    uow_factory: UowFactory,
) -> None:
    tenant = given_tenant(uow_factory(), seats=WRITERS * USERS_PER_WRITER)
    total = WRITERS * USERS_PER_WRITER
    start = threading.Barrier(WRITERS + 1)
    writing_done = threading.Event()
    failures: list[BaseException] = []
    seen: list[int] = []

    def write() -> None:
        try:
            start.wait()
            for _ in range(USERS_PER_WRITER):
                given_user(uow_factory(tenant.tenant_id))  # each its own unit of work
        except BaseException as error:  # reported below, not lost in the thread
            failures.append(error)

    def read() -> None:
        cursor: int | None = None
        try:
            start.wait()
            while True:
                finished = writing_done.is_set()  # read before the page: one more pass after
                page = event_log.read_events(uow_factory(tenant.tenant_id), after=cursor, limit=7)
                seen.extend(event["sequence"] for event in page.events)
                cursor = page.next_cursor
                if finished and not page.has_more:
                    return
        except BaseException as error:
            failures.append(error)

    writers = [threading.Thread(target=write) for _ in range(WRITERS)]
    reader = threading.Thread(target=read)
    for thread in [*writers, reader]:
        thread.start()
    for thread in writers:
        thread.join(timeout=120)
    writing_done.set()
    reader.join(timeout=120)

    assert not failures, failures
    assert seen == list(range(1, total + 1))  # in order, none skipped, none twice
    uow = uow_factory(tenant.tenant_id)
    with uow.reading():
        assert uow.events.position() == (total, 0)
        stored = [row.seq for row in uow.events.after(0, total + 10)]
        assert {row.type for row in uow.events.after(0, total + 10)} == {"user.created"}
    assert stored == list(range(1, total + 1))
