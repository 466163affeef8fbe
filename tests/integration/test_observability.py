"""Operating Muster: /metrics, request ids in headers, error details and logs; DB settings."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from starlette.testclient import TestClient

from muster.app import create_app
from muster.config import Settings
from muster.db import schema
from muster.db.engine import make_engine, normalise_url
from muster.db.pool_usage import watch_pool
from muster.db.tables import Base
from muster.process_logs import JsonFormatter
from muster.scim.records import TenantInfo
from muster.services import api_tokens, provisioning_log, tenants
from muster.services.database import Database, UnitOfWork
from tests.conftest import POSTGRES_URL
from tests.factories import build_user
from tests.integration.test_operations import _free_port

USERS = "/scim/v2/Users"


def _samples(exposition: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


# /metrics


def test_metrics_count_requests_by_route_template_and_outcome_without_tenants(
    okta: TestClient, tenant: TenantInfo
) -> None:
    created = okta.post(USERS, json=build_user()).json()
    okta.get(f"{USERS}/{created['id']}")
    okta.get(f"{USERS}/no-such-user")
    okta.post(USERS, json=build_user(userName=created["userName"]))  # 409 uniqueness

    response = okta.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    exposition = response.text
    requests = _samples(exposition, "muster_http_requests_total")
    route = "/scim/v2/Users/{id}"
    assert requests[(("method", "GET"), ("route", route), ("status", "200"))] == 1
    assert requests[(("method", "GET"), ("route", route), ("status", "404"))] == 1
    assert requests[(("method", "POST"), ("route", "/scim/v2/Users"), ("status", "409"))] == 1
    outcomes = _samples(exposition, "muster_scim_operations_total")
    user_outcome = (("operation", "create"), ("outcome", "uniqueness"), ("resource_type", "User"))
    assert outcomes[user_outcome] == 1
    assert outcomes[(("operation", "get"), ("outcome", "404"), ("resource_type", "User"))] == 1
    latency = _samples(exposition, "muster_http_request_duration_seconds_count")
    assert latency[(("method", "POST"), ("route", "/scim/v2/Users"))] == 2
    # Bounded labels: no id, tenant or slug ever becomes a label value.
    for secret in (created["id"], tenant.tenant_id, tenant.slug, "no-such-user"):
        assert secret not in exposition


def test_metrics_count_the_probes_too(client: TestClient) -> None:
    client.get("/healthz")
    client.get("/nowhere")

    requests = _samples(client.get("/metrics").text, "muster_http_requests_total")

    assert requests[(("method", "GET"), ("route", "/healthz"), ("status", "200"))] == 1
    assert requests[(("method", "GET"), ("route", "unmatched"), ("status", "404"))] == 1


def test_metrics_show_the_database_pool(database_url: str, engine: Any) -> None:
    settings = Settings(database_url=database_url, log_flush_seconds=0)
    database = Database(settings)  # its own engine, whose pool the app watches
    try:
        with TestClient(create_app(settings, database=database)) as client:
            for _ in range(3):
                client.get("/readyz")
            exposition = client.get("/metrics").text
    finally:
        database.dispose()

    size = _samples(exposition, "muster_db_pool_size")[()]
    in_use = _samples(exposition, "muster_db_pool_checked_out")[()]
    # MUSTER_DB_POOL_SIZE on SQLite and PostgreSQL alike; the probes used no connection at all
    # (readiness comes from the heartbeat, which has a connection of its own).
    assert (size, in_use) == (5.0, 0.0)


def test_the_pool_watch_follows_checkouts_and_checkins(database_url: str, engine: Any) -> None:
    watched = make_engine(database_url)
    seen: list[int] = []
    try:
        size = watch_pool(watched, seen.append)
        first = watched.connect()
        second = watched.connect()
        first.execute(text("SELECT 1"))
        first.close()
        second.close()
    finally:
        watched.dispose()

    assert size == 5
    assert seen == [0, 1, 2, 1, 0]


# request ids


def test_every_response_carries_a_request_id(okta: TestClient) -> None:
    ids = {
        okta.get(path).headers["x-request-id"]
        for path in ("/healthz", "/metrics", USERS, f"{USERS}/nobody", "/nowhere")
    }
    assert len(ids) == 5 and all(len(i) == 16 for i in ids)


def test_a_sane_incoming_request_id_is_kept_and_an_insane_one_replaced(okta: TestClient) -> None:
    kept = okta.get(USERS, headers={"X-Request-Id": "lb-7f3a-0001"})
    replaced = okta.get(USERS, headers={"X-Request-Id": "x" * 200})
    probe = okta.get("/healthz", headers={"X-Request-Id": "lb-7f3a-0002"})

    assert kept.headers["x-request-id"] == "lb-7f3a-0001"
    assert replaced.headers["x-request-id"] != "x" * 200
    assert probe.headers["x-request-id"] == "lb-7f3a-0002"


def test_an_error_detail_quotes_the_request_id_and_the_log_keeps_the_plain_detail(
    okta: TestClient, uow: UnitOfWork
) -> None:
    response = okta.get(f"{USERS}/nobody", headers={"X-Request-Id": "okta-task-42"})

    assert response.status_code == 404
    assert response.json()["detail"] == "User 'nobody' not found (request id: okta-task-42)"
    entry = provisioning_log.list_entries(uow, limit=1)[0]
    assert (entry.request_id, entry.detail) == ("okta-task-42", "User 'nobody' not found")


def test_a_log_line_written_during_a_request_carries_its_id(
    okta: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from muster.services import users as user_service

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(user_service, "list_users", explode)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("muster.scim")
    logger.addHandler(handler)
    try:
        response = okta.get(USERS, headers={"X-Request-Id": "trace-500"})
    finally:
        logger.removeHandler(handler)

    assert response.status_code == 500
    assert response.json()["detail"] == "internal error (request id: trace-500)"
    line = orjson.loads(stream.getvalue().splitlines()[0])
    assert line["request_id"] == "trace-500" and "RuntimeError: boom" in line["exception"]


# database settings


def test_pool_and_statement_timeout_settings_reach_postgresql() -> None:
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL only: SQLite has no statement timeout (its busy timeout applies)")
    settings = Settings(
        database_url=POSTGRES_URL,
        db_pool_size=3,
        db_max_overflow=2,
        db_pool_timeout=4,
        db_statement_timeout_ms=200,
        db_lock_timeout_ms=150,
    )
    database = Database(settings)
    try:
        pool: Any = database.engine.pool
        # One more than the overflow asked for: the background writer's own connection.
        assert (pool.size(), pool._max_overflow, pool._timeout) == (3, 3, 4)
        with database.engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "200ms"
            assert conn.execute(text("SHOW lock_timeout")).scalar_one() == "150ms"
            idle = conn.execute(text("SHOW idle_in_transaction_session_timeout")).scalar_one()
            assert idle == "1min"
            conn.execute(text("SELECT pg_sleep(0.05)"))  # shorter than the timeout: fine
            started = time.monotonic()
            with pytest.raises(OperationalError, match="statement timeout"):
                conn.execute(text("SELECT pg_sleep(5)"))
            assert time.monotonic() - started < 3
    finally:
        database.dispose()


def test_every_database_wait_is_bounded_by_default() -> None:
    settings = Settings()
    assert settings.db_statement_timeout_ms == 10_000
    assert settings.db_lock_timeout_ms == 3_000
    assert settings.db_pool_timeout == 5
    assert settings.sqlite_busy_timeout_ms == 5_000
    assert settings.db_connect_timeout_seconds == 3
    assert settings.request_timeout_seconds == 30


def test_make_engine_sets_no_statement_timeout_unless_asked() -> None:
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL only: SQLite has no statement timeout (its busy timeout applies)")
    engine = make_engine(POSTGRES_URL)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "0"
    finally:
        engine.dispose()


# several workers


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
        return r.status, r.read()


@pytest.mark.slow
def test_metrics_add_up_every_worker_and_their_files_go_at_exit(tmp_path: Path) -> None:
    port = _free_port()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {
        **os.environ,
        "MUSTER_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
        "MUSTER_CREATE_DEMO_TENANT": "false",
        "TMPDIR": str(scratch),  # where the run's metrics directory is made
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    settings = Settings(database_url=env["MUSTER_DATABASE_URL"])
    database = Database(settings)
    database.upgrade()
    tenants.create_tenant(database.uow(), "acme", plan="enterprise", seats=5)
    token = api_tokens.issue_scim_token(database.uow(), "acme").secret
    database.dispose()
    server = subprocess.Popen(
        [sys.executable, "-m", "muster.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _get(f"{base}/readyz")[0] == 200:
                    break
            except OSError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "the server did not become ready"
                time.sleep(0.3)
        assert len(list(scratch.glob("muster-metrics-*"))) == 1
        for _ in range(12):
            assert _get(f"{base}{USERS}?count=1", token)[0] == 200
        # Both workers must be up for the pool gauge to add up (each keeps 5 connections), and
        # a request is counted just after its response went out, so poll until both settle.
        key = (("method", "GET"), ("route", USERS), ("status", "200"))
        deadline = time.monotonic() + 60
        while True:
            scrapes = [_get(f"{base}/metrics")[1].decode() for _ in range(6)]
            sizes = {_samples(s, "muster_db_pool_size")[()] for s in scrapes}
            counts = {_samples(s, "muster_http_requests_total")[key] for s in scrapes}
            if (sizes, counts) == ({10.0}, {12.0}) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        # Whichever worker answers the scrape, it reports both pools and all 12 requests.
        assert (sizes, counts) == ({10.0}, {12.0})
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=60)
    assert list(scratch.glob("muster-metrics-*")) == []
    for line in stderr.decode().splitlines():  # process logs are JSON lines
        assert isinstance(orjson.loads(line), dict)


def test_migrations_run_without_the_statement_timeout_and_leave_it_on_the_pool() -> None:
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL only: SQLite has no statement timeout (its busy timeout applies)")
    url = make_url(normalise_url(POSTGRES_URL))
    name = f"{url.database}_migrations"
    admin = make_engine(str(url.set(database="postgres")))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(
        str(url.set(database=name)), statement_timeout_ms=100, pool_size=1, max_overflow=0
    )
    try:
        schema.upgrade(engine)

        with engine.connect() as conn:  # the same pooled connection the migration used
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "100ms"
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        assert schema.current_revision(engine) == schema.head_revision()
    finally:
        engine.dispose()
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
