"""ScimPipeline: the one middleware of /scim/v2: request id, auth, errors, provisioning log.

Where a request's work runs, in one place. On the event loop: read the body (bounded), match
the route, and write the answer. In one thread of the blocking pool (web/blocking.py), in one
call: the request's unit of work, whose one transaction holds authentication, the rate limit
and the handler with its service, on one connection given back when it ends. A streamed group
body pulls its member batches through the same thread, one call per batch. Nothing of the
database, and no CPU work that grows with the input, ever runs on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from muster.errors import ScimError
from muster.services import provisioning_log
from muster.services.api_tokens import Principal, token_proof
from muster.services.clock import utcnow
from muster.services.database import UnitOfWork
from muster.web import request_ids
from muster.web.blocking import BlockingPool, Slot
from muster.web.scim_api.auth import authenticate, bearer_token, claimed_tenant
from muster.web.scim_api.log_buffer import LogBuffer
from muster.web.scim_api.rate_limiting import RateLimitGate
from muster.web.scim_api.responses import StreamedResponse, error_response
from muster.web.wiring import Wiring

logger = logging.getLogger("muster.scim")
SCOPE_KEY = "muster.scim"
_RESOURCE_TYPES = {"users": "User", "groups": "Group"}
_READ_METHODS = frozenset({"GET", "HEAD"})
Endpoint = Callable[[Request], Response]


@dataclass(slots=True)
class ScimContext:
    """Per-request facts the handlers and the log share."""

    request_id: str
    base_url: str
    tenant_id: str | None = None
    principal: Principal | None = None
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

    def __init__(self, routes: list[Route], wiring: Wiring) -> None:
        self.routes = routes
        # Routes by their path's first segment ("Users", "Groups", ".search"...): a request is
        # matched against its few, not all thirty (Starlette's router tries them in turn).
        self._by_segment: dict[str, list[Route]] = {}
        for route in routes:
            self._by_segment.setdefault(_first_segment(route.path), []).append(route)
        self.wiring = wiring
        self.pool: BlockingPool = wiring.blocking
        self.log_buffer = LogBuffer(wiring)
        self.rate_limits = RateLimitGate(wiring)
        self.failed_auth = wiring.failed_auth
        self._body_limit = wiring.settings.max_body_bytes
        self._stream_timeout = wiring.settings.request_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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
        address = _client_address(scope)
        try:
            try:
                # An address that keeps sending bad credentials is refused before any work.
                self.failed_auth.admit(address)
                has_body = scope["method"] not in _READ_METHODS
                if has_body:
                    # Read the whole body before any thread or lock is taken: a slow client
                    # holds nothing but its own connection.
                    context.body = await _read_body(scope, receive, headers, self._body_limit)
                if claimed is None:
                    # No tenant in the token: refused before any database work.
                    authenticate(authorization, self.wiring.uow_factory(None))
                endpoint = self._match(scope)
                uow = context.uow = self.wiring.uow_factory(claimed)
                # POST /.search carries a body but only reads (RFC 7644 §3.4.3).
                is_write = has_body and not scope["path"].endswith("/.search")
                async with self.pool.slot(claimed) as slot:
                    response = await slot.call(
                        self._serve,
                        scope,
                        context,
                        uow,
                        authorization,
                        is_write,
                        endpoint,
                        on_abandon=uow.cancel,
                    )
                    if isinstance(response, StreamedResponse):
                        await self._stream(response, slot, send_with_id)
                        return
                await response(scope, receive, send_with_id)
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
            # Not started yet; a streamed body that failed midway can only be cut short.
            if context.error is not None and send_with_id.status == 0:
                await error_response(context.error, request_id)(scope, receive, send_with_id)
        finally:
            await self._finish(
                scope, headers, context, send_with_id.status, authorization, address, started
            )

    def _match(self, scope: Scope) -> Endpoint | ScimError:
        """The route's endpoint (path parameters go into the scope), or the routing error to
        answer once the token is known good."""
        allowed = None
        for route in self._by_segment.get(_first_segment(_route_path(scope)), ()):
            match, child = route.matches(scope)
            if match is Match.FULL:
                scope.update(child)
                endpoint: Endpoint = route.endpoint
                return endpoint
            if match is Match.PARTIAL and allowed is None:
                allowed = route
        if allowed is not None:
            return ScimError(405, f"{scope['method']} is not allowed on {scope['path']}")
        return ScimError(404, f"{scope['path']} is not a SCIM endpoint of this server")

    def _serve(
        self,
        scope: Scope,
        context: ScimContext,
        uow: UnitOfWork,
        authorization: str | None,
        is_write: bool,
        endpoint: Endpoint | ScimError,
    ) -> Response:
        """In a pool thread: the request's one unit of work, from the token to the answer."""
        if not is_write:
            uow.reading()
        with uow:  # one transaction: authentication and the operation; rolled back unless
            # the service committed, and the connection given back, whatever happens
            principal = authenticate(authorization, uow)
            context.tenant_id = principal.tenant_id
            context.principal = principal
            self.rate_limits.admit(principal)
            if isinstance(endpoint, ScimError):  # routing: an unknown path or method
                raise endpoint
            return endpoint(Request(scope))

    async def _stream(self, response: StreamedResponse, slot: Slot, send: Send) -> None:
        """Send a streamed body, each chunk read in the slot's thread; bounded in time."""
        chunks = response.chunks
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": response.raw_headers,
                }
            )
            async with asyncio.timeout(self._stream_timeout):
                while True:
                    chunk = await slot.call(next, chunks, None)
                    if chunk is None:
                        break
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            # Ends the body's read transaction and gives its connection back, even when the
            # client went away or the request was cancelled.
            slot.call_soon(_close, chunks)

    async def _finish(
        self,
        scope: Scope,
        headers: dict[bytes, bytes],
        context: ScimContext,
        status: int,
        authorization: str | None,
        address: str,
        started: float,
    ) -> None:
        status = status or 500
        if context.principal is not None:
            self.log_buffer.note_use(context.principal)
        error = context.error
        if error is not None and error.status == 401:
            # No tenant proven: the process log and a metric, never a tenant's log.
            self.failed_auth.record(
                address, scope["method"], scope["path"], context.request_id, error.detail
            )
        if error is not None and error.status == 503:
            # Refused for want of a database (an outage, a lock, a full pool): the tenant's log
            # may not take it yet, so it always leaves a process-log line and a metric.
            logger.warning(
                "refused %s %s with 503 (%s): %s",
                scope["method"],
                scope["path"],
                error.reason,
                error.detail,
                extra={"reason": error.reason, "status": 503},
            )
            self.wiring.metrics.observe_refusal(error.reason)
        self._record(scope, headers, context, status, authorization, started)
        self.wiring.metrics.observe_scim(scope["method"], scope["path"], status, error, started)
        if self.log_buffer.writes_at_once:
            # No thread free (ScimError): the entries wait for the next request's flush.
            with contextlib.suppress(ScimError):
                await self.pool.run(self.log_buffer.flush)

    def _record(
        self,
        scope: Scope,
        headers: dict[bytes, bytes],
        context: ScimContext,
        status: int,
        authorization: str | None,
        started: float,
    ) -> None:
        tenant_id, proof = context.tenant_id, None
        if tenant_id is None:
            # Refused before its token was checked (the database was down, the body too
            # large): the tenant the token names sees it only if the token is its live one,
            # checked when the entry is written. A 401 proved no tenant: nobody's log.
            error = context.error
            token = bearer_token(authorization)
            tenant_id = claimed_tenant(authorization)
            if error is None or error.status == 401 or token is None or tenant_id is None:
                return
            proof = token_proof(token)
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
        self.log_buffer.add(tenant_id, entry, token_proof=proof)
        for extra in context.log_entries:
            self.log_buffer.add(tenant_id, extra, token_proof=proof)

    def stop(self, timeout: float) -> None:
        """At shutdown: write what waits (the log, the rate-limit counts), within `timeout`."""
        self.log_buffer.writer.stop(timeout)
        self.log_buffer.flush()
        self.rate_limits.writer.stop(timeout)
        self.rate_limits.sync()


def _client_address(scope: Scope) -> str:
    """The client's address (uvicorn puts a trusted proxy's X-Forwarded-For there)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _route_path(scope: Scope) -> str:
    """The path below /scim/v2 (the root path), as the routes are written."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _first_segment(path: str) -> str:
    return path.lstrip("/").split("/", 1)[0]


def _close(chunks: Iterator[bytes]) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


async def _read_body(
    scope: Scope, receive: Receive, headers: dict[bytes, bytes], limit: int
) -> bytes:
    """Read the request body; 413 as soon as it is known to exceed the limit."""
    declared = headers.get(b"content-length")
    # isascii(): "²" is a digit to isdigit() and not to int().
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
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


def context_of(scope: MutableMapping[str, Any]) -> ScimContext:
    context: ScimContext = scope[SCOPE_KEY]
    return context
