"""The `muster` command, run as an operator would, and the migrations against the tables."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from muster.db import schema
from muster.db.engine import make_engine
from muster.db.tables import Base
from muster.db.unit_of_work import UnitOfWork
from muster.errors import ScimError
from muster.services import api_tokens, events, provisioning_log, tenants
from muster.services.clock import utcnow
from muster.services.provisioning_log import LogEntry
from tests.cli_runner import Muster
from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.integration


@pytest.fixture
def muster(database_url: str, request: pytest.FixtureRequest) -> Muster:
    cli = Muster(database_url)
    if POSTGRES_URL:
        request.getfixturevalue("engine")  # the schema exists; this empties it
    else:
        assert "database at revision" in cli.ok("db", "upgrade").stdout
    return cli


@pytest.fixture
def cli_engine(muster: Muster, database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def test_tenant_create_then_list(muster: Muster) -> None:
    created = muster.ok(
        "tenant", "create", "acme", "--name", "Acme Corp", "--plan", "enterprise", "--seats", "10"
    )

    assert created.stdout.strip() == "acme\tAcme Corp\tplan=enterprise\tseats=0/10\tscim=off"
    muster.ok("tenant", "create", "beta")
    listed = muster.ok("tenant", "list").stdout.splitlines()
    assert [line.split("\t")[0] for line in listed] == ["acme", "beta"]
    assert listed[1] == f"beta\tbeta\tplan=free\tseats=0/{tenants.DEFAULT_SEATS}\tscim=off"


def test_tenant_create_refuses_a_bad_slug_without_a_traceback(muster: Muster) -> None:
    result = muster("tenant", "create", "Acme_Corp")

    assert result.exit_code != 0
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output


def test_tenant_create_refuses_a_taken_slug(muster: Muster) -> None:
    muster.ok("tenant", "create", "acme")

    result = muster("tenant", "create", "acme")

    assert result.exit_code != 0
    assert "acme" in result.stderr


def test_tenant_set_changes_plan_and_seats(muster: Muster) -> None:
    muster.ok("tenant", "create", "acme")

    changed = muster.ok("tenant", "set", "acme", "--plan", "enterprise", "--seats", "3")

    assert "plan=enterprise" in changed.stdout
    assert "seats=0/3" in changed.stdout
    assert "plan=enterprise\tseats=0/3" in muster.ok("tenant", "list").stdout


def test_tenant_set_of_an_unknown_slug_fails(muster: Muster) -> None:
    result = muster("tenant", "set", "nobody", "--seats", "3")

    assert result.exit_code != 0
    assert "nobody" in result.stderr


def test_scim_token_prints_the_token_alone_on_the_last_line(
    muster: Muster, cli_engine: Engine
) -> None:
    muster.ok("tenant", "create", "acme", "--plan", "enterprise")

    result = muster.ok("scim-token", "acme")

    token = result.stdout.splitlines()[-1]
    assert token.startswith("mst_")
    assert token == token.strip() and " " not in token
    principal = api_tokens.authenticate_token(UnitOfWork(cli_engine), token)
    assert principal.tenant_id == tenants.get_tenant(UnitOfWork(cli_engine), "acme").tenant_id
    assert "scim=on" in muster.ok("tenant", "list").stdout


def test_scim_token_again_makes_the_old_token_stop_working(
    muster: Muster, cli_engine: Engine
) -> None:
    muster.ok("tenant", "create", "acme", "--plan", "enterprise")
    old = muster.ok("scim-token", "acme").stdout.splitlines()[-1]

    new = muster.ok("scim-token", "acme").stdout.splitlines()[-1]

    assert new != old
    with pytest.raises(ScimError) as caught:
        api_tokens.authenticate_token(UnitOfWork(cli_engine), old)
    assert caught.value.status == 401


def test_scim_token_for_a_free_tenant_fails_naming_enterprise(muster: Muster) -> None:
    muster.ok("tenant", "create", "smallco")

    result = muster("scim-token", "smallco")

    assert result.exit_code != 0
    assert "Enterprise" in result.stderr
    assert "mst_" not in result.output
    assert "scim=off" in muster.ok("tenant", "list").stdout


def test_scim_off_turns_scim_off_and_the_token_stops_working(
    muster: Muster, cli_engine: Engine
) -> None:
    muster.ok("tenant", "create", "acme", "--plan", "enterprise")
    token = muster.ok("scim-token", "acme").stdout.splitlines()[-1]

    muster.ok("scim-off", "acme")

    assert "scim=off" in muster.ok("tenant", "list").stdout
    with pytest.raises(ScimError) as caught:
        api_tokens.authenticate_token(UnitOfWork(cli_engine), token)
    assert caught.value.status == 403
    assert "turned off" in caught.value.detail


def test_scim_off_for_an_unknown_slug_fails(muster: Muster) -> None:
    result = muster("scim-off", "nobody")

    assert result.exit_code != 0
    assert "nobody" in result.stderr


def _log(engine: Engine, slug: str, status: int, path: str, **extra: object) -> None:
    tenant_id = tenants.get_tenant(UnitOfWork(engine), slug).tenant_id
    values: dict[str, object] = {
        "at": utcnow(),
        "method": "POST",
        "path": path,
        "resource_type": "User",
        "resource_id": None,
        "status": status,
        "scim_type": None,
        "detail": None,
        "duration_ms": 2.5,
        "user_agent": "Okta SCIM Client 1.0.0",
        "request_id": path[-8:],
    }
    values.update(extra)
    provisioning_log.record_request(
        UnitOfWork(engine, tenant_id),
        LogEntry(**values),  # type: ignore[arg-type]
        retention_days=30,
        max_entries=1000,
    )
    time.sleep(0.002)  # log ids are time-ordered to the millisecond


def test_log_shows_failed_requests_newest_first_up_to_the_limit(
    muster: Muster, cli_engine: Engine
) -> None:
    muster.ok("tenant", "create", "acme", "--plan", "enterprise")
    _log(
        cli_engine,
        "acme",
        400,
        "/scim/v2/Users/first",
        scim_type="invalidValue",
        detail="active must be a boolean (true or false)",
    )
    _log(cli_engine, "acme", 201, "/scim/v2/Users/created")
    _log(
        cli_engine,
        "acme",
        409,
        "/scim/v2/Users/second",
        scim_type="uniqueness",
        detail="userName is already in use in this tenant",
    )
    _log(cli_engine, "acme", 403, "/scim/v2/Users/third-x", detail="licence limit reached")

    two = muster.ok("log", "acme", "--failed", "--limit", "2").stdout
    every_failure = muster.ok("log", "acme", "--failed", "--limit", "10").stdout

    assert "/scim/v2/Users/third-x" in two
    assert "/scim/v2/Users/second" in two
    assert "/scim/v2/Users/first" not in two
    assert "uniqueness: userName is already in use in this tenant" in two
    assert "client: Okta SCIM Client 1.0.0" in two
    assert two.index("third-x") < two.index("second")
    assert "/scim/v2/Users/first" in every_failure
    assert "invalidValue: active must be a boolean" in every_failure
    assert "/scim/v2/Users/created" not in every_failure
    assert "/scim/v2/Users/created" in muster.ok("log", "acme").stdout


def test_log_without_entries_says_so(muster: Muster) -> None:
    muster.ok("tenant", "create", "acme")

    assert muster.ok("log", "acme", "--failed").stdout.strip() == "no entries (failed only)"


def test_log_of_an_unknown_tenant_fails(muster: Muster) -> None:
    result = muster("log", "nobody")

    assert result.exit_code != 0
    assert "nobody" in result.stderr


def test_log_refuses_a_limit_below_one(muster: Muster) -> None:
    muster.ok("tenant", "create", "acme")

    assert muster("log", "acme", "--limit", "0").exit_code != 0


# migrations


def test_migrations_build_exactly_the_tables_of_the_code(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")

    schema.upgrade(engine)

    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "render_as_batch": True}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
    assert schema.current_revision(engine) == schema.head_revision()
    assert set(inspect(engine).get_table_names()) >= set(Base.metadata.tables)
    engine.dispose()


def test_db_upgrade_twice_is_harmless(tmp_path: Path) -> None:
    cli = Muster(f"sqlite:///{tmp_path / 'twice.db'}")

    first = cli.ok("db", "upgrade")
    second = cli.ok("db", "upgrade")

    assert first.stdout == second.stdout
    assert cli.ok("db", "current").stdout.strip() == schema.head_revision()


# -- events-key and events prune ---------------------------------------------------------------


def _refused_key(engine: Engine, key: str) -> int:
    with pytest.raises(ScimError) as caught:
        api_tokens.authenticate_events_key(UnitOfWork(engine), key)
    return caught.value.status


def test_events_key_prints_the_key_alone_on_the_last_line(
    muster: Muster, cli_engine: Engine
) -> None:
    muster.ok("tenant", "create", "acme")  # any plan

    result = muster.ok("events-key", "acme")

    key = result.stdout.splitlines()[-1]
    assert key.startswith("mev_") and key == key.strip() and " " not in key
    assert "had no events API key" in result.stderr
    principal = api_tokens.authenticate_events_key(UnitOfWork(cli_engine), key)
    assert principal.tenant_id == tenants.get_tenant(UnitOfWork(cli_engine), "acme").tenant_id
    assert "scim=off" in muster.ok("tenant", "list").stdout  # the SCIM switch is untouched


def test_events_key_again_names_the_key_it_replaced(muster: Muster, cli_engine: Engine) -> None:
    muster.ok("tenant", "create", "acme", "--plan", "enterprise")
    scim = muster.ok("scim-token", "acme").stdout.splitlines()[-1]
    old = muster.ok("events-key", "acme").stdout.splitlines()[-1]
    old_prefix = api_tokens.current_events_key(
        UnitOfWork(cli_engine, tenants.get_tenant(UnitOfWork(cli_engine), "acme").tenant_id)
    )

    again = muster.ok("events-key", "acme")

    assert old_prefix is not None and f"Replaced acme's events API key {old_prefix.prefix}" in (
        again.stderr
    )
    assert again.stdout.splitlines()[-1] != old
    assert _refused_key(cli_engine, old) == 401
    assert api_tokens.authenticate_token(UnitOfWork(cli_engine), scim).kind == "scim"


def test_events_key_revoke(muster: Muster, cli_engine: Engine) -> None:
    muster.ok("tenant", "create", "acme")
    key = muster.ok("events-key", "acme").stdout.splitlines()[-1]

    revoked = muster.ok("events-key", "acme", "--revoke")
    nothing = muster.ok("events-key", "acme", "--revoke")

    assert "Revoked acme's events API key mev_…" in revoked.stdout
    assert "no events API key" in nothing.stdout
    assert _refused_key(cli_engine, key) == 401


def test_events_key_for_an_unknown_slug_fails_cleanly(muster: Muster) -> None:
    result = muster("events-key", "nobody")

    assert result.exit_code == 1 and result.stderr.startswith("error: ")
    assert "Traceback" not in result.output


def test_events_prune_removes_events_older_than_the_setting(
    muster: Muster, cli_engine: Engine, database_url: str
) -> None:
    muster.ok("tenant", "create", "acme")
    tenant_id = tenants.get_tenant(UnitOfWork(cli_engine), "acme").tenant_id
    uow = UnitOfWork(cli_engine, tenant_id)
    with uow:
        events.tenant_event(uow, events.SCIM_ENABLED, utcnow() - timedelta(days=8))
        events.tenant_event(uow, events.SCIM_DISABLED, utcnow() - timedelta(days=6))
        uow.commit()
    muster.runner.env["MUSTER_EVENT_RETENTION_DAYS"] = "7"

    result = muster.ok("events", "prune")

    assert "removed 1 events older than 7 days" in result.stdout
    with uow.reading():
        assert uow.events.position() == (2, 1)
