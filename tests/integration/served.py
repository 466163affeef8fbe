"""Real `muster serve` processes on 127.0.0.1 over a database of their own, for the tests that
prove concurrency, several instances and durability from the outside (issue #7)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
from sqlalchemy import text
from sqlalchemy.engine import make_url

from muster.config import Settings
from muster.db.engine import make_engine, normalise_url
from muster.scim.records import TenantInfo
from muster.services import api_tokens
from muster.services.database import Database
from tests.conftest import POSTGRES_URL
from tests.factories import OKTA_HEADERS, given_tenant

MUSTER = [sys.executable, "-m", "muster.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def fresh_database(tmp_path: Path) -> Iterator[str]:
    """A URL for an empty database of its own: a SQLite file, or a new PostgreSQL database
    next to MUSTER_TEST_DATABASE_URL (dropped afterwards) when the suite runs on PostgreSQL.

    Not the shared test database: the servers migrate it themselves and a test may kill them
    mid-write, which the per-test TRUNCATE of the shared database should not have to survive.
    """
    if not POSTGRES_URL:
        yield f"sqlite:///{tmp_path / 'served.db'}"
        return
    base = make_url(normalise_url(POSTGRES_URL))
    name = f"muster_served_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base.set(database="postgres").render_as_string(hide_password=False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Served:
    """The database the servers share, seen from the test: migrated, with tenants and tokens."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.database = Database(Settings(database_url=url, create_demo_tenant=False))

    def migrate(self) -> Served:
        self.database.upgrade()
        return self

    def tenant(self, *, seats: int = 100) -> tuple[TenantInfo, str]:
        """A new Enterprise tenant with SCIM on, and its token."""
        tenant = given_tenant(self.database.uow(), seats=seats)
        return tenant, api_tokens.issue_scim_token(self.database.uow(), tenant.slug).secret

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.database.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.database.engine.connect() as conn:
            return list(conn.execute(text(sql), params))

    def close(self) -> None:
        self.database.dispose()


class MusterServer:
    """`muster serve` in a process group of its own (so SIGKILL takes its workers too)."""

    def __init__(self, database_url: str, log_dir: Path, *, workers: int = 1, **env: str) -> None:
        self.port = free_port()
        self.workers = workers
        self.env = {
            **os.environ,
            "MUSTER_DATABASE_URL": database_url,
            "MUSTER_CREATE_DEMO_TENANT": "false",
            **env,
        }
        self.log_path = log_dir / f"serve-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/scim/v2"

    def start(self, *, wait: bool = True) -> MusterServer:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*MUSTER, "serve", "--port", str(self.port), "--workers", str(self.workers)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 90) -> None:
        """Wait for /readyz (worker processes start slowly on a busy machine); on failure the
        server is killed so that no process outlives the test."""
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.kill()
            raise

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            try:
                response = httpx2.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1)
                if response.status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"muster serve exited during start-up:\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"muster serve was not ready in {timeout} s:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the server and its workers at once, like a crash or an OOM kill."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 40) -> int:
        """SIGTERM (what an orchestrator sends) and wait for the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            self.terminate(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def client(self, token: str, **kwargs: Any) -> httpx2.Client:
        headers = {**OKTA_HEADERS, "Authorization": f"Bearer {token}"}
        kwargs.setdefault("timeout", 30)
        return httpx2.Client(base_url=self.base_url, headers=headers, **kwargs)


def in_parallel(count: int, work: Callable[[int], Any], *, timeout: float = 60) -> list[Any]:
    """Run work(0..count-1) on `count` threads released together; their results, in order."""
    start = threading.Barrier(count)

    def run(index: int) -> Any:
        start.wait(timeout=10)
        return work(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(run, i) for i in range(count)]
        return [f.result(timeout=timeout) for f in futures]
