"""UnitOfWork: one transaction, rolled back unless committed; one connection per request, given
back whatever happens to the request (an error, a cancellation, a client that goes away)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, event
from starlette.testclient import TestClient

from muster.app import create_app
from muster.config import Settings
from muster.db import fast_exec
from muster.errors import ScimError
from muster.scim.records import TenantInfo
from muster.services.database import Database, UnitOfWork
from tests.factories import OKTA_HEADERS, build_user
from tests.group_factories import given_group, given_users, members

# -- the transaction ---------------------------------------------------------------------------


def _seats(uow_factory: Callable[..., UnitOfWork], tenant: TenantInfo) -> int:
    reader = uow_factory()
    with reader:
        stored = reader.tenants.get(tenant.tenant_id)
    assert stored is not None
    return stored.seat_limit


def test_commits_what_commit_ran(uow: UnitOfWork, uow_factory: Any, tenant: TenantInfo) -> None:
    with uow:
        uow.tenants.change(tenant.tenant_id, seat_limit=7)
        uow.commit()
    assert _seats(uow_factory, tenant) == 7


def test_rolls_back_uncommitted_work_by_default(
    uow: UnitOfWork, uow_factory: Any, tenant: TenantInfo
) -> None:
    with uow:
        uow.tenants.change(tenant.tenant_id, seat_limit=7)
    assert _seats(uow_factory, tenant) == 25


def test_rolls_back_on_error(uow: UnitOfWork, uow_factory: Any, tenant: TenantInfo) -> None:
    with pytest.raises(ValueError), uow:
        uow.tenants.change(tenant.tenant_id, seat_limit=7)
        raise ValueError("boom")
    assert _seats(uow_factory, tenant) == 25


def test_an_inner_with_joins_the_outer_transaction_and_its_error_ends_it(
    uow: UnitOfWork, uow_factory: Any, tenant: TenantInfo
) -> None:
    with uow:
        uow.tenants.change(tenant.tenant_id, seat_limit=7)
        with pytest.raises(ValueError), uow:
            uow.tenants.change(tenant.tenant_id, seat_limit=8)
            raise ValueError("boom")
        # The error rolled back the outer work too: the repositories are closed for good.
        with pytest.raises(RuntimeError):
            _ = uow.tenants
    assert _seats(uow_factory, tenant) == 25


def test_an_inner_commit_commits_the_outer_work(
    uow: UnitOfWork, uow_factory: Any, tenant: TenantInfo
) -> None:
    with uow:
        uow.tenants.change(tenant.tenant_id, seat_limit=6)
        with uow:
            uow.tenants.change(tenant.tenant_id, seat_limit=7)
            uow.commit()
    assert _seats(uow_factory, tenant) == 7


def test_repositories_exist_only_inside_with(uow: UnitOfWork) -> None:
    with pytest.raises(RuntimeError):
        _ = uow.users
    with uow:
        uow.commit()
        with pytest.raises(RuntimeError):  # the transaction ended with the commit
            _ = uow.users


def test_a_cancelled_unit_of_work_never_commits(
    uow: UnitOfWork, uow_factory: Any, tenant: TenantInfo
) -> None:
    with pytest.raises(ScimError) as refused, uow:
        uow.tenants.change(tenant.tenant_id, seat_limit=7)
        uow.cancel()  # the request was given up: its client was told nothing was written
        uow.commit()
    assert refused.value.status == 503
    assert _seats(uow_factory, tenant) == 25


# -- one connection per request, given back -----------------------------------------------------


class ConnectionsSeen:
    """The driver connections that ran statements, from the SQL they sent (either path)."""

    def __init__(self, engine: Engine) -> None:
        self.drivers: set[int] = set()
        self._engine = engine
        self._call = fast_exec._call

    def __enter__(self) -> ConnectionsSeen:
        event.listen(self._engine, "before_cursor_execute", self._on_execute)
        original = self._call

        def _call(conn: Any, prepared: Any, arguments: Any, method: str) -> Any:
            self.drivers.add(id(conn.connection.driver_connection))
            return original(conn, prepared, arguments, method)

        fast_exec._call = _call
        return self

    def __exit__(self, *_: Any) -> None:
        event.remove(self._engine, "before_cursor_execute", self._on_execute)
        fast_exec._call = self._call

    def _on_execute(self, conn: Any, *_: Any) -> None:
        self.drivers.add(id(conn.connection.driver_connection))


@pytest.fixture
def quiet_settings(database_url: str) -> Settings:
    # No background writes during the measured request: log and rate limits wait a while.
    return Settings(
        database_url=database_url,
        create_demo_tenant=False,
        log_flush_seconds=30,
        rate_limit_requests=0,
    )


def test_one_request_runs_on_one_connection(
    quiet_settings: Settings, engine: Engine, scim_token: str
) -> None:
    app = create_app(quiet_settings, engine=engine)
    headers = {**OKTA_HEADERS, "Authorization": f"Bearer {scim_token}"}
    with TestClient(app, base_url="http://muster.test", headers=headers) as client:
        client.get("/scim/v2/Users?count=1")  # warm: the first request opens the shelf
        with ConnectionsSeen(engine) as seen:
            created = client.post("/scim/v2/Users", json=build_user())
        assert created.status_code == 201
    # Authentication, the seat, the user, its email rows and its event: one connection.
    assert len(seen.drivers) == 1


def _in_use(database: Database) -> int:
    """Connections lent to a request right now (not idle in the pool or on the shelf)."""
    pool: Any = database.engine.pool
    shelf: Any = database._shelf
    return int(pool.checkedout()) - (len(shelf._idle) if shelf is not None else 0)


@pytest.fixture
def served(quiet_settings: Settings, engine: Engine) -> Iterator[tuple[Any, Database]]:
    database = Database(quiet_settings)
    yield create_app(quiet_settings, database=database), database
    database.dispose()


def _asgi_request(
    app: Any, method: str, path: str, token: str, body: bytes = b"", on_send: Any = None
) -> tuple[Any, list[dict[str, Any]]]:
    """A coroutine of one ASGI request, and the messages it sends."""
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "server": ("muster.test", 80),
        "headers": [
            (b"host", b"muster.test"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/scim+json"),
        ],
    }
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            await asyncio.sleep(3600)
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if on_send is not None:
            await on_send(message)

    return app(scope, receive, send), sent


async def _until(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_a_cancelled_request_gives_its_thread_and_connection_back(
    served: tuple[Any, Database], scim_token: str, tenant: TenantInfo
) -> None:
    app, database = served
    blocking = app.state.wiring.blocking
    # Hold the tenant's seat row so the create waits on its lock, in its thread.
    blocker = database.uow(tenant.tenant_id)
    started = threading.Event()
    release = threading.Event()

    def hold_the_write_lock() -> None:
        with blocker:
            blocker.tenants.change(tenant.tenant_id, seat_limit=30)
            started.set()
            release.wait(10)
            blocker.commit()

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    started.wait(5)

    async def main() -> tuple[int, int]:
        request, _ = _asgi_request(app, "POST", "/scim/v2/Users", scim_token, _json(build_user()))
        task = asyncio.ensure_future(request)
        await _until(lambda: blocking.in_use == 1)
        task.cancel()  # the server shuts down, or the client's task is torn down
        await asyncio.sleep(0.1)
        held = blocking.in_use
        release.set()
        await _until(lambda: blocking.in_use == 0)
        await _until(lambda: _in_use(database) == 0)
        return held, _in_use(database)

    try:
        held, in_use = asyncio.run(main())
    finally:
        release.set()
        holder.join()
    assert held == 1  # the thread was not handed out while its call still ran
    assert in_use == 0


def test_a_client_that_goes_mid_stream_gives_the_connection_back(
    served: tuple[Any, Database], scim_token: str, uow: UnitOfWork
) -> None:
    app, database = served
    blocking = app.state.wiring.blocking
    people = given_users(uow, 3)
    group_id = given_group(uow, members=members(*(u.user_id for u in people))).group_id
    bodies = 0

    class Gone(Exception):
        pass

    async def hang_up(message: dict[str, Any]) -> None:
        nonlocal bodies
        if message["type"] == "http.response.body":
            bodies += 1
            if bodies == 2:
                # The socket closed under the server after the first batch of members: the
                # batches' read transaction is open, its connection held.
                raise Gone

    async def main() -> int:
        request, sent = _asgi_request(
            app, "GET", f"/scim/v2/Groups/{group_id}", scim_token, on_send=hang_up
        )
        await request  # a body that fails midway can only be cut short: nothing to re-raise
        assert sent[0]["status"] == 200 and bodies == 2
        await _until(lambda: blocking.in_use == 0)
        await _until(lambda: _in_use(database) == 0)
        return _in_use(database)

    assert asyncio.run(main()) == 0


def _json(value: Any) -> bytes:
    return orjson.dumps(value)
