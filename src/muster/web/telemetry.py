"""SiteTelemetry: request id and metrics for the routes outside /scim/v2 (probes, /metrics)."""

from __future__ import annotations

import logging
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from muster.web import request_ids
from muster.web.metrics import CONTENT_TYPE, UNMATCHED, Metrics

logger = logging.getLogger("muster.web")


class SiteTelemetry:
    """ASGI middleware: X-Request-Id on every response, each request counted by route template.

    (The SCIM pipeline does the same for /scim/v2 itself, in its one middleware.)
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = next((v for k, v in scope["headers"] if k == request_ids.HEADER), None)
        send_with_id = request_ids.TaggedSend(send, request_ids.begin(incoming), status=500)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")  # set by the router: the template, never the raw path
            template = getattr(route, "path", None) or UNMATCHED
            status = send_with_id.status
            self.metrics.observe_request(
                scope["method"], template, status, time.perf_counter() - started
            )
            if status == 503 and template != "/readyz":
                # Refused for want of a database: one process-log line each, and a metric.
                reason = scope.get("muster.refusal") or "unavailable"
                logger.warning(
                    "refused %s %s with 503 (%s)",
                    scope["method"],
                    template,
                    reason,
                    extra={"reason": reason, "status": 503},
                )
                self.metrics.observe_refusal(reason)


async def metrics_endpoint(request: Request) -> Response:
    """GET /metrics: the Prometheus text exposition of every worker process's metrics."""
    metrics: Metrics = request.app.state.wiring.metrics
    return Response(metrics.render(), media_type=CONTENT_TYPE)
