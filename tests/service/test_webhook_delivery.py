"""Webhook delivery: fan-out, claims in order per resource, retries, dead letters, the worker."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, delete, select

from muster import __version__
from muster.db.tables import EventRow, WebhookDeliveryRow, WebhookEndpointRow
from muster.db.unit_of_work import UnitOfWork
from muster.scim.records import TenantInfo
from muster.services import events, users, webhook_delivery, webhooks
from muster.services.webhook_delivery import RetryPolicy
from muster.services.webhook_worker import maintenance_tasks
from tests.factories import given_tenant, given_user, patch_op
from tests.webhook_fixtures import Receiver, fast_settings, running_worker

pytestmark = pytest.mark.service

UowFactory = Callable[..., UnitOfWork]
URL = "https://hooks.example.com/muster"
LEASE = 60.0
NEVER = RetryPolicy(max_attempts=3, base_seconds=3600, max_seconds=3600)


def _queue(uow_factory: UowFactory) -> UnitOfWork:
    return uow_factory()  # platform level: the worker's view across tenants


def _fan_out(uow_factory: UowFactory) -> int:
    total = 0
    while considered := webhook_delivery.fan_out(_queue(uow_factory)):
        total += considered
    return total


def _claim(uow_factory: UowFactory, limit: int = 100) -> list[webhook_delivery.Claim]:
    return webhook_delivery.claim(_queue(uow_factory), limit=limit, lease_seconds=LEASE)


def _states(engine: Engine) -> dict[int, tuple[str, int]]:
    d = WebhookDeliveryRow.__table__.c
    with engine.connect() as conn:
        rows = conn.execute(select(d.event_seq, d.state, d.attempts))
        return {row[0]: (row[1], row[2]) for row in rows}


def _deactivate(uow: UnitOfWork, user_id: str, active: bool = False) -> None:
    operation = {"op": "replace", "path": "active", "value": active}
    users.patch_user(uow, user_id, patch_op(operation), if_match=None)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as started:
        yield started


# -- fan-out -----------------------------------------------------------------------------------
def test_fan_out_queues_each_event_once_in_batches(
    uow_factory: UowFactory, uow: UnitOfWork, engine: Engine
) -> None:
    endpoint = webhooks.create_endpoint(uow, URL).endpoint
    for _ in range(5):
        given_user(uow)

    assert webhook_delivery.fan_out(_queue(uow_factory), batch=2) == 2
    assert sorted(_states(engine)) == [1, 2]
    assert _fan_out(uow_factory) == 3
    assert _fan_out(uow_factory) == 0  # caught up: nothing queued twice
    assert sorted(_states(engine)) == [1, 2, 3, 4, 5]
    cursor = WebhookEndpointRow.__table__.c.cursor
    with engine.connect() as conn:
        assert conn.execute(select(cursor)).scalar() == 5
    assert webhooks.get_endpoint(uow, endpoint.endpoint_id).pending == 5


def test_fan_out_skips_events_of_other_types_but_moves_past_them(
    uow_factory: UowFactory, uow: UnitOfWork, engine: Engine
) -> None:
    webhooks.create_endpoint(uow, URL, event_types=["user.deactivated"])
    user = given_user(uow)
    _deactivate(uow, user.user_id)
    given_user(uow)

    assert _fan_out(uow_factory) == 3
    assert _states(engine) == {2: ("pending", 0)}


def test_fan_out_serves_every_tenant(uow_factory: UowFactory, uow: UnitOfWork) -> None:
    other = given_tenant(uow_factory())
    theirs = uow_factory(other.tenant_id)
    ours_endpoint = webhooks.create_endpoint(uow, URL).endpoint
    theirs_endpoint = webhooks.create_endpoint(theirs, URL).endpoint
    given_user(uow)
    given_user(theirs)
    given_user(theirs)

    _fan_out(uow_factory)

    assert webhooks.get_endpoint(uow, ours_endpoint.endpoint_id).pending == 1
    assert webhooks.get_endpoint(theirs, theirs_endpoint.endpoint_id).pending == 2
    claims = _claim(uow_factory)
    assert {(c.tenant_id, c.event_seq) for c in claims} == {
        (uow.tenant_id, 1),
        (other.tenant_id, 1),
        (other.tenant_id, 2),
    }


# -- claims ----------------------------------------------------------------------------------
def test_a_claim_carries_the_public_event_and_leases_the_delivery(
    uow_factory: UowFactory, uow: UnitOfWork, tenant: TenantInfo
) -> None:
    created = webhooks.create_endpoint(uow, URL)
    user = given_user(uow)
    _fan_out(uow_factory)

    [claim] = _claim(uow_factory)
    assert (claim.url, claim.secret, claim.attempts) == (URL, created.secret, 0)
    with uow.reading():
        [row] = uow.events.after(0, 10)
    assert claim.event == events.public_event(tenant.tenant_id, row)
    assert claim.event["resource"] == {"type": "User", "id": user.user_id}
    assert _claim(uow_factory) == []  # leased: no other worker takes it
    [delivery] = webhooks.deliveries_page(uow, created.endpoint.endpoint_id).items
    assert delivery.state == "sending"


def test_claims_follow_each_resource_in_order(
    uow_factory: UowFactory, uow: UnitOfWork, engine: Engine
) -> None:
    webhooks.create_endpoint(uow, URL)
    ann, bob = given_user(uow), given_user(uow)  # 1, 2
    _deactivate(uow, ann.user_id)  # 3
    _deactivate(uow, bob.user_id)  # 4
    _deactivate(uow, ann.user_id, active=True)  # 5
    _fan_out(uow_factory)

    first = _claim(uow_factory)
    assert sorted(c.event_seq for c in first) == [1, 2]  # one per resource at a time
    assert _claim(uow_factory) == []
    webhook_delivery.record_delivered(_queue(uow_factory), first[0], 200)
    webhook_delivery.record_delivered(_queue(uow_factory), first[1], 200)
    second = _claim(uow_factory)
    assert sorted(c.event_seq for c in second) == [3, 4]
    for claim in second:
        webhook_delivery.record_delivered(_queue(uow_factory), claim, 200)
    assert [c.event_seq for c in _claim(uow_factory)] == [5]


def test_only_the_head_of_each_line_is_pending_the_rest_wait_their_turn(
    uow_factory: UowFactory, uow: UnitOfWork, engine: Engine
) -> None:
    webhooks.create_endpoint(uow, URL)
    ann = given_user(uow)  # 1
    _deactivate(uow, ann.user_id)  # 2
    webhook_delivery.fan_out(_queue(uow_factory), batch=1)  # 1 alone: the head
    _fan_out(uow_factory)  # 2 arrives while 1 is unfinished
    _deactivate(uow, ann.user_id, active=True)  # 3
    _fan_out(uow_factory)
    assert {seq: state for seq, (state, _) in _states(engine).items()} == {
        1: "pending",
        2: "waiting",
        3: "waiting",
    }
    [head] = _claim(uow_factory)
    webhook_delivery.record_delivered(_queue(uow_factory), head, 200)
    assert _states(engine)[2] == ("pending", 0) and _states(engine)[3] == ("waiting", 0)


def test_each_membership_is_its_own_line_so_a_groups_members_go_out_together(
    uow_factory: UowFactory, uow: UnitOfWork, engine: Engine
) -> None:
    from muster.services import groups
    from tests.group_factories import build_group, members

    webhooks.create_endpoint(uow, URL)
    ann, bob = given_user(uow), given_user(uow)  # 1, 2
    group = groups.create_group(uow, build_group(members=members(ann.user_id, bob.user_id)))
    groups.patch_group(  # 6: ann leaves again
        uow,
        group.group.group_id,
        patch_op({"op": "remove", "path": f'members[value eq "{ann.user_id}"]'}),
        if_match=None,
    )
    _fan_out(uow_factory)
    states = {seq: state for seq, (state, _) in _states(engine).items()}
    # 3 group.created, 4/5 member_added (ann, bob by id order), 6 ann's member_removed
    added_ann = 4 if ann.user_id < bob.user_id else 5
    assert states[3] == "pending"
    assert states[4] == states[5] == "pending"  # two memberships: not behind the group
    assert states[6] == "waiting"  # behind ann's member_added
    claimed = {c.event_seq: c for c in _claim(uow_factory)}
    assert {1, 2, 3, 4, 5} <= set(claimed) and 6 not in claimed
    webhook_delivery.record_delivered(_queue(uow_factory), claimed[added_ann], 200)
    assert [c.event_seq for c in _claim(uow_factory)] == [6]


def test_a_dead_delivery_no_longer_holds_back_its_resource(
    uow_factory: UowFactory, uow: UnitOfWork
) -> None:
    webhooks.create_endpoint(uow, URL)
    user = given_user(uow)
    _deactivate(uow, user.user_id)
    _fan_out(uow_factory)
    policy = RetryPolicy(max_attempts=1, base_seconds=1, max_seconds=1)

    [first] = _claim(uow_factory)
    state = webhook_delivery.record_failed(
        _queue(uow_factory), first, policy, status=503, error="down"
    )

    assert state == "dead"
    assert [c.event_seq for c in _claim(uow_factory)] == [2]


def test_a_failed_attempt_waits_out_its_backoff_and_blocks_the_resource_meanwhile(
    uow_factory: UowFactory, uow: UnitOfWork, engine: Engine
) -> None:
    webhooks.create_endpoint(uow, URL)
    user = given_user(uow)
    _deactivate(uow, user.user_id)
    _fan_out(uow_factory)
    policy = RetryPolicy(max_attempts=3, base_seconds=0.2, max_seconds=0.2)

    [claim] = _claim(uow_factory)
    assert (
        webhook_delivery.record_failed(
            _queue(uow_factory), claim, policy, status=500, error="x" * 2000
        )
        == "pending"
    )
    assert _states(engine)[1] == ("pending", 1)
    assert _claim(uow_factory) == []  # not due yet, and event 2 waits behind it
    time.sleep(0.3)
    [again] = _claim(uow_factory)
    assert (again.event_seq, again.attempts) == (1, 1)
    page = webhooks.deliveries_page(uow, webhooks.list_endpoints(uow)[0].endpoint_id)
    assert len(page.items[-1].last_error or "") == 500 and page.items[-1].last_status == 500


def test_after_max_attempts_a_delivery_is_dead(uow_factory: UowFactory, uow: UnitOfWork) -> None:
    endpoint = webhooks.create_endpoint(uow, URL).endpoint
    given_user(uow)
    _fan_out(uow_factory)
    policy = RetryPolicy(max_attempts=3, base_seconds=0.01, max_seconds=0.01)

    states = []
    for _ in range(3):
        time.sleep(0.02)
        [claim] = _claim(uow_factory)
        states.append(
            webhook_delivery.record_failed(
                _queue(uow_factory), claim, policy, status=None, error="ConnectError"
            )
        )

    assert states == ["pending", "pending", "dead"]
    [dead] = webhooks.deliveries_page(uow, endpoint.endpoint_id, state="dead").items
    assert (dead.attempts, dead.last_error) == (3, "ConnectError")
    assert webhooks.get_endpoint(uow, endpoint.endpoint_id).dead == 1
    time.sleep(0.02)
    assert _claim(uow_factory) == []


def test_a_claim_whose_worker_died_is_taken_again_after_its_lease(
    uow_factory: UowFactory, uow: UnitOfWork
) -> None:
    webhooks.create_endpoint(uow, URL)
    given_user(uow)
    _fan_out(uow_factory)

    [taken] = webhook_delivery.claim(_queue(uow_factory), limit=10, lease_seconds=0.1)
    assert _claim(uow_factory) == []
    time.sleep(0.15)
    [again] = _claim(uow_factory)
    assert again.key == taken.key
    # The first worker's late answer does not count twice.
    webhook_delivery.record_delivered(_queue(uow_factory), again, 200)
    webhook_delivery.record_delivered(_queue(uow_factory), taken, 200)
    [delivery] = webhooks.deliveries_page(uow, webhooks.list_endpoints(uow)[0].endpoint_id).items
    assert (delivery.state, delivery.attempts) == ("delivered", 1)


def test_a_disabled_endpoints_queued_deliveries_wait(
    uow_factory: UowFactory, uow: UnitOfWork
) -> None:
    endpoint = webhooks.create_endpoint(uow, URL).endpoint
    given_user(uow)
    _fan_out(uow_factory)

    webhooks.set_endpoint_enabled(uow, endpoint.endpoint_id, False)
    assert _claim(uow_factory) == []
    webhooks.set_endpoint_enabled(uow, endpoint.endpoint_id, True)
    assert len(_claim(uow_factory)) == 1


def test_release_puts_unfinished_claims_back_due_now(
    uow_factory: UowFactory, uow: UnitOfWork
) -> None:
    webhooks.create_endpoint(uow, URL)
    given_user(uow)
    _fan_out(uow_factory)
    claims = _claim(uow_factory)

    webhook_delivery.release(_queue(uow_factory), claims)

    assert [c.key for c in _claim(uow_factory)] == [c.key for c in claims]


def test_prune_delivered_removes_only_old_delivered_deliveries(
    uow_factory: UowFactory, uow: UnitOfWork, engine: Engine
) -> None:
    webhooks.create_endpoint(uow, URL)
    given_user(uow)
    given_user(uow)
    _fan_out(uow_factory)
    first, _second = sorted(_claim(uow_factory), key=lambda c: c.event_seq)
    webhook_delivery.record_delivered(_queue(uow_factory), first, 200)

    assert webhook_delivery.prune_delivered(_queue(uow_factory), older_than=timedelta(1)) == 0
    time.sleep(0.01)
    assert webhook_delivery.prune_delivered(_queue(uow_factory), older_than=timedelta(0)) == 1
    assert _states(engine) == {2: ("sending", 0)}


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    policy = RetryPolicy(max_attempts=30, base_seconds=10, max_seconds=3600)
    rng = random.Random(7)
    delays = [policy.delay(attempts, rng) for attempts in range(1, 12)]
    for attempts, delay in enumerate(delays, start=1):
        nominal = min(10 * 2 ** (attempts - 1), 3600)
        assert 0.8 * nominal <= delay <= 1.2 * nominal
    assert len({round(policy.delay(1), 6) for _ in range(20)}) > 1  # jittered


# -- the worker, against a real receiver --------------------------------------------------------
def test_the_worker_posts_signed_events_with_their_headers(
    uow_factory: UowFactory, uow: UnitOfWork, receiver: Receiver, database_url: str
) -> None:
    created = webhooks.create_endpoint(uow, receiver.url("a"))
    receiver.secrets["a"] = created.secret
    user = given_user(uow)

    with running_worker(uow_factory, fast_settings(database_url)):
        receiver.wait_for(lambda r: len(r.received) == 1)

    [got] = receiver.received
    assert receiver.refused == []
    assert got.event["type"] == "user.created" and got.resource_id == user.user_id
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["User-Agent"] == f"Muster-Webhooks/{__version__}"
    assert got.headers["Muster-Event-Id"] == got.event["id"]
    assert got.headers["Muster-Event-Type"] == "user.created"
    [delivery] = webhooks.deliveries_page(uow, created.endpoint.endpoint_id).items
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("delivered", 1, 200)


def test_the_worker_retries_a_failing_receiver_then_gives_up(
    uow_factory: UowFactory, uow: UnitOfWork, receiver: Receiver, database_url: str
) -> None:
    created = webhooks.create_endpoint(uow, receiver.url("a"))
    receiver.secrets["a"] = created.secret
    receiver.status = 500
    given_user(uow)

    with running_worker(uow_factory, fast_settings(database_url, webhook_max_attempts=3)):
        deadline = time.monotonic() + 10
        while not webhooks.get_endpoint(uow, created.endpoint.endpoint_id).dead:
            assert time.monotonic() < deadline, "the delivery never went dead"
            time.sleep(0.05)

    assert receiver.arrivals == 3 and receiver.received == []
    [dead] = webhooks.deliveries_page(uow, created.endpoint.endpoint_id).items
    assert (dead.state, dead.attempts, dead.last_status) == ("dead", 3, 500)


def test_the_worker_refuses_a_url_that_resolves_to_a_non_public_address(
    uow_factory: UowFactory, uow: UnitOfWork, receiver: Receiver, database_url: str
) -> None:
    created = webhooks.create_endpoint(uow, receiver.url("a").replace("127.0.0.1", "localhost"))
    receiver.secrets["a"] = created.secret
    given_user(uow)
    settings = fast_settings(
        database_url, webhook_max_attempts=1, webhook_allow_private_networks=False
    )

    with running_worker(uow_factory, settings):
        deadline = time.monotonic() + 10
        while not webhooks.get_endpoint(uow, created.endpoint.endpoint_id).dead:
            assert time.monotonic() < deadline, "the delivery never went dead"
            time.sleep(0.05)

    assert receiver.arrivals == 0  # never even connected
    [dead] = webhooks.deliveries_page(uow, created.endpoint.endpoint_id).items
    assert dead.last_error is not None
    assert "localhost resolves to" in dead.last_error and "not a public address" in dead.last_error


def test_the_worker_gives_up_on_a_receiver_that_does_not_answer_in_time(
    uow_factory: UowFactory, uow: UnitOfWork, receiver: Receiver, database_url: str
) -> None:
    created = webhooks.create_endpoint(uow, receiver.url("a"))
    receiver.secrets["a"] = created.secret
    receiver.hanging.set()
    given_user(uow)
    settings = fast_settings(database_url, webhook_timeout_seconds=0.3, webhook_max_attempts=1)

    with running_worker(uow_factory, settings):
        receiver.wait_for(lambda r: r.arrivals == 1)
        deadline = time.monotonic() + 10
        while not webhooks.get_endpoint(uow, created.endpoint.endpoint_id).dead:
            assert time.monotonic() < deadline
            time.sleep(0.05)

    [dead] = webhooks.deliveries_page(uow, created.endpoint.endpoint_id).items
    assert dead.last_status is None and "0.3 s" in (dead.last_error or "")


def test_an_event_removed_by_retention_goes_dead_unsent(
    uow_factory: UowFactory, uow: UnitOfWork, receiver: Receiver, database_url: str, engine: Engine
) -> None:
    created = webhooks.create_endpoint(uow, receiver.url("a"))
    receiver.secrets["a"] = created.secret
    given_user(uow)
    _fan_out(uow_factory)
    with engine.begin() as conn:
        conn.execute(delete(EventRow.__table__))

    with running_worker(uow_factory, fast_settings(database_url)):
        deadline = time.monotonic() + 10
        while not webhooks.get_endpoint(uow, created.endpoint.endpoint_id).dead:
            assert time.monotonic() < deadline
            time.sleep(0.05)

    [dead] = webhooks.deliveries_page(uow, created.endpoint.endpoint_id).items
    assert dead.event_type is None and "retention" in (dead.last_error or "")
    assert receiver.arrivals == 0


def test_two_workers_never_send_a_delivery_twice(
    uow_factory: UowFactory, uow: UnitOfWork, receiver: Receiver, database_url: str
) -> None:
    created = webhooks.create_endpoint(uow, receiver.url("a"))
    receiver.secrets["a"] = created.secret
    people = [given_user(uow) for _ in range(6)]
    for person in people:
        _deactivate(uow, person.user_id)
        _deactivate(uow, person.user_id, active=True)
    expected = 3 * len(people)

    settings = fast_settings(database_url, worker_concurrency=3)
    with running_worker(uow_factory, settings), running_worker(uow_factory, settings):
        receiver.wait_for(lambda r: len(r.received) >= expected)
        time.sleep(0.2)  # room for a duplicate to show up

    seqs = [r.seq for r in receiver.received]
    assert sorted(seqs) == list(range(1, expected + 1))  # each once
    for person in people:
        mine = [r.event["type"] for r in receiver.received if r.resource_id == person.user_id]
        assert mine == ["user.created", "user.deactivated", "user.reactivated"]
    assert receiver.refused == []


def test_the_worker_runs_its_maintenance_tasks_and_survives_one_that_fails(
    uow_factory: UowFactory, database_url: str, engine: Engine, uow: UnitOfWork
) -> None:
    ran = threading.Event()

    def broken() -> None:
        raise RuntimeError("a maintenance task failed")

    webhooks.create_endpoint(uow, URL)
    given_user(uow)
    _fan_out(uow_factory)
    [claim] = _claim(uow_factory)
    webhook_delivery.record_delivered(_queue(uow_factory), claim, 200)
    settings = fast_settings(database_url, webhook_retention_days=0.0000001)
    tasks = [broken, *maintenance_tasks(uow_factory, settings), ran.set]
    time.sleep(0.05)  # older than the retention

    with running_worker(uow_factory, settings, maintenance=tasks):
        assert ran.wait(10)

    assert _states(engine) == {}  # the delivered delivery was pruned


def test_refreshing_statistics_analyzes_the_queue_on_postgresql(
    uow_factory: UowFactory, engine: Engine
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite plans the queue's statements well without them")
    from sqlalchemy import text

    webhook_delivery.refresh_statistics(_queue(uow_factory))

    with engine.connect() as conn:
        analyzed = conn.execute(
            text(
                "SELECT last_analyze FROM pg_stat_user_tables "
                "WHERE relname = 'webhook_deliveries'"
            )
        ).scalar()
    assert analyzed is not None
