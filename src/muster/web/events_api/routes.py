"""GET /api/v1/events: a tenant's change events by cursor, for its events API key (mev_...)."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from muster.errors import ScimError, ScimType
from muster.process_logs import request_id_var
from muster.services import api_tokens, event_log
from muster.services.api_tokens import Principal
from muster.web.scim_api.auth import bearer_token, note_use
from muster.web.wiring import Wiring

EVENTS_PATH = "/api/v1/events"
MAX_WAIT_SECONDS = 30
# A waiting request re-reads this often; each read is one indexed query of the tenant's events.
WAIT_POLL_SECONDS = 0.5
_NUMBER = re.compile(r"[0-9]{1,18}")  # fits a BIGINT, no sign, no spaces
_HEADERS = {"Cache-Control": "no-store"}
_CODES = {401: "unauthorized", 410: "cursor_expired", 429: "too_many_requests", 503: "unavailable"}


def _error(error: ScimError) -> Response:
    if error.scim_type is ScimType.INVALID_CURSOR:
        code = "invalid_cursor"
    elif error.status == 400:
        code = "invalid_parameter"
    else:
        code = _CODES.get(error.status, "internal_error")
    headers = dict(_HEADERS)
    if error.status == 401:
        headers["WWW-Authenticate"] = "Bearer"  # RFC 6750 §3
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    body = orjson.dumps({"error": code, "detail": error.detail})
    return Response(body, error.status, headers, media_type="application/json")


def _number(params: Any, name: str, default: int | None, *, cursor: bool = False) -> int | None:
    raw = params.get(name)
    if raw is None:
        return default
    if not _NUMBER.fullmatch(raw):
        detail = f"{name} must be a whole number of at most 18 digits, as nextCursor returns"
        if cursor:
            raise ScimError.invalid_cursor(detail)
        raise ScimError.invalid_value(f"{name} must be a whole number")
    return int(raw)


def _authenticate(wiring: Wiring, authorization: str | None) -> Principal:
    key = bearer_token(authorization)
    if key is None:
        raise ScimError.unauthorized("send the events API key as `Authorization: Bearer mev_...`")
    return api_tokens.authenticate_events_key(wiring.uow_factory(None), key)


async def list_events(request: Request) -> Response:
    """GET /api/v1/events?after=CURSOR&limit=N&wait=SECONDS: the next events, oldest first."""
    wiring: Wiring = request.app.state.wiring
    blocking = wiring.blocking
    params = request.query_params
    address = request.client.host if request.client else "unknown"
    try:
        # An address that keeps sending bad keys is refused before any work (web/failed_auth.py).
        wiring.failed_auth.admit(address)
        try:
            principal = await blocking.run(
                _authenticate, wiring, request.headers.get("authorization")
            )
        except ScimError as error:
            if error.status == 401:
                wiring.failed_auth.record(
                    address, "GET", EVENTS_PATH, request_id_var.get() or "-", error.detail
                )
            raise
        after = _number(params, "after", None, cursor=True)
        limit = _number(params, "limit", event_log.DEFAULT_LIMIT)
        wait = _number(params, "wait", 0)
        assert limit is not None and wait is not None
        if wait > MAX_WAIT_SECONDS:
            raise ScimError.invalid_value(f"wait must be between 0 and {MAX_WAIT_SECONDS}")
        uow = wiring.uow_factory(principal.tenant_id)
        deadline = time.monotonic() + wait
        tenant_id = principal.tenant_id
        page = await blocking.run_for(
            tenant_id, event_log.read_events, uow, after=after, limit=limit
        )
        # Long poll: an empty page waits for the next commit, up to `wait` seconds, holding
        # no thread and no connection between reads.
        while not page.events and time.monotonic() < deadline:
            await asyncio.sleep(WAIT_POLL_SECONDS)
            page = await blocking.run_for(
                tenant_id, event_log.read_events, uow, after=after, limit=limit
            )
        await blocking.run(note_use, wiring.uow_factory, principal)
    except ScimError as error:
        if error.status == 503:
            request.scope["muster.refusal"] = error.reason  # SiteTelemetry logs and counts it
        return _error(error)
    body = {"data": page.events, "nextCursor": str(page.next_cursor), "hasMore": page.has_more}
    return Response(orjson.dumps(body), 200, _HEADERS, media_type="application/json")


def events_api_routes() -> list[BaseRoute]:
    """The /api/v1 routes (they read `state.wiring`, set by create_app)."""
    return [Route(EVENTS_PATH, list_events, methods=["GET"])]
