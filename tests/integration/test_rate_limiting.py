"""Per-token rate limits over HTTP: 429 + Retry-After, shared by instances on one database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from muster.app import create_app
from muster.config import Settings
from muster.services import api_tokens, tenants
from muster.services.database import Database
from tests.integration.test_operations import _free_port

LIST = "/scim/v2/Users?count=1"
ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"


def _clear_of_a_window_end(window_seconds: int, margin: float) -> None:
    """Wait out the end of the current fixed window if it is near: the count starts over."""
    left = window_seconds - time.time() % window_seconds
    if left < margin:
        time.sleep(left + 0.1)


def _client(settings: Settings, engine: Engine, token: str, **limits: object) -> TestClient:
    app = create_app(settings.model_copy(update=limits), engine=engine)
    client = TestClient(app, base_url="http://muster.test")
    client.headers["Authorization"] = f"Bearer {token}"
    return client


@pytest.fixture
def clients(settings: Settings, engine: Engine, scim_token: str) -> Iterator[list[TestClient]]:
    """Two Muster instances on one database, as behind a load balancer (limit 10 per minute)."""
    limits = {
        "rate_limit_requests": 10,
        "rate_limit_window_seconds": 3600,
        "rate_limit_sync_seconds": 0.05,
    }
    first = _client(settings, engine, scim_token, **limits)
    second = _client(settings, engine, scim_token, **limits)
    with first, second:
        yield [first, second]


def test_a_token_over_its_limit_gets_429_with_retry_after(
    settings: Settings, engine: Engine, scim_token: str
) -> None:
    _clear_of_a_window_end(60, margin=10)
    with _client(settings, engine, scim_token, rate_limit_requests=3) as client:
        served = [client.get(LIST).status_code for _ in range(3)]
        refused = client.get(LIST)

    assert served == [200, 200, 200]
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    body = refused.json()
    assert body["schemas"] == [ERROR_URN] and body["status"] == "429"
    assert body["detail"].startswith("rate limit reached: 3 requests per 60 s for this token")
    assert body["detail"].endswith(f"(request id: {refused.headers['x-request-id']})")


def test_instances_each_under_the_limit_are_refused_together_over_it(
    clients: list[TestClient], engine: Engine
) -> None:
    statuses: list[list[int]] = [[], []]
    for _ in range(8):  # 8 each: under the limit of 10 alone, 16 together
        for index, client in enumerate(clients):
            statuses[index].append(client.get(LIST).status_code)
        time.sleep(0.2)  # each instance adds its count to the shared row every 0.05 s

    admitted = sum(s.count(200) for s in statuses)
    assert all(status in (200, 429) for s in statuses for status in s), statuses
    assert 429 in statuses[0] + statuses[1], statuses
    # At most what the other instance served since this one last learnt the total: here one.
    assert 10 <= admitted <= 11, statuses
    with engine.connect() as conn:
        shared = conn.execute(text("SELECT SUM(count) FROM rate_limits")).scalar_one()
    assert shared == admitted


def test_a_limit_of_zero_never_refuses(
    settings: Settings, engine: Engine, scim_token: str
) -> None:
    with _client(settings, engine, scim_token, rate_limit_requests=0) as client:
        statuses = {client.get(LIST).status_code for _ in range(40)}

    assert statuses == {200}


def test_requests_without_a_valid_token_are_not_counted_against_it(
    settings: Settings, engine: Engine, scim_token: str
) -> None:
    with _client(settings, engine, scim_token, rate_limit_requests=2) as client:
        refused = [
            client.get(LIST, headers={"Authorization": "Bearer mst_nope"}).status_code
            for _ in range(5)
        ]
        served = [client.get(LIST).status_code for _ in range(2)]

    assert refused == [401] * 5 and served == [200, 200]


def _status(url: str, token: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


@pytest.mark.slow
def test_two_muster_processes_share_one_limit(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'shared.db'}"
    database = Database(Settings(database_url=database_url))
    database.upgrade()
    tenants.create_tenant(database.uow(), "acme", plan="enterprise", seats=5)
    token = api_tokens.issue_scim_token(database.uow(), "acme").secret
    database.dispose()
    env = {
        **os.environ,
        "MUSTER_DATABASE_URL": database_url,
        "MUSTER_CREATE_DEMO_TENANT": "false",
        "MUSTER_RATE_LIMIT_REQUESTS": "10",
        "MUSTER_RATE_LIMIT_WINDOW_SECONDS": "3600",
    }
    ports = [_free_port(), _free_port()]
    log = (tmp_path / "servers.log").open("wb")
    servers = [
        subprocess.Popen(
            # One process each: the test counts what two processes overshoot, not four.
            [sys.executable, "-m", "muster.cli", "serve", "--port", str(port), "--workers", "1"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        for port in ports
    ]
    try:
        for port, server in zip(ports, servers, strict=True):
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
                    break
                except OSError:
                    assert server.poll() is None and time.monotonic() < deadline
                    time.sleep(0.3)
        _clear_of_a_window_end(3600, margin=60)
        statuses: list[list[int]] = [[], []]
        for _ in range(8):  # 8 each: under the limit alone, 16 together
            for index, port in enumerate(ports):
                statuses[index].append(_status(f"http://127.0.0.1:{port}{LIST}", token))
            time.sleep(0.3)  # each process syncs its counts every 0.1 s
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=60)
        log.close()

    logged = (tmp_path / "servers.log").read_text()
    assert "rate-limit" not in logged, logged  # no failed sync
    assert 429 in statuses[0] + statuses[1], statuses
    assert 10 <= sum(s.count(200) for s in statuses) <= 11, statuses
