"""ScimPipeline: the one middleware of /scim/v2: request id, auth, errors, provisioning log."""

from __future__ import annotations

import logging
import time
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from muster.errors import ScimError
from muster.services import provisioning_log
from muster.services.clock import utcnow
from muster.services.database import UnitOfWork
from muster.web import request_ids
from muster.web.scim_api.auth import authenticate, claimed_tenant, note_use
from muster.web.scim_api.log_buffer import LogBuffer
from muster.web.scim_api.rate_limiting import RateLimitGate
from muster.web.scim_api.responses import error_response
from muster.web.wiring import Wiring

logger = logging.getLogger("muster.scim")
SCOPE_KEY = "muster.scim"
_RESOURCE_TYPES = {"users": "User", "groups": "Group"}
_READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass(slots=True)
class ScimContext:
    """Per-request facts the handlers and the log share."""

    request_id: str
    base_url: str
    tenant_id: str | None = None
    uow: UnitOfWork | None = None
    resource_id: str | None = None
    quirks: list[str] = field(default_factory=list)
    error: ScimError | None = None
    body: bytes = b""
    # Further log lines this request produced (one per /Bulk operation).
    log_entries: list[provisioning_log.LogEntry] = field(default_factory=list)


def _base_url(scope: Scope, headers: dict[bytes, bytes], public_url: str | None) -> str:
    if public_url:
        return public_url.rstrip("/") + "/scim/v2"
    host = headers.get(b"host", b"localhost").decode("latin-1")
    proto = headers.get(b"x-forwarded-proto", scope["scheme"].encode()).decode("latin-1")
    return f"{proto}://{host}/scim/v2"


class ScimPipeline:
    """Runs every /scim/v2 request through auth, turns errors into RFC 7644 bodies, logs it."""

    def __init__(self, app: ASGIApp, wiring: Wiring) -> None:
        self.app = app
        self.wiring = wiring
        self.log_buffer = LogBuffer(wiring)
        self.rate_limits = RateLimitGate(wiring)
        self._body_limit = wiring.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        request_id = request_ids.begin(headers.get(request_ids.HEADER))
        context = ScimContext(
            request_id, _base_url(scope, headers, self.wiring.settings.public_url)
        )
        scope[SCOPE_KEY] = context
        send_with_id = request_ids.TaggedSend(send, request_id, status=0)  # 0: not started

        authorization = headers.get(b"authorization", b"").decode("latin-1") or None
        claimed = claimed_tenant(authorization)
        uow = context.uow = (
            self.wiring.request_uow_factory(claimed) if claimed is not None else None
        )
        principal = None
        try:
            try:
                has_body = scope["method"] not in _READ_METHODS
                # POST /.search carries a body but only reads (RFC 7644 §3.4.3).
                is_write = has_body and not scope["path"].endswith("/.search")
                if has_body:
                    # Read the whole body before any lock is taken: awaiting the network while
                    # holding SQLite's write lock would stall every other request.
                    context.body = await _read_body(scope, receive, headers, self._body_limit)
                if uow is not None:
                    # Authentication and the operation share one transaction.
                    uow.begin_request(write=is_write)
                # No tenant in the token: authentication fails before touching the database.
                principal = authenticate(authorization, uow or self.wiring.uow_factory(None))
                context.tenant_id = principal.tenant_id
                self.rate_limits.admit(principal)
                await self.app(scope, receive, send_with_id)
            except HTTPException as error:  # routing: unknown path or method
                context.error = _routing_error(error, scope)
            except ScimError as error:
                context.error = error
            except Exception:
                logger.exception(
                    "unhandled error in %s %s (request %s)",
                    scope["method"],
                    scope["path"],
                    request_id,
                )
                context.error = ScimError(500, "internal error")  # the request id follows
            if context.error is not None:
                if uow is not None:
                    uow.close()  # roll back and let go of any lock before waiting on the network
                # Not started yet; a streamed body that failed midway can only be cut short.
                if send_with_id.status == 0:
                    await error_response(context.error, request_id)(scope, receive, send_with_id)
        finally:
            if uow is not None:
                uow.close()
            if principal is not None:
                note_use(self.wiring.uow_factory, principal)
            status = send_with_id.status or 500
            self._record(scope, headers, context, status, authorization, started)
            self.wiring.metrics.observe_scim(
                scope["method"], scope["path"], status, context.error, started
            )

    def _record(
        self,
        scope: Scope,
        headers: dict[bytes, bytes],
        context: ScimContext,
        status: int,
        authorization: str | None,
        started: float,
    ) -> None:
        tenant_id = context.tenant_id
        claimed = False
        if tenant_id is None:
            tenant_id, claimed = claimed_tenant(authorization), True
            if tenant_id is None:
                return
        path = scope["path"]
        query = scope.get("query_string", b"")
        if query:
            path = f"{path}?{query.decode('latin-1')}"
        parts = scope["path"].split("/")
        resource_type = _RESOURCE_TYPES.get(parts[3].lower()) if len(parts) > 3 else None
        resource_id = context.resource_id or (parts[4] if len(parts) > 4 and parts[4] else None)
        error = context.error
        user_agent = headers.get(b"user-agent")
        entry = provisioning_log.LogEntry(
            at=utcnow(),
            method=scope["method"],
            path=path,
            resource_type=resource_type,
            resource_id=resource_id,
            status=status,
            scim_type=error.scim_type.value if error and error.scim_type else None,
            detail=error.detail if error else None,
            duration_ms=(time.perf_counter() - started) * 1000,
            user_agent=user_agent.decode("latin-1") if user_agent else None,
            request_id=context.request_id,
            client_quirks=",".join(sorted(set(context.quirks))) or None,
        )
        self.log_buffer.add(tenant_id, entry, claimed=claimed)
        for extra in context.log_entries:
            self.log_buffer.add(tenant_id, extra, claimed=claimed)


async def _read_body(
    scope: Scope, receive: Receive, headers: dict[bytes, bytes], limit: int
) -> bytes:
    """Read the request body; 413 as soon as it is known to exceed the limit."""
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ScimError.payload_too_large(limit)
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ScimError.payload_too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _routing_error(error: HTTPException, scope: Scope) -> ScimError:
    if error.status_code == 405:
        return ScimError(405, f"{scope['method']} is not allowed on {scope['path']}")
    if error.status_code == 404:
        return ScimError(404, f"{scope['path']} is not a SCIM endpoint of this server")
    return ScimError(error.status_code, str(error.detail))


def context_of(scope: MutableMapping[str, Any]) -> ScimContext:
    context: ScimContext = scope[SCOPE_KEY]
    return context
