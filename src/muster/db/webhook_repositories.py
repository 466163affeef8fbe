"""Webhook rows: one tenant's endpoints and deliveries, and the delivery worker's queue.

The queue is read across tenants (one worker serves them all), so WebhookQueue is the one
repository here without a tenant; every statement it runs still names the tenant of the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    DateTime,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased

from muster.db import fast_exec as fast
from muster.db import statements as sql
from muster.db.tables import WebhookDeliveryRow, WebhookEndpointRow

endpoints = cast(Table, WebhookEndpointRow.__table__)
deliveries = cast(Table, WebhookDeliveryRow.__table__)
events, event_streams = sql.events, sql.event_streams

WAITING, PENDING, SENDING = "waiting", "pending", "sending"
DELIVERED, DEAD = "delivered", "dead"
UNFINISHED = (WAITING, PENDING, SENDING)

TENANT = bindparam("b_tenant", type_=String(36))
ENDPOINT = bindparam("b_endpoint", type_=String(36))
SEQ = bindparam("b_seq", type_=BigInteger())
NOW = bindparam("b_now", type_=DateTime())
LIMIT = bindparam("b_limit", type_=Integer())
OFFSET = bindparam("b_offset", type_=Integer())
STATE = bindparam("b_state", type_=String(10))
# Written out, not bound: SQLite uses a partial index only when the query repeats its WHERE.
QUEUED = text("webhook_deliveries.state IN ('pending', 'sending')")

_THIS_ENDPOINT = (endpoints.c.tenant_id == TENANT, endpoints.c.id == ENDPOINT)
_ITS_DELIVERIES = (deliveries.c.tenant_id == TENANT, deliveries.c.endpoint_id == ENDPOINT)
_ONE_DELIVERY = (*_ITS_DELIVERIES, deliveries.c.event_seq == SEQ)
_EVENT_OF_DELIVERY = and_(
    events.c.tenant_id == deliveries.c.tenant_id, events.c.seq == deliveries.c.event_seq
)

# -- a tenant's endpoints ---------------------------------------------------------------------
INSERT_ENDPOINT = insert(endpoints)
ENDPOINTS = (
    select(endpoints).where(endpoints.c.tenant_id == TENANT).order_by(endpoints.c.created_at)
)
ENDPOINT_COUNT = select(func.count()).where(endpoints.c.tenant_id == TENANT)
LOWEST_ENABLED_CURSOR = select(func.min(endpoints.c.cursor)).where(
    endpoints.c.tenant_id == TENANT, endpoints.c.enabled.is_(True)
)
ENDPOINT_BY_ID = select(endpoints).where(*_THIS_ENDPOINT)
SET_ENABLED = (
    update(endpoints).where(*_THIS_ENDPOINT).values(enabled=bindparam("b_enabled", Boolean()))
)
DELETE_DELIVERIES_OF = delete(deliveries).where(*_ITS_DELIVERIES)
DELETE_ENDPOINT = delete(endpoints).where(*_THIS_ENDPOINT)
# Queued and dead deliveries per endpoint (the due index's rows plus the dead, never the
# delivered bulk), for the endpoint list.
OPEN_COUNTS = (
    select(deliveries.c.endpoint_id, deliveries.c.state, func.count())
    .where(deliveries.c.tenant_id == TENANT, deliveries.c.state.in_([*UNFINISHED, DEAD]))
    .group_by(deliveries.c.endpoint_id, deliveries.c.state)
)

# -- a tenant's deliveries ---------------------------------------------------------------------
_DELIVERY_COLUMNS = (
    deliveries.c.event_seq,
    # The event's resource; the delivery's order key starts with it once the event is gone.
    func.coalesce(events.c.resource_id, deliveries.c.order_key).label("resource_id"),
    deliveries.c.state,
    deliveries.c.attempts,
    deliveries.c.next_attempt_at,
    deliveries.c.last_attempt_at,
    deliveries.c.last_status,
    deliveries.c.last_error,
    deliveries.c.delivered_at,
    events.c.type.label("event_type"),  # None once retention removed the event
)
_FILTER_STATE = or_(STATE.is_(None), deliveries.c.state == STATE)
DELIVERIES_PAGE = (
    select(*_DELIVERY_COLUMNS)
    .select_from(deliveries.outerjoin(events, _EVENT_OF_DELIVERY))
    .where(*_ITS_DELIVERIES, _FILTER_STATE)
    .order_by(deliveries.c.event_seq.desc())
    .offset(OFFSET)
    .limit(LIMIT)
)
DELIVERY_COUNT = select(func.count()).where(*_ITS_DELIVERIES, _FILTER_STATE)
DELIVERY_STATE = select(deliveries.c.state).where(*_ONE_DELIVERY)
_AGAIN = {
    "state": PENDING,
    "attempts": 0,
    "next_attempt_at": NOW,
    "lease_until": None,
    "delivered_at": None,
}
REDELIVER = (
    update(deliveries)
    .where(*_ONE_DELIVERY, deliveries.c.state.in_([DELIVERED, DEAD]))
    .values(**_AGAIN)
)
REDELIVER_DEAD = (
    update(deliveries).where(*_ITS_DELIVERIES, deliveries.c.state == DEAD).values(**_AGAIN)
)

# -- the worker's queue: fan-out -----------------------------------------------------------------
_STREAM_OF_ENDPOINT = event_streams.c.tenant_id == endpoints.c.tenant_id
ENDPOINTS_BEHIND = (
    select(endpoints.c.tenant_id, endpoints.c.id)
    .join(event_streams, _STREAM_OF_ENDPOINT)
    .where(endpoints.c.enabled.is_(True), endpoints.c.cursor < event_streams.c.last_seq)
    .limit(LIMIT)
)
# PostgreSQL: a worker fanning out an endpoint holds its row; another skips it rather than
# queue the same events twice (SQLite's one writer at a time gives the same).
LOCK_ENDPOINT = (
    select(endpoints.c.cursor, endpoints.c.event_types, event_streams.c.last_seq)
    .join(event_streams, _STREAM_OF_ENDPOINT)
    .where(*_THIS_ENDPOINT, endpoints.c.enabled.is_(True))
    .with_for_update(skip_locked=True, of=endpoints)
)
FROM_SEQ = bindparam("b_from", type_=BigInteger())
TO_SEQ = bindparam("b_to", type_=BigInteger())
ADVANCE_CURSOR = update(endpoints).where(*_THIS_ENDPOINT).values(cursor=TO_SEQ)
_FAN_OUT_COLUMNS = [
    "tenant_id",
    "endpoint_id",
    "event_seq",
    "order_key",
    "state",
    "attempts",
    "next_attempt_at",
]
# A membership is its own stream of changes (see EventRow.member_id).
_ORDER_KEY = case(
    (events.c.member_id.is_(None), events.c.resource_id),
    else_=events.c.resource_id + "/" + events.c.member_id,
)
_UNFINISHED_OF_KEY = exists().where(
    deliveries.c.tenant_id == TENANT,
    deliveries.c.endpoint_id == ENDPOINT,
    deliveries.c.order_key == _ORDER_KEY,
    deliveries.c.state.in_(UNFINISHED),
)


def _fan_out(insert_: Any, *, filtered: bool) -> Any:
    """INSERT ... SELECT a delivery per event after b_from up to b_to (of b_types, if filtered).

    Per order key, the oldest new delivery is pending unless one of that key is unfinished
    already; every other one waits for its turn.
    """
    chosen = [events.c.tenant_id == TENANT, events.c.seq > FROM_SEQ, events.c.seq <= TO_SEQ]
    if filtered:
        chosen.append(events.c.type.in_(bindparam("b_types", expanding=True)))
    first_of_key = func.row_number().over(partition_by=_ORDER_KEY, order_by=events.c.seq) == 1
    state = case((and_(first_of_key, ~_UNFINISHED_OF_KEY), PENDING), else_=WAITING)
    rows = select(
        events.c.tenant_id,
        ENDPOINT,
        events.c.seq,
        _ORDER_KEY,
        state,
        literal(0, Integer()),
        NOW,
    ).where(*chosen)
    # The primary key (tenant, endpoint, event) is the backstop against a second fan-out.
    return insert_(deliveries).from_select(_FAN_OUT_COLUMNS, rows).on_conflict_do_nothing()


FAN_OUT = {
    (dialect, filtered): _fan_out(insert_, filtered=filtered)
    for dialect, insert_ in (("sqlite", sqlite_insert), ("postgresql", postgresql_insert))
    for filtered in (False, True)
}

# -- the worker's queue: claims and results ----------------------------------------------------
_DUE = (
    QUEUED,
    deliveries.c.next_attempt_at <= NOW,
    # A sending delivery is due again only once its worker's lease ran out (it died).
    or_(deliveries.c.state == PENDING, deliveries.c.lease_until < NOW),
)
HAS_DUE = select(literal(1)).where(*_DUE).limit(1)
# Only the head of each key's line is pending (see WebhookDeliveryRow), so a claim is a walk of
# the due index: no look at earlier deliveries, whatever the planner knows of the table.
CLAIMABLE = (
    select(
        deliveries.c.tenant_id,
        deliveries.c.endpoint_id,
        deliveries.c.event_seq,
        deliveries.c.order_key,
        deliveries.c.attempts,
        endpoints.c.url,
        endpoints.c.secret,
        endpoints.c.format,
        events.c.seq,
        events.c.type,
        events.c.occurred_at,
        events.c.resource_type,
        events.c.resource_id,
        events.c.data,
    )
    .select_from(
        deliveries.join(
            endpoints,
            and_(
                endpoints.c.tenant_id == deliveries.c.tenant_id,
                endpoints.c.id == deliveries.c.endpoint_id,
            ),
        ).outerjoin(events, _EVENT_OF_DELIVERY)
    )
    .where(*_DUE, endpoints.c.enabled.is_(True))
    .order_by(deliveries.c.next_attempt_at, deliveries.c.event_seq)
    .limit(LIMIT)
    # PostgreSQL: two workers claiming at once take different rows instead of waiting.
    .with_for_update(skip_locked=True, of=deliveries)
)
LEASE = bindparam("b_lease", type_=DateTime())
MARK_SENDING = (
    update(deliveries)
    .where(*_ONE_DELIVERY)
    # next_attempt_at follows the lease, so the due index also finds a dead worker's claims.
    .values(state=SENDING, lease_until=LEASE, next_attempt_at=LEASE, last_attempt_at=NOW)
)
_WHILE_SENDING = (*_ONE_DELIVERY, deliveries.c.state == SENDING)
MARK_DELIVERED = (
    update(deliveries)
    .where(*_WHILE_SENDING)
    .values(
        state=DELIVERED,
        attempts=deliveries.c.attempts + 1,
        delivered_at=NOW,
        last_status=bindparam("b_status", type_=Integer()),
        last_error=None,
        lease_until=None,
    )
)
MARK_FAILED = (
    update(deliveries)
    .where(*_WHILE_SENDING)
    .values(
        state=STATE,
        attempts=bindparam("b_attempts", type_=Integer()),
        next_attempt_at=bindparam("b_next", type_=DateTime()),
        last_status=bindparam("b_status", type_=Integer()),
        last_error=bindparam("b_error", type_=String(500)),
        lease_until=None,
    )
)
# A finished delivery (delivered or dead) hands its key's turn to the next waiting one.
_LINE_KEY = bindparam("b_key", type_=String(512))
_next_in_line = aliased(deliveries)


def _in_line(table: Any) -> tuple[Any, ...]:
    """The deliveries of one (tenant, endpoint, order key): one line."""
    return (
        table.c.tenant_id == TENANT,
        table.c.endpoint_id == ENDPOINT,
        table.c.order_key == _LINE_KEY,
    )


NEXT_IN_LINE = (
    update(deliveries)
    .where(
        *_in_line(deliveries),
        deliveries.c.event_seq
        == select(func.min(_next_in_line.c.event_seq))
        .where(*_in_line(_next_in_line), _next_in_line.c.state == WAITING)
        .scalar_subquery(),
        # A redelivered one may be on its way already: then it keeps the turn.
        ~exists()
        .where(
            *_in_line(_next_in_line),
            # Not IN (...): an expanding list cannot run as executemany.
            or_(_next_in_line.c.state == PENDING, _next_in_line.c.state == SENDING),
        )
        .correlate_except(_next_in_line),
    )
    .values(state=PENDING, next_attempt_at=NOW)
)
RELEASE = (
    update(deliveries)
    .where(*_WHILE_SENDING)
    .values(state=PENDING, next_attempt_at=NOW, lease_until=None)
)
PRUNE_DELIVERED = delete(deliveries).where(
    deliveries.c.state == DELIVERED, deliveries.c.delivered_at < NOW
)


class WebhookRepository:
    """One tenant's webhook endpoints and their deliveries."""

    def __init__(self, conn: Connection, tenant_id: str) -> None:
        self._conn, self._tenant_id = conn, tenant_id

    def _scoped(self, **params: Any) -> dict[str, Any]:
        return {"b_tenant": self._tenant_id, **params}

    def add_endpoint(self, values: dict[str, Any]) -> None:
        self._conn.execute(INSERT_ENDPOINT, {**values, "tenant_id": self._tenant_id})

    def endpoint_count(self) -> int:
        return int(self._conn.execute(ENDPOINT_COUNT, self._scoped()).scalar_one())

    def lowest_enabled_cursor(self) -> int | None:
        """The last event every enabled endpoint has queued (None: no enabled endpoint)."""
        value = self._conn.execute(LOWEST_ENABLED_CURSOR, self._scoped()).scalar()
        return None if value is None else int(value)

    def endpoints(self) -> Sequence[Any]:
        return self._conn.execute(ENDPOINTS, self._scoped()).all()

    def endpoint(self, endpoint_id: str) -> Any:
        return self._conn.execute(ENDPOINT_BY_ID, self._scoped(b_endpoint=endpoint_id)).first()

    def open_counts(self) -> dict[tuple[str, str], int]:
        """(endpoint id, state) -> how many deliveries, for pending, sending and dead."""
        rows = self._conn.execute(OPEN_COUNTS, self._scoped())
        return {(row[0], row[1]): int(row[2]) for row in rows}

    def set_enabled(self, endpoint_id: str, enabled: bool) -> bool:
        params = self._scoped(b_endpoint=endpoint_id, b_enabled=enabled)
        return int(self._conn.execute(SET_ENABLED, params).rowcount) == 1

    def remove_endpoint(self, endpoint_id: str) -> bool:
        params = self._scoped(b_endpoint=endpoint_id)
        self._conn.execute(DELETE_DELIVERIES_OF, params)
        return int(self._conn.execute(DELETE_ENDPOINT, params).rowcount) == 1

    def deliveries_page(
        self, endpoint_id: str, state: str | None, *, offset: int, limit: int
    ) -> tuple[int, Sequence[Any]]:
        """(how many match, the page of them newest event first)."""
        params = self._scoped(b_endpoint=endpoint_id, b_state=state)
        total = int(self._conn.execute(DELIVERY_COUNT, params).scalar_one())
        rows = self._conn.execute(
            DELIVERIES_PAGE, {**params, "b_offset": offset, "b_limit": limit}
        ).all()
        return total, rows

    def delivery_state(self, endpoint_id: str, event_seq: int) -> str | None:
        params = self._scoped(b_endpoint=endpoint_id, b_seq=event_seq)
        return cast(str | None, self._conn.execute(DELIVERY_STATE, params).scalar())

    def redeliver(self, endpoint_id: str, event_seq: int, now: datetime) -> bool:
        """Queue a delivered or dead delivery again; False when it is not in either state."""
        params = self._scoped(b_endpoint=endpoint_id, b_seq=event_seq, b_now=now)
        return int(self._conn.execute(REDELIVER, params).rowcount) == 1

    def redeliver_dead(self, endpoint_id: str, now: datetime) -> int:
        params = self._scoped(b_endpoint=endpoint_id, b_now=now)
        return int(self._conn.execute(REDELIVER_DEAD, params).rowcount)


