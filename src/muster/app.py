"""create_app(settings) -> the ASGI application; wiring only, no logic."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from muster.config import Settings
from muster.db.engine import make_engine
from muster.db.unit_of_work import UnitOfWork
from muster.web.scim_api.routes import scim_app
from muster.web.wiring import Wiring


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> Starlette:
    """Build Muster's web application; the database must already be migrated."""
    settings = settings or Settings()
    engine = engine or make_engine(
        settings.database_url, sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms
    )

    def uow_factory(tenant_id: str | None) -> UnitOfWork:
        return UnitOfWork(engine, tenant_id)

    wiring = Wiring(settings=settings, uow_factory=uow_factory)
    scim = scim_app(wiring)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        scim.log_buffer.flush()  # the last batch of provisioning log entries

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Mount("/scim/v2", app=scim),
        ],
        lifespan=lifespan,
    )
    app.state.wiring = wiring
    app.state.engine = engine
    return app
