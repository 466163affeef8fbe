"""create_endpoint (secret shown once), list, enable, remove; a delivery log and redelivery."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from muster.db.ids import new_id
from muster.db.unit_of_work import UnitOfWork
from muster.db.webhook_repositories import DEAD, DELIVERED, PENDING, SENDING, WAITING
from muster.errors import ScimError
from muster.services import events
from muster.services.clock import utcnow
from muster.services.pages import PAGE_SIZE, Page, offset_of
from muster.services.webhook_delivery import FORMATS, JSON

SECRET_PREFIX = "whsec_"
STATES = (WAITING, PENDING, SENDING, DELIVERED, DEAD)
MAX_ENDPOINTS = 20  # per tenant; each one multiplies the deliveries of every event
MAX_URL_LENGTH = 2000
MAX_DESCRIPTION_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A webhook endpoint as it may be shown: never its secret."""

    endpoint_id: str
    url: str
    description: str
    event_types: tuple[str, ...] | None  # None: every event type, including future ones
    is_enabled: bool
    created_at: datetime
    format: str = JSON  # json (the public event) or set (a Security Event Token, RFC 9967)
    pending: int = 0  # deliveries queued or being sent
    dead: int = 0  # deliveries that gave up (see redeliver_dead)


@dataclass(frozen=True, slots=True)
class CreatedEndpoint:
    """A new endpoint and its signing secret: the only time the secret is readable."""

    endpoint: Endpoint
    secret: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event's delivery to one endpoint, for the delivery log."""

    event_seq: int
    event_id: str
    event_type: str | None  # None once event retention removed the event
    resource_id: str
    state: str  # waiting | pending | sending | delivered | dead
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None


def _endpoint(row: Any, counts: dict[tuple[str, str], int] | None = None) -> Endpoint:
    counts = counts or {}
    return Endpoint(
        endpoint_id=row.id,
        url=row.url,
        description=row.description,
        event_types=tuple(row.event_types) if row.event_types is not None else None,
        is_enabled=row.enabled,
        created_at=row.created_at,
        format=row.format,
        pending=sum(counts.get((row.id, state), 0) for state in (WAITING, PENDING, SENDING)),
        dead=counts.get((row.id, DEAD), 0),
    )


