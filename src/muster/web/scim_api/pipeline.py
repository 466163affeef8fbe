"""ScimPipeline: the one middleware of /scim/v2: request id, auth, errors, provisioning log."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from muster.errors import ScimError
from muster.services import provisioning_log
from muster.services.clock import utcnow
from muster.services.database import UnitOfWork
from muster.web.scim_api.auth import authenticate, claimed_tenant
from muster.web.scim_api.log_buffer import LogBuffer
from muster.web.scim_api.responses import error_response
from muster.web.wiring import Wiring

logger = logging.getLogger("muster.scim")
SCOPE_KEY = "muster.scim"
_RESOURCE_TYPES = {"users": "User", "groups": "Group"}


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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        request_id = secrets.token_hex(8)
        context = ScimContext(
            request_id, _base_url(scope, headers, self.wiring.settings.public_url)
        )
        scope[SCOPE_KEY] = context
        status = 500
        request_id_header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), request_id_header]
            await send(message)

        authorization = headers.get(b"authorization", b"").decode("latin-1") or None
        claimed = claimed_tenant(authorization)
        uow = context.uow = (
            self.wiring.request_uow_factory(claimed) if claimed is not None else None
        )
        try:
            try:
                # No tenant in the token: authentication fails before touching the database.
                principal = authenticate(authorization, uow or self.wiring.uow_factory(None))
                context.tenant_id = principal.tenant_id
                await self.app(scope, receive, send_with_id)
            except HTTPException as error:  # routing: unknown path or method
                raise _routing_error(error, scope) from None
        except ScimError as error:
            context.error = error
            await error_response(error)(scope, receive, send_with_id)
        except Exception:
            logger.exception(
                "unhandled error in %s %s (request %s)", scope["method"], scope["path"], request_id
            )
            context.error = ScimError(500, f"internal error; quote request id {request_id}")
            await error_response(context.error)(scope, receive, send_with_id)
        finally:
            if uow is not None:
                uow.close()
            self._record(scope, headers, context, status, authorization, started)

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


def _routing_error(error: HTTPException, scope: Scope) -> ScimError:
    if error.status_code == 405:
        return ScimError(405, f"{scope['method']} is not allowed on {scope['path']}")
    if error.status_code == 404:
        return ScimError(404, f"{scope['path']} is not a SCIM endpoint of this server")
    return ScimError(error.status_code, str(error.detail))


def context_of(scope: MutableMapping[str, Any]) -> ScimContext:
    context: ScimContext = scope[SCOPE_KEY]
    return context