class WebhookQueue:
    """Every tenant's deliveries, as the delivery worker fans them out, claims and ends them."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def endpoints_behind(self, limit: int) -> list[tuple[str, str]]:
        """(tenant id, endpoint id) of enabled endpoints with events not yet queued for them."""
        rows = fast.fetch(self._conn, ENDPOINTS_BEHIND, {"b_limit": limit})
        return [(row[0], row[1]) for row in rows]

    def lock_endpoint(self, tenant_id: str, endpoint_id: str) -> Any:
        """The endpoint's cursor, event types and its tenant's last event; None when another
        worker holds it (PostgreSQL), or it was disabled or removed meanwhile."""
        params = {"b_tenant": tenant_id, "b_endpoint": endpoint_id}
        return self._conn.execute(LOCK_ENDPOINT, params).first()

    def fan_out(
        self,
        tenant_id: str,
        endpoint_id: str,
        *,
        after: int,
        through: int,
        event_types: Sequence[str] | None,
        now: datetime,
    ) -> int:
        """Queue a delivery of each event after `after` through `through`; move the cursor."""
        params: dict[str, Any] = {
            "b_tenant": tenant_id,
            "b_endpoint": endpoint_id,
            "b_from": after,
            "b_to": through,
            "b_now": now,
        }
        filtered = event_types is not None
        if filtered:
            params["b_types"] = list(event_types or ())
        statement = FAN_OUT[(self._conn.dialect.name, filtered)]
        queued = int(self._conn.execute(statement, params).rowcount)
        self._conn.execute(ADVANCE_CURSOR, params)
        return queued

    def has_due(self, now: datetime) -> bool:
        return bool(fast.fetch(self._conn, HAS_DUE, {"b_now": now}))

    def claimable(self, now: datetime, limit: int) -> Sequence[Any]:
        """Due deliveries with their endpoint and event (the event's columns are None once
        retention removed it), locked against other workers until commit."""
        return self._conn.execute(CLAIMABLE, {"b_now": now, "b_limit": limit}).all()

    def mark_sending(
        self, keys: Sequence[tuple[str, str, int]], now: datetime, lease: datetime
    ) -> None:
        rows = [
            {"b_tenant": t, "b_endpoint": e, "b_seq": s, "b_now": now, "b_lease": lease}
            for t, e, s in keys
        ]
        if rows:
            self._conn.execute(MARK_SENDING, rows)

    def mark_delivered(
        self, answered: Sequence[tuple[tuple[str, str, int], int]], now: datetime
    ) -> None:
        """Mark deliveries this worker is sending as delivered, with their HTTP statuses."""
        rows = [{**_key(key), "b_status": status, "b_now": now} for key, status in answered]
        if rows:
            self._conn.execute(MARK_DELIVERED, rows)

    def next_in_line(self, lines: Sequence[tuple[str, str, str]], now: datetime) -> None:
        """For each (tenant, endpoint, order key) whose delivery finished, make the oldest
        waiting one pending."""
        rows = [{"b_tenant": t, "b_endpoint": e, "b_key": k, "b_now": now} for t, e, k in lines]
        if rows:
            self._conn.execute(NEXT_IN_LINE, rows)

    def mark_failed(
        self,
        key: tuple[str, str, int],
        *,
        state: str,
        attempts: int,
        next_attempt_at: datetime,
        status: int | None,
        error: str,
    ) -> bool:
        params = {
            **_key(key),
            "b_state": state,
            "b_attempts": attempts,
            "b_next": next_attempt_at,
            "b_status": status,
            "b_error": error[:500],
        }
        return int(self._conn.execute(MARK_FAILED, params).rowcount) == 1

    def release(self, keys: Sequence[tuple[str, str, int]], now: datetime) -> None:
        """Put claims this worker will not finish back in the queue, due now."""
        if keys:
            self._conn.execute(RELEASE, [{**_key(key), "b_now": now} for key in keys])

    def analyze(self) -> None:
        """Refresh the planner's statistics of the queue (PostgreSQL; a no-op elsewhere)."""
        if self._conn.dialect.name == "postgresql":
            self._conn.exec_driver_sql("ANALYZE webhook_deliveries")

    def prune_delivered(self, before: datetime) -> int:
        return int(self._conn.execute(PRUNE_DELIVERED, {"b_now": before}).rowcount)


def _key(key: tuple[str, str, int]) -> dict[str, Any]:
    return {"b_tenant": key[0], "b_endpoint": key[1], "b_seq": key[2]}
