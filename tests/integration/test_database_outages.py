"""When the database cannot serve: 503 with Retry-After (never a 500, never a hang), /healthz
unaffected, /readyz not ready within 2 s, and recovery without a restart.

One test per failure mode: a lock wait, a statement timeout, a refused or lost connection, a
frozen server, a read-only database and a full disk. PostgreSQL's server is reached through a
loopback relay the test can cut or freeze (tests/tcp_proxy.py), never stopped itself.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from muster.app import create_app
from muster.config import Settings
from muster.db.engine import normalise_url, open_drivers
from muster.db.schema import head_revision
from muster.db.tables import Base
from muster.scim.records import TenantInfo
from muster.services import admins, api_tokens, provisioning_log
from muster.services.database import Database
from tests.conftest import POSTGRES_URL
from tests.console_factories import ConsoleClient, cheap_password_hasher, given_admin
from tests.factories import OKTA_HEADERS, build_user, given_tenant, patch_op
from tests.tcp_proxy import TcpProxy

USERS = "/scim/v2/Users"
postgres_only = pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL only: it has a server")
sqlite_only = pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite only: a file of its own")


def _settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "create_demo_tenant": False,
        "log_flush_seconds": 0.05,
        "sqlite_busy_timeout_ms": 300,
        "db_lock_timeout_ms": 300,
        "db_pool_timeout": 1,
        **overrides,
    }
    return Settings(**values)


def _stamp(engine: Engine) -> None:
    """Mark a database made by create_all as migrated, so /readyz can say ready."""
    with engine.begin() as conn:
        conn.execute(
            text("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL)")
        )
        conn.execute(text("DELETE FROM alembic_version"))
        conn.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": head_revision()})


@pytest.fixture
def stamped(engine: Engine) -> Engine:
    _stamp(engine)
    return engine


@contextlib.contextmanager
def _client(settings: Settings) -> Iterator[tuple[TestClient, Database]]:
    """The app on its own Database, once its first heartbeat found the database ready."""
    database = Database(settings)
    try:
        with TestClient(create_app(settings, database=database)) as client:
            ready = _until(lambda: client.get("/readyz"), lambda r: r.status_code == 200, 10)
            assert ready.status_code == 200, ready.text
            yield client, database
    finally:
        database.dispose()


def _given_token(database: Database) -> tuple[TenantInfo, dict[str, str]]:
    tenant = given_tenant(database.uow())
    token = api_tokens.issue_scim_token(database.uow(), tenant.slug).secret
    return tenant, {**OKTA_HEADERS, "Authorization": f"Bearer {token}"}


def _until(probe: Callable[[], Any], accept: Callable[[Any], bool], seconds: float) -> Any:
    """Call probe() until accept(its result), for at most `seconds`; return the last result."""
    deadline = time.monotonic() + seconds
    while True:
        result = probe()
        if accept(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def _assert_unavailable(response: Any, reason_words: str) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    body = response.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["status"] == "503" and "scimType" not in body
    assert reason_words in body["detail"], body["detail"]


def _healthz_ms(client: TestClient) -> float:
    started = time.monotonic()
    assert client.get("/healthz").status_code == 200
    return (time.monotonic() - started) * 1000


# -- a lock wait ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _held_write_lock(database_url: str, user_id: str) -> Iterator[None]:
    """Another session holds what a PATCH of `user_id` must write: SQLite's write lock, or the
    user's row on PostgreSQL."""
    if database_url.startswith("sqlite"):
        path = make_url(database_url).database
        assert path is not None
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    plain = make_url(normalise_url(database_url)).set(drivername="postgresql")
    with psycopg.connect(plain.render_as_string(hide_password=False)) as holder:
        holder.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (user_id,))
        yield
        holder.rollback()


