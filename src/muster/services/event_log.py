"""read_events (the events API's pages, by cursor) and prune_events (retention)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from muster.db.unit_of_work import UnitOfWork
from muster.errors import ScimError
from muster.services.events import public_event

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# Each retention transaction removes at most this many events of one tenant: a short lock on
# its counter row (which the tenant's writers take too), never one huge DELETE.
PRUNE_BATCH = 1000


@dataclass(frozen=True, slots=True)
class EventPage:
    """One page of a tenant's events, oldest first, and where the next page starts."""

    events: list[dict[str, Any]]  # in services.events.public_event form
    next_cursor: int  # the last event's number, or the cursor given when nothing was new
    has_more: bool


def read_events(uow: UnitOfWork, *, after: int | None, limit: int = DEFAULT_LIMIT) -> EventPage:
    """List the tenant's events numbered after `after` (None: from the oldest kept one).

    Numbers are given in commit order and without gaps, so a consumer that passes back
    `next_cursor` sees every event exactly once. 410 when retention removed events after
    `after`; 400 when `after` is past the newest event (a cursor of another stream).
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise ScimError.invalid_value(f"limit must be between 1 and {MAX_LIMIT}")
    assert uow.tenant_id is not None
    with uow.reading():
        start = uow.events.position()[1] if after is None else after
        rows = uow.events.after(start, limit + 1)
        # Read after the rows: on PostgreSQL each statement sees the newest commits, so a
        # prune that ran between the two reads shows here, never as a silent gap.
        last_seq, pruned_through = uow.events.position()
    if after is not None:
        if after > last_seq:
            raise ScimError.invalid_cursor(
                f"after={after} is past this account's newest event ({last_seq}); pass a "
                "nextCursor this API returned for this key's account"
            )
        is_continuous = bool(rows) and rows[0].seq == after + 1
        if after < pruned_through and not is_continuous:
            raise ScimError(
                410,
                f"events up to number {pruned_through} were removed by retention, so some "
                f"events after after={after} are lost; restart from after={pruned_through} "
                "(the oldest kept event), or omit after",
            )
    page = rows[:limit]
    tenant_id = uow.tenant_id
    return EventPage(
        events=[public_event(tenant_id, row) for row in page],
        next_cursor=page[-1].seq if page else start,
        has_more=len(rows) > limit,
    )


def prune_events(
    uow_factory: Callable[[str | None], UnitOfWork],
    *,
    now: datetime,
    retention_days: int,
    batch_size: int = PRUNE_BATCH,
) -> int:
    """Remove every tenant's events older than `retention_days`; return how many went.

    Works in transactions of at most `batch_size` events per tenant; a tenant's counter never
    goes down, so a removed event's number is never given again.
    """
    older_than = now - timedelta(days=retention_days)
    with uow_factory(None).reading() as platform:
        tenant_ids = platform.event_streams.tenants_with_events()
    removed = 0
    for tenant_id in tenant_ids:
        uow = uow_factory(tenant_id)
        while True:
            with uow:
                # Events not yet queued for an enabled webhook endpoint stay (a worker that was
                # down for longer than the retention loses nothing); a paused endpoint does
                # not hold them back.
                queued_by_all = uow.webhooks.lowest_enabled_cursor()
                batch = uow.events.prune(older_than, batch_size, keep_after=queued_by_all)
                uow.commit()
            removed += batch
            if batch < batch_size:
                break
    return removed
