"""Operating Muster: liveness, readiness, several worker processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from muster.app import create_app
from muster.config import Settings
from muster.services.database import Database


def test_healthz_answers_while_the_process_is_up(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def _readyz_until(client: TestClient, status: str, seconds: float = 10) -> Any:
    """Poll /readyz until it says `status` (the heartbeat beats twice a second)."""
    deadline = time.monotonic() + seconds
    while True:
        response = client.get("/readyz")
        if response.json()["status"] == status or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


def test_readyz_is_503_until_the_migrations_have_run(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'r.db'}", log_flush_seconds=0)
    database = Database(settings)
    with TestClient(create_app(settings, database=database)) as client:
        pending = _readyz_until(client, "migrations pending")
        database.upgrade()
        ready = _readyz_until(client, "ready")

    assert pending.status_code == 503 and pending.json()["status"] == "migrations pending"
    assert pending.headers["Retry-After"] == "5"
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_with_two_workers_answers_from_one_port(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "MUSTER_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
        "MUSTER_CREATE_DEMO_TENANT": "true",
    }
    muster = [sys.executable, "-m", "muster.cli"]
    server = subprocess.Popen(
        [*muster, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90  # generous: CI machines are shared and slow to spawn
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "the server did not become ready"
                time.sleep(0.2)
        token = (
            subprocess.run(
                [*muster, "scim-token", "demo"],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/scim/v2/Users?count=1",
            headers={"Authorization": f"Bearer {token}"},
        )
        for _ in range(6):
            with urllib.request.urlopen(request, timeout=5) as response:
                assert response.status == 200
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        assert len(children) >= 2  # uvicorn's supervisor and its two workers
    finally:
        server.terminate()
        server.wait(timeout=30)