def _checked_url(url: str) -> str:
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise ScimError.invalid_value(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number
    except ValueError as error:
        raise ScimError.invalid_value(f"the URL is not valid: {error}") from error
    if parts.scheme not in ("http", "https"):
        raise ScimError.invalid_value("the URL must start with https:// (or http://)")
    if not host:
        raise ScimError.invalid_value("the URL must name a host, as in https://example.com/hook")
    if parts.username or parts.password:
        # Credentials in a URL end up in logs and screens; the signature authenticates us.
        raise ScimError.invalid_value("the URL must not carry a user name or password")
    return url


def _checked_types(event_types: Sequence[str] | None) -> list[str] | None:
    if not event_types:
        return None  # no choice means every type, including types added later
    unknown = sorted(set(event_types) - set(events.EVENT_TYPES))
    if unknown:
        raise ScimError.invalid_value(
            f"unknown event type {', '.join(unknown)}; known: {', '.join(events.EVENT_TYPES)}"
        )
    return [t for t in events.EVENT_TYPES if t in set(event_types)]


def _existing(uow: UnitOfWork, endpoint_id: str) -> Any:
    row = uow.webhooks.endpoint(endpoint_id)
    if row is None:
        raise ScimError.not_found("webhook endpoint", endpoint_id)
    return row


def create_endpoint(
    uow: UnitOfWork,
    url: str,
    *,
    description: str = "",
    event_types: Sequence[str] | None = None,
    format: str = JSON,
) -> CreatedEndpoint:
    """Add an endpoint that receives the tenant's events from now on; return it and its secret.

    `format` is how each event is sent: json (the public event) or set (a Security Event
    Token, RFC 9967); see docs/webhooks.md.
    """
    url = _checked_url(url)
    types = _checked_types(event_types)
    if format not in FORMATS:
        raise ScimError.invalid_value(f"format must be one of {', '.join(FORMATS)}")
    description = description.strip()
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise ScimError.invalid_value(
            f"the description is longer than {MAX_DESCRIPTION_LENGTH} characters"
        )
    # 256 random bits. Kept as is (not hashed like API tokens): each delivery is signed with it.
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    endpoint_id = new_id()
    with uow:
        if uow.webhooks.endpoint_count() >= MAX_ENDPOINTS:
            raise ScimError.invalid_value(f"a tenant may have at most {MAX_ENDPOINTS} endpoints")
        uow.webhooks.add_endpoint(
            {
                "id": endpoint_id,
                "url": url,
                "description": description,
                "secret": secret,
                "enabled": True,
                "event_types": types,
                "format": format,
                # It receives the events after its creation, not the tenant's history.
                "cursor": uow.events.position()[0],
                "created_at": utcnow(),
            }
        )
        row = uow.webhooks.endpoint(endpoint_id)
        uow.commit()
    return CreatedEndpoint(endpoint=_endpoint(row), secret=secret)


def list_endpoints(uow: UnitOfWork) -> list[Endpoint]:
    """The tenant's endpoints, oldest first, with how many deliveries are pending and dead."""
    with uow.reading():
        counts = uow.webhooks.open_counts()
        return [_endpoint(row, counts) for row in uow.webhooks.endpoints()]


def get_endpoint(uow: UnitOfWork, endpoint_id: str) -> Endpoint:
    """One endpoint (404 when the tenant has no such endpoint)."""
    with uow.reading():
        row = _existing(uow, endpoint_id)
        return _endpoint(row, uow.webhooks.open_counts())


def set_endpoint_enabled(uow: UnitOfWork, endpoint_id: str, enabled: bool) -> Endpoint:
    """Pause or resume an endpoint; a paused one keeps its place and catches up when resumed."""
    with uow:
        _existing(uow, endpoint_id)
        uow.webhooks.set_enabled(endpoint_id, enabled)
        row = uow.webhooks.endpoint(endpoint_id)
        uow.commit()
    return _endpoint(row)


def remove_endpoint(uow: UnitOfWork, endpoint_id: str) -> None:
    """Remove an endpoint and its deliveries (one in flight may still arrive)."""
    with uow:
        if not uow.webhooks.remove_endpoint(endpoint_id):
            raise ScimError.not_found("webhook endpoint", endpoint_id)
        uow.commit()


def deliveries_page(
    uow: UnitOfWork, endpoint_id: str, *, state: str | None = None, page: int = 1
) -> Page[Delivery]:
    """One page of an endpoint's deliveries, newest event first, optionally of one state."""
    if state is not None and state not in STATES:
        raise ScimError.invalid_value(f"state must be one of {', '.join(STATES)}")
    with uow.reading():
        _existing(uow, endpoint_id)
        total, rows = uow.webhooks.deliveries_page(
            endpoint_id, state, offset=offset_of(page), limit=PAGE_SIZE
        )
    tenant_id = uow.tenant_id
    assert tenant_id is not None
    items = [
        Delivery(
            event_seq=row.event_seq,
            event_id=events.event_id(tenant_id, row.event_seq),
            event_type=row.event_type,
            resource_id=row.resource_id,
            state=row.state,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_attempt_at=row.last_attempt_at,
            last_status=row.last_status,
            last_error=row.last_error,
            delivered_at=row.delivered_at,
        )
        for row in rows
    ]
    return Page(items=items, total=total, number=max(page, 1))


def redeliver(uow: UnitOfWork, endpoint_id: str, event_seq: int) -> None:
    """Send a delivered or dead delivery again: back to pending, attempts reset, due now."""
    with uow:
        _existing(uow, endpoint_id)
        if not uow.webhooks.redeliver(endpoint_id, event_seq, utcnow()):
            state = uow.webhooks.delivery_state(endpoint_id, event_seq)
            if state is None:
                raise ScimError.not_found("delivery of event", str(event_seq))
            return  # pending or sending: it is on its way already
        uow.commit()


def redeliver_dead(uow: UnitOfWork, endpoint_id: str) -> int:
    """Send every dead delivery of an endpoint again; return how many."""
    with uow:
        _existing(uow, endpoint_id)
        count = uow.webhooks.redeliver_dead(endpoint_id, utcnow())
        uow.commit()
    return count
