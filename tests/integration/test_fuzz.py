"""Property-based fuzzing of every SCIM endpoint, query parameter and the events API (issue 14).

Hypothesis drives tests/fuzz_requests.py's generator: hostile and sloppy requests of every
kind. Whatever comes in, the answer is below 500 and an error has a body that parses: RFC 7644's
error on /scim/v2, the events API's own JSON. Bounded to a few hundred requests a run, so the
whole suite stays within CI's time; benchmarks/fuzz_load.py sends 100,000.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from starlette.testclient import TestClient

from muster.app import create_app
from muster.config import Settings
from muster.scim.records import TenantInfo
from muster.services import api_tokens
from muster.services.database import UnitOfWork
from tests.factories import given_tenant, given_user
from tests.fuzz_requests import FuzzRequest, Known, random_request
from tests.group_factories import given_group, members

ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"
EXAMPLES = 400


@pytest.fixture
def fuzzed(
    database_url: str, engine: Engine, uow_factory: Any, tenant: TenantInfo, uow: UnitOfWork
) -> Iterator[tuple[TestClient, Known]]:
    settings_ = Settings(
        database_url=database_url,
        create_demo_tenant=False,
        log_flush_seconds=0.05,
        auth_failures_per_window=0,  # bad tokens are part of the mix: never throttle the fuzzer
        rate_limit_requests=0,
    )
    people = [given_user(uow) for _ in range(3)]
    group = given_group(uow, members=members(*(p.user_id for p in people[:2])))
    other = given_tenant(uow_factory())
    stranger = given_user(uow_factory(other.tenant_id))
    known = Known(
        user_ids=[p.user_id for p in people],
        group_ids=[group.group_id],
        token=api_tokens.issue_scim_token(uow_factory(), tenant.slug).secret,
        events_key=api_tokens.issue_events_key(uow_factory(), tenant.slug).secret,
        other_tenant_ids=[stranger.user_id],
    )
    with TestClient(create_app(settings_, engine=engine), base_url="http://muster.test") as client:
        first = client.get(
            "/scim/v2/Users?cursor=&count=1", headers={"Authorization": f"Bearer {known.token}"}
        )
        known.cursors.append(first.json().get("nextCursor") or "")
        yield client, known


def send(client: TestClient, request: FuzzRequest) -> Any:
    # Header values as bytes: a client may send any octets, which httpx would refuse as text.
    headers = {name: value.encode() for name, value in request.headers.items()}
    return client.request(request.method, request.path, headers=headers, content=request.body)


def assert_well_answered(request: FuzzRequest, response: Any) -> None:
    """Below 500; an error's body parses and says what it is."""
    where = request.describe()
    # RFC 7644 §3.11: a service provider without /Me answers 501, the one 5xx the RFC asks for.
    is_me = request.path.split("?")[0].rstrip("/").endswith("/Me")
    allowed = response.status_code < 500 or (is_me and response.status_code == 501)
    assert allowed, f"{response.status_code} for {where}: {response.text[:500]}"
    if response.status_code < 400 or request.method == "HEAD":
        return
    body = orjson.loads(response.content)
    if request.path.startswith("/api/"):
        assert isinstance(body.get("error"), str) and isinstance(body.get("detail"), str), where
        return
    assert body["schemas"] == [ERROR_URN], where
    assert body["status"] == str(response.status_code), where
    assert isinstance(body["detail"], str) and body["detail"], where


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(rng=st.randoms(use_true_random=False))
def test_no_request_gets_a_5xx(fuzzed: tuple[TestClient, Known], rng: random.Random) -> None:
    client, known = fuzzed
    request = random_request(rng, known)
    assert_well_answered(request, send(client, request))
