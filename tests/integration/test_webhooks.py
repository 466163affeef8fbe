"""Webhooks end to end: SCIM requests through the app, a real worker, a real receiver.

The receiver (tests/webhook_fixtures.py) is an HTTP server on 127.0.0.1 that checks every
signature. Changes are made by real SCIM requests, so what arrives is what the outbox wrote
in each request's own transaction: nothing for a request that was rolled back.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from muster.db.unit_of_work import UnitOfWork
from muster.scim.records import TenantInfo
from muster.services import tenants, webhooks
from tests.factories import build_user, given_user, patch_op
from tests.group_factories import members
from tests.integration.served import Served, fresh_database
from tests.webhook_fixtures import FAST, Receiver, fast_settings, running_worker

pytestmark = pytest.mark.integration

UowFactory = Callable[..., UnitOfWork]
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as started:
        yield started


def _endpoint(uow: UnitOfWork, receiver: Receiver, name: str = "hook") -> str:
    created = webhooks.create_endpoint(uow, receiver.url(name))
    receiver.secrets[name] = created.secret
    return created.endpoint.endpoint_id


def _set_active(okta: TestClient, user_id: str, active: bool) -> None:
    operation = {"op": "replace", "value": {"active": active}}
    response = okta.patch(f"/scim/v2/Users/{user_id}", json=patch_op(operation))
    assert response.status_code == 200, response.text


def _types_of(receiver: Receiver, resource_id: str) -> list[str]:
    return [r.event["type"] for r in receiver.received if r.resource_id == resource_id]


def test_a_user_lifecycle_over_scim_arrives_once_each_and_in_order(
    okta: TestClient,
    uow: UnitOfWork,
    uow_factory: UowFactory,
    receiver: Receiver,
    database_url: str,
) -> None:
    _endpoint(uow, receiver)
    with running_worker(uow_factory, fast_settings(database_url)):
        ann = okta.post("/scim/v2/Users", json=build_user()).json()
        bob = okta.post("/scim/v2/Users", json=build_user()).json()
        _set_active(okta, ann["id"], False)
        _set_active(okta, bob["id"], False)
        _set_active(okta, ann["id"], True)
        assert okta.delete(f"/scim/v2/Users/{ann['id']}").status_code == 204
        receiver.wait_for(lambda r: len(r.received) >= 6)
        time.sleep(0.2)  # room for a duplicate to show up

    assert receiver.refused == []
    seqs = sorted(r.seq for r in receiver.received)
    assert seqs == list(range(seqs[0], seqs[0] + 6))  # each event once, none missing
    assert _types_of(receiver, ann["id"]) == [
        "user.created",
        "user.deactivated",
        "user.reactivated",
        "user.deleted",
    ]
    assert _types_of(receiver, bob["id"]) == ["user.created", "user.deactivated"]
    deactivated = next(
        r.event
        for r in receiver.received
        if r.resource_id == ann["id"] and r.event["type"] == "user.deactivated"
    )
    assert deactivated["data"]["active"] is False
    assert deactivated["data"]["userName"] == ann["userName"]


def test_a_set_endpoint_gets_a_users_lifecycle_as_security_event_tokens_in_order(
    okta: TestClient,
    uow: UnitOfWork,
    uow_factory: UowFactory,
    receiver: Receiver,
    database_url: str,
) -> None:
    created = webhooks.create_endpoint(uow, receiver.url("sets"), format="set")
    receiver.secrets["sets"] = created.secret
    _endpoint(uow, receiver, "json")  # alongside: still today's JSON
    receiver.issuer = "https://muster.example.com/scim/v2"  # iss follows MUSTER_PUBLIC_URL
    settings = fast_settings(database_url, public_url="https://muster.example.com")
    with running_worker(uow_factory, settings):
        ann = okta.post("/scim/v2/Users", json=build_user(externalId="ext-ann")).json()
        _set_active(okta, ann["id"], False)
        _set_active(okta, ann["id"], True)
        assert okta.delete(f"/scim/v2/Users/{ann['id']}").status_code == 204
        receiver.wait_for(lambda r: len(r.events_of("sets")) >= 4 and len(r.events_of("json")) >= 4)
        time.sleep(0.2)  # room for a duplicate to show up

    # Every SET passed the receiver's checks: signature, typ, aud, iss, jti = Muster-Event-Id.
    assert receiver.refused == []
    tokens = [r for r in receiver.received if r.path == "sets"]
    assert [list(r.event["events"]) for r in tokens] == [
        ["urn:ietf:params:scim:event:prov:create:notice"],
        ["urn:ietf:params:scim:event:prov:deactivate"],
        ["urn:ietf:params:scim:event:prov:activate"],
        ["urn:ietf:params:scim:event:prov:delete"],
    ]
    subject = {"format": "scim", "uri": f"/Users/{ann['id']}", "externalId": "ext-ann"}
    assert all(r.event["sub_id"] == subject for r in tokens)
    assert all(r.headers["Content-Type"] == "application/secevent+jwt" for r in tokens)
    # The same events, one id each, as the JSON endpoint got them.
    as_json = receiver.events_of("json")
    assert [r.event["jti"] for r in tokens] == [e["id"] for e in as_json]
    assert [e["type"] for e in as_json] == [
        "user.created",
        "user.deactivated",
        "user.reactivated",
        "user.deleted",
    ]


def test_a_rolled_back_request_sends_nothing(
    okta: TestClient,
    uow: UnitOfWork,
    uow_factory: UowFactory,
    tenant: TenantInfo,
    receiver: Receiver,
    database_url: str,
) -> None:
    ann = okta.post("/scim/v2/Users", json=build_user()).json()
    group = okta.post(
        "/scim/v2/Groups", json={"schemas": [GROUP_URN], "displayName": "Engineering"}
    ).json()
    _endpoint(uow, receiver)  # from here on
    tenants.set_tenant(uow_factory(), tenant.slug, seats=1)

    with running_worker(uow_factory, fast_settings(database_url)):
        # A rename, then an add whose last member is unknown: refused, all of it undone.
        refused_patch = okta.patch(
            f"/scim/v2/Groups/{group['id']}",
            json=patch_op(
                {"op": "replace", "value": {"displayName": "Renamed"}},
                {"op": "add", "path": "members", "value": members(ann["id"], "u-unknown")},
            ),
        )
        assert refused_patch.status_code == 400, refused_patch.text
        # No seat left for a second active user.
        refused_create = okta.post("/scim/v2/Users", json=build_user())
        assert refused_create.status_code in (403, 409), refused_create.text
        # Then a change that does commit: the receiver sees it and only it.
        marker = okta.patch(
            f"/scim/v2/Users/{ann['id']}",
            json=patch_op({"op": "replace", "path": "title", "value": "Lead"}),
        )
        assert marker.status_code == 200
        receiver.wait_for(lambda r: len(r.received) >= 1)
        time.sleep(0.3)

    assert [(r.event["type"], r.resource_id) for r in receiver.received] == [
        ("user.updated", ann["id"])
    ]


def test_a_receiver_that_fails_then_recovers_gets_every_event_in_order(
    okta: TestClient,
    uow: UnitOfWork,
    uow_factory: UowFactory,
    receiver: Receiver,
    database_url: str,
) -> None:
    endpoint_id = _endpoint(uow, receiver)
    receiver.status = 503
    settings = fast_settings(database_url, webhook_max_attempts=50)
    with running_worker(uow_factory, settings):
        ann = okta.post("/scim/v2/Users", json=build_user()).json()
        _set_active(okta, ann["id"], False)
        _set_active(okta, ann["id"], True)
        receiver.wait_for(lambda r: r.arrivals >= 3)  # the first event, tried and retried
        assert receiver.received == []
        receiver.status = 200
        receiver.wait_for(lambda r: len(r.received) >= 3)

    assert _types_of(receiver, ann["id"]) == [
        "user.created",
        "user.deactivated",
        "user.reactivated",
    ]
    first = webhooks.deliveries_page(uow, endpoint_id).items[-1]
    assert first.state == "delivered" and first.attempts >= 3
    assert receiver.refused == []


# -- a real `muster worker` process, killed mid-delivery ------------------------------------------
class WorkerProcess:
    """`muster worker` (via `python -m muster`) in a process group of its own."""

    def __init__(self, database_url: str, log_path: Path, **settings: Any) -> None:
        env = {f"MUSTER_{k.upper()}": str(v) for k, v in {**FAST, **settings}.items()}
        self.env = {**os.environ, "MUSTER_DATABASE_URL": database_url, **env}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "muster", "worker"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def kill(self) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.mark.slow
def test_a_worker_killed_mid_delivery_loses_nothing(tmp_path: Path, receiver: Receiver) -> None:
    with fresh_database(tmp_path) as url:
        served = Served(url).migrate()
        try:
            tenant, _ = served.tenant()
            uow = served.database.uow(tenant.tenant_id)
            _endpoint(uow, receiver)
            # A timeout longer than the test waits, so the kill lands mid-request.
            settings = {"webhook_timeout_seconds": 20, "webhook_lease_seconds": 1.5}
            first = WorkerProcess(url, tmp_path / "worker-1.log", **settings).start()
            try:
                receiver.hanging.set()
                ann = given_user(uow)
                receiver.wait_for(lambda r: r.arrivals >= 1, timeout=60)
            finally:
                first.kill()
            # The held request now completes at the receiver: it arrived, but the worker
            # that sent it died before it could record the answer.
            receiver.hanging.clear()
            receiver.release.set()
            bob = given_user(uow)
            cid = given_user(uow)

            second = WorkerProcess(url, tmp_path / "worker-2.log", **settings).start()
            try:
                everyone = {ann.user_id, bob.user_id, cid.user_id}
                receiver.wait_for(
                    lambda r: {x.resource_id for x in r.received} >= everyone, timeout=60
                )
                time.sleep(0.3)
                assert second.terminate() == 0
            finally:
                if second.process and second.process.poll() is None:
                    second.kill()
            log = second.log()
        finally:
            served.close()

    assert receiver.refused == []
    # At least once: the delivery in flight at the kill may arrive twice, the rest once.
    assert _types_of(receiver, ann.user_id) in (["user.created"], ["user.created"] * 2)
    assert _types_of(receiver, bob.user_id) == _types_of(receiver, cid.user_id) == ["user.created"]
    assert {r.resource_id for r in receiver.received} == everyone
    assert "Traceback" not in log, log