def test_a_lock_wait_past_its_timeout_is_503_and_healthz_stays_fast(
    database_url: str, stamped: Engine
) -> None:
    with _client(_settings(database_url)) as (client, database):
        _, headers = _given_token(database)
        _, others = _given_token(database)
        user = client.post(USERS, json=build_user(), headers=headers).json()
        deactivate = patch_op({"op": "replace", "value": {"active": False}})
        timings: list[float] = []
        with _held_write_lock(database_url, user["id"]):
            waiting: dict[str, Any] = {}
            writer = threading.Thread(
                target=lambda: waiting.update(
                    response=client.patch(f"{USERS}/{user['id']}", json=deactivate, headers=headers)
                )
            )
            started = time.monotonic()
            writer.start()
            while writer.is_alive() and time.monotonic() - started < 5:
                timings.append(_healthz_ms(client))
            writer.join()
            refused_after = time.monotonic() - started
            # Another tenant's reads go on meanwhile.
            assert client.get(USERS, headers=others).status_code == 200
        retried = client.patch(f"{USERS}/{user['id']}", json=deactivate, headers=headers)

    _assert_unavailable(waiting["response"], "lock")
    assert refused_after < 3  # the 300 ms lock timeout, not a hang
    assert max(timings) < 50, timings
    assert retried.status_code == 200 and retried.json()["active"] is False


# -- a statement timeout -------------------------------------------------------------------------


@postgres_only
def test_a_statement_past_the_statement_timeout_is_503_then_recovers(
    database_url: str, stamped: Engine
) -> None:
    settings = _settings(database_url, db_lock_timeout_ms=0, db_statement_timeout_ms=300)
    with _client(settings) as (client, database):
        _, headers = _given_token(database)
        user = client.post(USERS, json=build_user(), headers=headers).json()
        deactivate = patch_op({"op": "replace", "value": {"active": False}})
        with _held_write_lock(database_url, user["id"]):
            started = time.monotonic()
            refused = client.patch(f"{USERS}/{user['id']}", json=deactivate, headers=headers)
            waited = time.monotonic() - started
        retried = client.patch(f"{USERS}/{user['id']}", json=deactivate, headers=headers)

    _assert_unavailable(refused, "did not answer in time")
    assert waited < 3
    assert retried.status_code == 200


# -- a refused or lost connection, a frozen server (PostgreSQL, through a relay) ----------------


@pytest.fixture
def relay(postgres_engine: Engine | None, stamped: Engine) -> Iterator[tuple[TcpProxy, str]]:
    """A relay in front of the test database, and the database URL that goes through it."""
    url = make_url(normalise_url(POSTGRES_URL))
    with TcpProxy((url.host or "127.0.0.1", url.port or 5432)) as proxy:
        yield (
            proxy,
            url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
        )


@postgres_only
def test_connection_refused_or_lost_is_503_then_recovers_without_a_restart(
    relay: tuple[TcpProxy, str],
) -> None:
    proxy, url = relay
    with _client(_settings(url, db_connect_timeout_seconds=2)) as (client, database):
        _, headers = _given_token(database)
        assert client.get(USERS, headers=headers).status_code == 200
        proxy.refuse()  # the server goes away: pooled connections die, new ones are refused
        lost = client.get(USERS, headers=headers)
        refused = _until(lambda: client.get(USERS, headers=headers), lambda r: True, 0)
        started = time.monotonic()
        not_ready = _until(lambda: client.get("/readyz"), lambda r: r.status_code == 503, 5)
        noticed_after = time.monotonic() - started
        healthz = _healthz_ms(client)
        proxy.accept()
        started = time.monotonic()
        back = _until(
            lambda: client.get(USERS, headers=headers), lambda r: r.status_code == 200, 15
        )
        recovered_after = time.monotonic() - started
        ready = _until(lambda: client.get("/readyz"), lambda r: r.status_code == 200, 5)

    _assert_unavailable(lost, "cannot be reached")
    _assert_unavailable(refused, "cannot be reached")
    assert not_ready.status_code == 503 and noticed_after < 2
    assert not_ready.json()["status"] == "unreachable"
    assert healthz < 50
    assert back.status_code == 200 and recovered_after < 10
    assert ready.status_code == 200


