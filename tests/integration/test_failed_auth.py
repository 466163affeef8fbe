"""Bad credentials: never in a tenant's log, always in the process log and a metric, and an
address that keeps failing is throttled while good tokens from elsewhere go on (issue 14)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from muster.app import create_app
from muster.config import Settings
from muster.scim.records import TenantInfo
from muster.services import api_tokens, provisioning_log
from muster.services.database import UnitOfWork
from tests.factories import OKTA_HEADERS

USERS = "/scim/v2/Users"


def _client(settings: Settings, engine: Engine, address: str) -> TestClient:
    return TestClient(create_app(settings, engine=engine), client=(address, 50000))


def test_a_token_naming_a_tenant_writes_nothing_into_its_log(
    settings: Settings, engine: Engine, tenant: TenantInfo, uow: UnitOfWork
) -> None:
    forged = f"Bearer mst_{tenant.tenant_id.replace('-', '')}_anything"
    with _client(settings, engine, "203.0.113.7") as stranger:
        for _ in range(20):
            refused = stranger.get(
                USERS, headers={"Authorization": forged, "User-Agent": "planted text"}
            )
            assert refused.status_code == 401

    assert provisioning_log.list_entries(uow, limit=100) == []


def test_failed_authentication_is_logged_and_counted(
    settings: Settings, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with _client(settings, engine, "203.0.113.8") as stranger, caplog.at_level(logging.WARNING):
        stranger.get(USERS, headers={"Authorization": "Bearer mst_nonsense_x"})
        stranger.get(USERS)  # no credential at all
        metrics = stranger.get("/metrics").text

    lines = [r.getMessage() for r in caplog.records if r.name == "muster.auth"]
    assert len(lines) == 2 and all("203.0.113.8" in line for line in lines)
    assert 'muster_auth_failures_total{outcome="refused"} 2.0' in metrics


def test_an_address_that_keeps_failing_is_throttled_and_good_tokens_go_on(
    database_url: str, engine: Engine, scim_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        database_url=database_url,
        create_demo_tenant=False,
        log_flush_seconds=0,
        auth_failures_per_window=5,
        auth_failure_window_seconds=3600,
    )
    app = create_app(settings, engine=engine)
    attacker = TestClient(app, client=("198.51.100.9", 50000))
    okta = TestClient(app, client=("192.0.2.10", 50000), headers=dict(OKTA_HEADERS))
    bad = {"Authorization": "Bearer mst_0123456789abcdef0123456789abcdef_guess"}
    with attacker, okta, caplog.at_level(logging.WARNING):
        statuses = [attacker.get(USERS, headers=bad).status_code for _ in range(8)]
        throttled = attacker.get(USERS, headers={"Authorization": f"Bearer {scim_token}"})
        good = okta.get(USERS, headers={"Authorization": f"Bearer {scim_token}"})
        metrics = okta.get("/metrics").text

    assert statuses == [401] * 5 + [429] * 3
    # Even its good token waits: the address, not the credential, is throttled.
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
    assert throttled.json()["status"] == "429"
    assert good.status_code == 200
    assert 'muster_auth_failures_total{outcome="throttled"} 4.0' in metrics
    lines = [r.getMessage() for r in caplog.records if r.name == "muster.auth"]
    assert len(lines) == 6  # five failures and one "now throttled": a flood writes no more


def test_a_throttled_address_costs_no_database_work(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(settings.model_copy(update={"auth_failures_per_window": 1}), engine=engine)
    calls: list[Any] = []
    real = api_tokens.authenticate_token
    monkeypatch.setattr(
        api_tokens, "authenticate_token", lambda *a, **k: calls.append(a) or real(*a, **k)
    )
    bad = {"Authorization": "Bearer mst_0123456789abcdef0123456789abcdef_guess"}
    with TestClient(app, client=("198.51.100.10", 50000)) as attacker:
        assert attacker.get(USERS, headers=bad).status_code == 401
        assert attacker.get(USERS, headers=bad).status_code == 429
    assert len(calls) <= 1


def test_events_api_keys_are_throttled_the_same_way(settings: Settings, engine: Engine) -> None:
    app = create_app(settings.model_copy(update={"auth_failures_per_window": 2}), engine=engine)
    bad = {"Authorization": "Bearer mev_0123456789abcdef0123456789abcdef_guess"}
    with TestClient(app, client=("198.51.100.11", 50000)) as attacker:
        statuses = [attacker.get("/api/v1/events", headers=bad).status_code for _ in range(3)]
        body = attacker.get("/api/v1/events", headers=bad).json()
    assert statuses == [401, 401, 429]
    assert body["error"] == "too_many_requests"


def test_a_refusal_before_the_token_is_checked_reaches_the_log_only_for_a_live_token(
    settings: Settings, engine: Engine, tenant: TenantInfo, scim_token: str, uow: UnitOfWork
) -> None:
    small = settings.model_copy(update={"max_body_bytes": 100})
    forged = f"Bearer mst_{tenant.tenant_id.replace('-', '')}_anything"
    with TestClient(create_app(small, engine=engine)) as client:
        big = {"content": b"{" + b" " * 200 + b"}"}
        assert client.post(USERS, headers={"Authorization": forged}, **big).status_code == 413
        genuine = {"Authorization": f"Bearer {scim_token}"}
        assert client.post(USERS, headers=genuine, **big).status_code == 413

    [entry] = provisioning_log.list_entries(uow)
    assert entry.status == 413  # the live token's; the made-up one wrote nothing
