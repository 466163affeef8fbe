"""`muster webhook ...` as an operator runs it, and the worker that `muster serve` starts."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from muster.db.unit_of_work import UnitOfWork
from muster.scim.records import TenantInfo
from muster.services import webhook_delivery, webhooks
from tests.cli_runner import Muster
from tests.factories import build_user, given_user
from tests.integration.served import MusterServer, Served, fresh_database
from tests.webhook_fixtures import FAST, Receiver

pytestmark = pytest.mark.integration

UowFactory = Callable[..., UnitOfWork]
URL = "https://hooks.example.com/muster"


@pytest.fixture
def muster(database_url: str, request: pytest.FixtureRequest) -> Muster:
    request.getfixturevalue("engine")  # the schema exists, empty
    return Muster(database_url)


def test_webhook_add_prints_the_id_then_the_secret_alone_once(
    muster: Muster, tenant: TenantInfo
) -> None:
    added = muster.ok(
        "webhook", "add", tenant.slug, URL, "--description", "audit", "--event", "user.deleted"
    )

    lines = added.stdout.strip().splitlines()
    endpoint_id, secret = lines[0], lines[-1]
    assert secret.startswith("whsec_") and len(lines) == 2
    assert "not be shown again" in added.stderr
    assert (added.stdout + added.stderr).count(secret) == 1
    listed = muster.ok("webhook", "list", tenant.slug).stdout
    assert endpoint_id in listed and URL in listed and "events=user.deleted" in listed
    assert "whsec_" not in listed


def test_webhook_add_refuses_a_bad_url_or_event_without_a_traceback(
    muster: Muster, tenant: TenantInfo
) -> None:
    for args in (["ftp://x.example.com"], [URL, "--event", "user.exploded"]):
        result = muster("webhook", "add", tenant.slug, *args)
        assert result.exit_code == 1 and result.stderr.startswith("error: ")
        assert "Traceback" not in result.stderr
    assert "no webhook endpoints" in muster.ok("webhook", "list", tenant.slug).stdout


def test_webhook_add_takes_a_format_json_by_default(muster: Muster, tenant: TenantInfo) -> None:
    plain = muster.ok("webhook", "add", tenant.slug, URL).stdout.splitlines()[0]
    tokens = muster.ok("webhook", "add", tenant.slug, URL + "/set", "--format", "set")
    refused = muster("webhook", "add", tenant.slug, URL, "--format", "xml")

    listed = muster.ok("webhook", "list", tenant.slug).stdout.splitlines()
    by_id = {line.split("\t")[0]: line for line in listed}
    assert "\tformat=json\t" in by_id[plain]
    assert "\tformat=set\t" in by_id[tokens.stdout.splitlines()[0]]
    assert refused.exit_code != 0 and "xml" in refused.stderr
    assert "Traceback" not in refused.stderr and len(listed) == 2


def test_webhook_disable_enable_remove(muster: Muster, tenant: TenantInfo) -> None:
    endpoint_id = muster.ok("webhook", "add", tenant.slug, URL).stdout.splitlines()[0]

    assert "\tdisabled\t" in muster.ok("webhook", "disable", tenant.slug, endpoint_id).stdout
    assert "\tenabled\t" in muster.ok("webhook", "enable", tenant.slug, endpoint_id).stdout
    muster.ok("webhook", "remove", tenant.slug, endpoint_id)
    assert muster("webhook", "remove", tenant.slug, endpoint_id).exit_code == 1


def test_webhook_deliveries_and_redeliver_of_the_dead(
    muster: Muster, tenant: TenantInfo, uow: UnitOfWork, uow_factory: UowFactory
) -> None:
    endpoint_id = muster.ok("webhook", "add", tenant.slug, URL).stdout.splitlines()[0]
    given_user(uow)
    given_user(uow)
    webhook_delivery.fan_out(uow_factory())
    claims = webhook_delivery.claim(uow_factory(), limit=10, lease_seconds=60)
    policy = webhook_delivery.RetryPolicy(max_attempts=1, base_seconds=1, max_seconds=1)
    for claim in claims:
        webhook_delivery.record_failed(uow_factory(), claim, policy, status=410, error="gone")

    dead = muster.ok("webhook", "deliveries", tenant.slug, endpoint_id, "--dead").stdout
    assert dead.count("\tdead\t") == 2 and "last: 410 gone" in dead
    assert (
        "2 dead deliveries"
        in muster.ok("webhook", "redeliver", tenant.slug, endpoint_id, "--dead").stdout
    )
    assert (
        "no deliveries (dead only)"
        in muster.ok("webhook", "deliveries", tenant.slug, endpoint_id, "--dead").stdout
    )
    assert muster("webhook", "redeliver", tenant.slug, endpoint_id).exit_code == 2
    seq = str(claims[0].event_seq)
    assert muster.ok("webhook", "redeliver", tenant.slug, endpoint_id, seq).stdout
    assert webhooks.deliveries_page(uow, endpoint_id, state="pending").total == 2


# -- `muster serve` and its worker --------------------------------------------------------------
def _children(pid: int) -> dict[int, str]:
    """Child processes of `pid` and their command lines."""
    found = {}
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        except FileNotFoundError:
            continue
        found[int(child)] = cmdline.decode()
    return found


def _is_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[str, Served]]:
    with fresh_database(tmp_path) as url:
        served = Served(url).migrate()
        try:
            yield url, served
        finally:
            served.close()


@pytest.mark.slow
def test_serve_starts_a_worker_that_delivers_and_stops_it_on_exit(
    tmp_path: Path, database: tuple[str, Served]
) -> None:
    url, served = database
    env = {f"MUSTER_{k.upper()}": str(v) for k, v in FAST.items()}
    server = MusterServer(url, tmp_path, **env).start()
    try:
        tenant, token = served.tenant()
        with Receiver() as receiver:
            created = webhooks.create_endpoint(
                served.database.uow(tenant.tenant_id), receiver.url("hook")
            )
            receiver.secrets["hook"] = created.secret
            with server.client(token) as scim:
                user = scim.post("/Users", json=build_user()).json()
            receiver.wait_for(lambda r: len(r.received) == 1, timeout=60)
            assert receiver.received[0].resource_id == user["id"]
        assert server.process is not None
        workers = [pid for pid, cmd in _children(server.process.pid).items() if " worker" in cmd]
        assert len(workers) == 1
        assert server.terminate() == 0
        assert not _is_running(workers[0])
    finally:
        server.stop()
    assert "Traceback" not in server.log(), server.log()


@pytest.mark.slow
def test_serve_without_a_worker_when_told(tmp_path: Path, database: tuple[str, Served]) -> None:
    url, _ = database
    server = MusterServer(url, tmp_path, MUSTER_SERVE_WORKER="false").start()
    try:
        assert server.process is not None
        assert not [cmd for cmd in _children(server.process.pid).values() if " worker" in cmd]
    finally:
        server.stop()


@pytest.mark.slow
def test_the_worker_of_a_killed_server_exits_by_itself(
    tmp_path: Path, database: tuple[str, Served]
) -> None:
    url, _ = database
    env = {f"MUSTER_{k.upper()}": str(v) for k, v in FAST.items()}
    server = MusterServer(url, tmp_path, **env).start()
    try:
        assert server.process is not None
        [worker] = [p for p, cmd in _children(server.process.pid).items() if " worker" in cmd]
        os.kill(server.process.pid, signal.SIGKILL)  # the server alone, not its group
        server.process.wait(timeout=10)
        deadline = time.monotonic() + 20
        while _is_running(worker):
            assert time.monotonic() < deadline, "the orphaned worker kept running"
            time.sleep(0.05)
    finally:
        server.kill()
