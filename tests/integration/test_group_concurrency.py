"""Concurrent PATCHes of one group lose no member (fleetdm/fleet#50724 lost them this way)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import pytest
import uvicorn
from sqlalchemy import Engine

from muster.app import create_app
from muster.config import Settings
from muster.db.unit_of_work import UnitOfWork
from muster.errors import ScimError
from muster.scim.listing import ListQuery, parse_filter
from muster.scim.records import TenantInfo
from muster.services import api_tokens, groups
from tests.factories import given_tenant, patch_op
from tests.group_factories import build_group, given_group, given_users, member_ids, members

pytestmark = [pytest.mark.integration, pytest.mark.slow]

UowFactory = Callable[..., UnitOfWork]
THREADS = 8
PATCHES_PER_THREAD = 10
BYSTANDERS = 4


class Plan:
    """Each thread owns its own users: it starts with the first half and ends with the second.

    Thread t's PATCH j adds owned[t][5 + j] for j < 5, then removes owned[t][j - 5]; the
    bystanders are never touched. Whatever the interleaving, the final set is fixed.
    """

    def __init__(self, uow: UnitOfWork) -> None:
        half = PATCHES_PER_THREAD // 2
        self.bystanders = [u.user_id for u in given_users(uow, BYSTANDERS)]
        self.owned = [[u.user_id for u in given_users(uow, 2 * half)] for _ in range(THREADS)]
        self.initial = set(self.bystanders) | {i for ids in self.owned for i in ids[:half]}
        self.expected = set(self.bystanders) | {i for ids in self.owned for i in ids[half:]}
        self.group = given_group(uow, displayName="Busy", members=members(*self.initial))

    def operations(self, thread: int, step: int) -> list[dict[str, Any]]:
        """Okta's and Entra's shapes, alternating; Okta's carry its rename on every update."""
        half = PATCHES_PER_THREAD // 2
        okta = (thread + step) % 2 == 0
        if step < half:
            user_id = self.owned[thread][half + step]
            if okta:
                rename = {
                    "op": "replace",
                    "value": {"id": self.group.group_id, "displayName": "Busy"},
                }
                return [rename, {"op": "add", "path": "members", "value": members(user_id)}]
            return [{"op": "Add", "path": "members", "value": [{"$ref": None, "value": user_id}]}]
        user_id = self.owned[thread][step - half]
        if okta:
            return [{"op": "remove", "path": f'members[value eq "{user_id}"]'}]
        return [{"op": "Remove", "path": "members", "value": [{"value": user_id}]}]


@pytest.fixture
def big_tenant(uow_factory: UowFactory) -> TenantInfo:
    """A tenant with room for every user these tests create."""
    return given_tenant(uow_factory(), seats=THREADS * PATCHES_PER_THREAD + BYSTANDERS + 10)


def _run_threads(work: Callable[[int], None]) -> None:
    start = threading.Barrier(THREADS)

    def worker(thread: int) -> None:
        start.wait(timeout=10)
        work(thread)

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for future in [pool.submit(worker, t) for t in range(THREADS)]:
            future.result(timeout=30)  # re-raises the thread's failure, if any


def test_concurrent_patches_through_the_service_lose_no_member(
    uow_factory: UowFactory, big_tenant: TenantInfo, engine: Engine
) -> None:
    plan = Plan(uow_factory(big_tenant.tenant_id))
    assert member_ids(engine, plan.group.group_id) == plan.initial

    def work(thread: int) -> None:
        uow = uow_factory(big_tenant.tenant_id)  # each thread its own unit of work
        for step in range(PATCHES_PER_THREAD):
            groups.patch_group(
                uow, plan.group.group_id, patch_op(*plan.operations(thread, step)), if_match=None
            )

    began = time.monotonic()
    _run_threads(work)

    assert time.monotonic() - began < 10
    assert member_ids(engine, plan.group.group_id) == plan.expected
    final = groups.get_group(uow_factory(big_tenant.tenant_id), plan.group.group_id)
    assert final.version == 1 + THREADS * PATCHES_PER_THREAD


class _Server:
    """uvicorn serving the app on 127.0.0.1 at an ephemeral port, in a thread of its own."""

    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", loop="asyncio"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 5
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/scim/v2"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


@pytest.fixture
def server_urls(settings: Settings, engine: Engine) -> Iterator[list[str]]:
    """Two servers on one database: each runs its requests on its own event loop thread, so
    PATCHes really overlap in the database, as with several workers behind a load balancer."""
    with (
        _Server(create_app(settings, engine=engine)) as first,
        _Server(create_app(settings, engine=engine)) as second,
    ):
        yield [first, second]


def test_concurrent_patches_over_http_lose_no_member(
    uow_factory: UowFactory, big_tenant: TenantInfo, engine: Engine, server_urls: list[str]
) -> None:
    plan = Plan(uow_factory(big_tenant.tenant_id))
    token = api_tokens.issue_scim_token(uow_factory(), big_tenant.slug).secret
    failures: list[str] = []

    def work(thread: int) -> None:
        base = server_urls[thread % len(server_urls)]
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/scim+json; charset=utf-8",
        }
        with httpx2.Client(base_url=base, headers=headers, timeout=10) as http:
            for step in range(PATCHES_PER_THREAD):
                response = http.patch(
                    f"/Groups/{plan.group.group_id}",
                    json=patch_op(*plan.operations(thread, step)),
                )
                if response.status_code != 204:
                    failures.append(
                        f"thread {thread} step {step}: {response.status_code} {response.text}"
                    )

    began = time.monotonic()
    _run_threads(work)

    assert failures == []
    assert time.monotonic() - began < 10
    assert member_ids(engine, plan.group.group_id) == plan.expected
    with httpx2.Client(
        base_url=server_urls[0], timeout=10, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        served = http.get(f"/Groups/{plan.group.group_id}").json()
    assert {m["value"] for m in served["members"]} == plan.expected


def test_concurrent_creates_of_one_name_make_one_group_and_409s(
    uow_factory: UowFactory, big_tenant: TenantInfo
) -> None:
    spellings = ["Shared Team", "shared team", "SHARED TEAM", "Shared team"]
    outcomes: list[str] = []
    lock = threading.Lock()

    def work(thread: int) -> None:
        uow = uow_factory(big_tenant.tenant_id)
        try:
            groups.create_group(uow, build_group(displayName=spellings[thread % len(spellings)]))
            outcome = "created"
        except ScimError as error:  # a 500 (IntegrityError) would escape and fail the test
            outcome = f"{error.status} {error.scim_type}"
        with lock:
            outcomes.append(outcome)

    _run_threads(work)

    assert sorted(outcomes) == ["409 uniqueness"] * (THREADS - 1) + ["created"]
    listed = groups.list_groups(
        uow_factory(big_tenant.tenant_id),
        ListQuery(parse_filter('displayName eq "shared team"'), 1, 10),
        with_members=False,
    )
    assert listed[0] == 1