@postgres_only
def test_a_frozen_database_is_refused_within_the_stall_time_then_recovers(
    relay: tuple[TcpProxy, str],
) -> None:
    proxy, url = relay
    with _client(_settings(url, db_connect_timeout_seconds=2)) as (client, database):
        _, headers = _given_token(database)
        assert client.get(USERS, headers=headers).status_code == 200
        proxy.freeze()  # the server answers nothing, and closes nothing (SIGSTOP)
        started = time.monotonic()
        stuck = client.get(USERS, headers=headers)  # in flight when the freeze began
        stuck_for = time.monotonic() - started
        started = time.monotonic()
        refused = client.get(USERS, headers=headers)  # arrives during the stall
        refused_for = time.monotonic() - started
        not_ready = client.get("/readyz")
        healthz = max(_healthz_ms(client) for _ in range(20))
        proxy.thaw()
        back = _until(
            lambda: client.get(USERS, headers=headers), lambda r: r.status_code == 200, 15
        )
        ready = _until(lambda: client.get("/readyz"), lambda r: r.status_code == 200, 5)

    _assert_unavailable(stuck, "")
    assert stuck_for < 3  # the 1 s stall threshold and the interrupt, not the 10 s timeout
    _assert_unavailable(refused, "not answering")
    assert refused_for < 0.5
    assert not_ready.status_code == 503 and not_ready.json()["status"] == "stalled"
    assert healthz < 50
    assert back.status_code == 200 and ready.status_code == 200


# -- SQLite: read-only, full disk ----------------------------------------------------------------


def _writes_again(client: TestClient, headers: dict[str, str]) -> tuple[Any, Any]:
    """A create that succeeds, and /readyz at 200, each awaited for up to 5 s."""
    back = _until(
        lambda: client.post(USERS, json=build_user(), headers=headers),
        lambda r: r.status_code == 201,
        5,
    )
    return back, _until(lambda: client.get("/readyz"), lambda r: r.status_code == 200, 5)


def _on_every_connection(database: Database, statement: str) -> Callable[[], None]:
    """Run a PRAGMA on every SQLite connection the app has or will open (the heartbeat's too);
    return the undo of the listener (the PRAGMA itself is undone by the caller)."""
    engines = [database.engine, database.health._beat_engine]

    def apply(driver: Any, _record: Any = None) -> None:
        driver.execute(statement)

    for engine in engines:
        assert engine is not None
        event.listen(engine, "connect", apply)
        for driver in open_drivers(engine).all():
            with contextlib.suppress(sqlite3.ProgrammingError):  # closed meanwhile
                apply(driver)

    def undo() -> None:
        for engine in engines:
            event.remove(engine, "connect", apply)

    return undo


@sqlite_only
def test_a_read_only_sqlite_database_refuses_writes_with_503_and_serves_reads(
    database_url: str, stamped: Engine
) -> None:
    # Simulated at the driver: root writes through file permissions, and a read-only remount
    # fails while the file is open. `query_only` makes SQLite refuse every write with
    # SQLITE_READONLY, exactly as a read-only file does.
    with _client(_settings(database_url)) as (client, database):
        _, headers = _given_token(database)
        assert client.post(USERS, json=build_user(), headers=headers).status_code == 201
        undo = _on_every_connection(database, "PRAGMA query_only = ON")
        started = time.monotonic()
        not_ready = _until(lambda: client.get("/readyz"), lambda r: r.status_code == 503, 5)
        noticed_after = time.monotonic() - started
        refused = client.post(USERS, json=build_user(), headers=headers)
        read = client.get(USERS, headers=headers)
        undo()
        _on_every_connection(database, "PRAGMA query_only = OFF")()
        back, ready = _writes_again(client, headers)

    _assert_unavailable(refused, "read-only")
    assert read.status_code == 200 and read.json()["totalResults"] == 1
    assert not_ready.json()["status"] == "read_only" and noticed_after < 2
    assert back.status_code == 201 and ready.status_code == 200


