"""create_app(settings) -> the ASGI application; wiring only, no logic."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import html
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from muster.config import Settings
from muster.cpu_affinity import pin_to_a_free_cpu
from muster.errors import ScimError
from muster.services.database import Database
from muster.services.paging import CursorKeyring
from muster.web.asgi import MusterApp
from muster.web.blocking import BlockingPool
from muster.web.console.routes import attach_console, console_routes
from muster.web.events_api.routes import EVENTS_PATH, events_api_routes
from muster.web.failed_auth import FailedAuthentications
from muster.web.metrics import Metrics
from muster.web.scim_api.routes import scim_app
from muster.web.sso.routes import attach_sso, sso_routes
from muster.web.telemetry import SiteTelemetry, metrics_endpoint
from muster.web.templates import UNAVAILABLE_RETRY_AFTER
from muster.web.wiring import Wiring

logger = logging.getLogger("muster.web")
# At shutdown: how long the last provisioning log entries and rate-limit counts may take.
SHUTDOWN_WRITE_SECONDS = 10.0


async def healthz(request: Request) -> Response:
    """The process is up (liveness). Never touches the database: a database outage must not
    get every instance restarted."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """The database answers, takes writes and is at the newest migration (readiness).

    Read from the heartbeat (db/health.py) at once: this probe never waits on the database.
    """
    database: Database = request.app.state.database
    health = database.health.health
    if health.is_ready:
        return JSONResponse({"status": "ready"})
    return JSONResponse(
        {"status": health.status, "detail": health.detail},
        status_code=503,
        headers={"Retry-After": UNAVAILABLE_RETRY_AFTER},
    )


async def refused(request: Request, error: Exception) -> Response:
    """A ScimError a console, SSO or events API handler let through: its status and detail.

    In practice a 503: the database could not serve the page now. Say so, and when to retry.
    """
    assert isinstance(error, ScimError)
    headers = {"Cache-Control": "no-store"}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    request.scope["muster.refusal"] = error.reason
    if request.url.path.startswith(EVENTS_PATH):
        code = "unavailable" if error.status == 503 else "error"
        body = orjson.dumps({"error": code, "detail": error.detail})
        return Response(body, error.status, headers, media_type="application/json")
    title = "Temporarily unavailable" if error.status == 503 else "Not done"
    page = (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{title}</title>"
        f"<h1>{title}</h1><p>{html.escape(error.detail)}.</p>"
        "<p>Nothing you did caused this. Reload the page in a few seconds.</p></html>"
    )
    return HTMLResponse(page, status_code=error.status, headers=headers)


def create_served_app() -> MusterApp:
    """The app of one `muster serve` worker process: on a CPU of its own, then create_app()."""
    settings = Settings()
    if settings.pin_cpu:
        pin_to_a_free_cpu()
    return create_app(settings)


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
    blocking = BlockingPool(
        database.request_threads,
        queue_timeout=settings.db_pool_timeout,
        call_timeout=settings.request_timeout_seconds,
        is_stalled=lambda: database.health.is_stalled,
    )
    failed_auth = FailedAuthentications(
        settings.auth_failures_per_window, settings.auth_failure_window_seconds, metrics
    )
    configured_keys = settings.cursor_keys
    keyring = CursorKeyring(
        configured_keys.get_secret_value() if configured_keys is not None else None, database.uow
    )
    wiring = Wiring(
        settings=settings,
        uow_factory=database.uow,
        blocking=blocking,
        failed_auth=failed_auth,
        cursor_keyring=keyring,
        metrics=metrics,
    )
    scim = scim_app(wiring)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Everything loaded so far (SQLAlchemy, pydantic, scim2-models...) lives as long as the
        # process: keep it out of the garbage collector's scans, which otherwise walk those
        # hundreds of thousands of objects on every full collection.
        gc.freeze()
        database.health.start()
        yield
        # The last provisioning log entries and rate-limit counts, off the loop and bounded:
        # a database that is down at shutdown must not hold the process.
        try:
            await asyncio.wait_for(
                asyncio.to_thread(scim.stop, SHUTDOWN_WRITE_SECONDS),
                SHUTDOWN_WRITE_SECONDS * 2,
            )
        except TimeoutError:
            logger.error("the last provisioning log entries could not be written at shutdown")
        metrics.process_exited()
        blocking.close()
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
        exception_handlers={ScimError: refused},
        lifespan=lifespan,
    )
    site.state.wiring = wiring
    site.state.database = database
    attach_console(site.state, wiring)
    attach_sso(site.state, wiring)
    return MusterApp(site, scim)
