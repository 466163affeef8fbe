"""create_app(settings) -> the ASGI application; wiring only, no logic."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from muster.config import Settings
from muster.services.database import Database
from muster.web.asgi import MusterApp
from muster.web.console.routes import attach_console, console_routes
from muster.web.events_api.routes import events_api_routes
from muster.web.metrics import Metrics
from muster.web.scim_api.routes import scim_app
from muster.web.sso.routes import attach_sso, sso_routes
from muster.web.telemetry import SiteTelemetry, metrics_endpoint
from muster.web.wiring import Wiring


async def healthz(request: Request) -> Response:
    """The process is up (liveness)."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """The database answers and its schema is at the newest migration (readiness)."""
    database: Database = request.app.state.database
    try:
        is_current = database.is_current()
    except Exception:  # any failure to reach the database means "not ready", not a 500
        return JSONResponse({"status": "database unreachable"}, status_code=503)
    if not is_current:
        return JSONResponse({"status": "migrations pending"}, status_code=503)
    return JSONResponse({"status": "ready"})


def create_app(
    settings: Settings | None = None, *, database: Database | None = None, engine: Any = None
) -> MusterApp:
    """Build Muster's web application; the database must already be migrated."""
    settings = settings or Settings()
    database = database or Database(settings, engine=engine)
    metrics = Metrics()
    pool_size = database.watch_pool(metrics.observe_pool)
    if pool_size is not None:
        metrics.pool_size.set(pool_size)
    wiring = Wiring(
        settings=settings,
        uow_factory=database.uow,
        request_uow_factory=database.request_uow,
        metrics=metrics,
    )
    scim = scim_app(wiring)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Everything loaded so far (SQLAlchemy, pydantic, scim2-models...) lives as long as the
        # process: keep it out of the garbage collector's scans, which otherwise walk those
        # hundreds of thousands of objects on every full collection.
        gc.freeze()
        yield
        scim.log_buffer.flush()  # the last batch of provisioning log entries
        scim.rate_limits.sync()
        metrics.process_exited()
        database.close_idle_connections()

    site = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/", lambda request: RedirectResponse("/console/"), methods=["GET"]),
            *console_routes(),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            *sso_routes(),
            *events_api_routes(),
        ],
        middleware=[Middleware(SiteTelemetry, metrics=metrics)],
        lifespan=lifespan,
    )
    site.state.wiring = wiring
    site.state.database = database
    attach_console(site.state, wiring)
    attach_sso(site.state, wiring)
    return MusterApp(site, scim)