@contextlib.contextmanager
def _small_file_system(tmp_path: Path) -> Iterator[Path | None]:
    """A 16 MiB tmpfs mounted for this test, or None where mounting is not allowed."""
    mount_point = tmp_path / "small-fs"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        yield None
        return
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    with filler.open("wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * (1 << 16))
            out.flush()
            os.fsync(out.fileno())
    return filler


@sqlite_only
def test_a_full_disk_refuses_writes_with_503_then_recovers(tmp_path: Path) -> None:
    with _small_file_system(tmp_path) as folder:
        simulated = folder is None
        folder = folder or tmp_path
        url = f"sqlite:///{folder / 'full.db'}"
        made = Database(Settings(database_url=url))
        Base.metadata.create_all(made.engine)
        _stamp(made.engine)
        made.dispose()
        with _client(_settings(url)) as (client, database):
            _, headers = _given_token(database)
            assert client.post(USERS, json=build_user(), headers=headers).status_code == 201
            if simulated:
                # No file system of our own to fill: cap the file at its size instead, which
                # SQLite reports as SQLITE_FULL just as a full disk.
                undo = _on_every_connection(database, "PRAGMA max_page_count = 1")
                filler = None
            else:
                filler = _fill(folder)
            # Several pages of SQLite's at once, within every attribute's length limit.
            big = build_user(
                displayName="x" * 250,
                addresses=[{"type": f"t{i}", "streetAddress": "y" * 250} for i in range(60)],
            )
            refused = _until(
                lambda: client.post(USERS, json=big, headers=headers),
                lambda r: r.status_code == 503,
                5,
            )
            started = time.monotonic()
            not_ready = _until(lambda: client.get("/readyz"), lambda r: r.status_code == 503, 5)
            noticed_after = time.monotonic() - started
            read = client.get(USERS, headers=headers)
            if filler is not None:
                filler.unlink()
            else:
                undo()
                _on_every_connection(database, "PRAGMA max_page_count = 1073741823")()
            back, ready = _writes_again(client, headers)

    _assert_unavailable(refused, "full")
    assert read.status_code == 200
    assert not_ready.json()["status"] == "disk_full" and noticed_after < 2
    assert back.status_code == 201 and ready.status_code == 200


def test_requests_refused_in_an_outage_reach_the_log_once_it_is_over(
    database_url: str, stamped: Engine
) -> None:
    with _client(_settings(database_url)) as (client, database):
        tenant, headers = _given_token(database)
        user = client.post(USERS, json=build_user(), headers=headers).json()
        deactivate = patch_op({"op": "replace", "value": {"active": False}})
        with _held_write_lock(database_url, user["id"]):
            refused = client.patch(f"{USERS}/{user['id']}", json=deactivate, headers=headers)
        request_id = refused.headers["X-Request-Id"]
        entries = _until(
            lambda: provisioning_log.list_entries(database.uow(tenant.tenant_id), failed_only=True),
            lambda found: any(e.request_id == request_id for e in found),
            5,
        )

    assert refused.status_code == 503
    assert any(e.request_id == request_id and e.status == 503 for e in entries)


# -- every surface says 503 with Retry-After, and leaves a trace --------------------------------


@contextlib.contextmanager
def _stalled(database: Database) -> Iterator[None]:
    """As if the heartbeat had found the database frozen: requests needing it are refused."""
    health = database.health
    health._stalled = True
    try:
        yield
    finally:
        health._stalled = False


def test_a_stalled_database_is_a_503_page_json_error_and_log_line_everywhere(
    database_url: str,
    stamped: Engine,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(admins, "_hasher", cheap_password_hasher())
    with _client(_settings(database_url)) as (client, database):
        tenant, headers = _given_token(database)
        events_key = api_tokens.issue_events_key(database.uow(), tenant.slug).secret
        admin = ConsoleClient(client)
        assert admin.sign_in(given_admin(database.uow(), tenant.slug)).status_code == 303
        with _stalled(database), caplog.at_level("WARNING"):
            scim = client.get(USERS, headers=headers)
            console = client.get("/console/users")  # the session is looked up first
            events = client.get("/api/v1/events", headers={"Authorization": f"Bearer {events_key}"})
            sso = client.get(f"/sso/{tenant.slug}/")
            healthz = client.get("/healthz")
        metrics = client.get("/metrics").text

    _assert_unavailable(scim, "not answering")
    for page in (console, sso):
        assert page.status_code == 503 and page.headers["Retry-After"] == "5"
        assert "Temporarily unavailable" in page.text and "not answering" in page.text
    assert events.status_code == 503 and events.headers["Retry-After"] == "5"
    assert events.json()["error"] == "unavailable" and "not answering" in events.json()["detail"]
    assert healthz.status_code == 200
    refused = [r for r in caplog.records if "with 503" in r.getMessage()]
    assert len(refused) == 4  # one process-log line per refused request
    assert 'muster_requests_refused_total{reason="stalled"} 4.0' in metrics
