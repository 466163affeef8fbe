"""`eq` on userName, externalId, emails.value and a group's displayName is an index lookup.

The statements a filtered GET really runs are captured from the engine and explained on the
same database: SQLite's EXPLAIN QUERY PLAN must show SEARCH ... USING INDEX (no SCAN of the
table); PostgreSQL's EXPLAIN, with sequential scans priced out, must show no Seq Scan.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from starlette.testclient import TestClient

from muster.db import statements as sql
from muster.scim.records import TenantInfo
from tests.factories import build_user, suffix

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
TABLES = ("users", "user_emails", "groups", "memberships")


@pytest.fixture
def captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The SELECTs run on the engine while the test runs."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def _plan(engine: Engine, statement: str, parameters: Any) -> str:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")
            rows = conn.exec_driver_sql(f"EXPLAIN {statement}", parameters).all()
            return "\n".join(row[0] for row in rows)
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
        return "\n".join(row[-1] for row in rows)


def _assert_indexed(engine: Engine, statement: str, parameters: Any) -> None:
    """Every table is reached through an index on more than tenant_id (no tenant-wide scan)."""
    plan = _plan(engine, statement, parameters)
    if engine.dialect.name == "postgresql":
        assert "Seq Scan" not in plan, f"{statement}\n{plan}"
        conditions = [line for line in plan.splitlines() if "Index Cond:" in line]
        assert conditions, plan
        for line in conditions:
            assert " AND " in line, f"{statement}\n{plan}"
        return
    lines = [line for line in plan.splitlines() if any(f" {t} " in f"{line} " for t in TABLES)]
    assert lines, plan
    for line in lines:
        assert line.startswith("SEARCH") and " AND " in line, f"{statement}\n{plan}"


def _filtered_statements(
    okta: TestClient, captured: list[tuple[str, Any]], path: str, text: str, **params: Any
) -> list[tuple[str, Any]]:
    captured.clear()
    response = okta.get(path, params={"filter": text, **params})
    assert response.status_code == 200, response.text
    assert response.json()["totalResults"] == 1, text
    chosen = [(s, p) for s, p in captured if "FROM users" in s or "FROM groups" in s]
    assert chosen, captured
    return chosen


@pytest.fixture
def stored(okta: TestClient, engine: Engine, tenant: TenantInfo) -> dict[str, str]:
    tag = suffix()
    for n in range(5):
        okta.post("/scim/v2/Users", json=build_user(email=f"other{n}.{tag}@x.test"))
    user = okta.post(
        "/scim/v2/Users",
        json=build_user(
            email=f"Ann.{tag}@x.test",
            externalId=f"ext-{tag}",
            emails=[
                {"value": f"Ann.{tag}@x.test", "type": "work", "primary": True},
                {"value": f"ann.{tag}@home.test", "type": "home"},
            ],
        ),
    ).json()
    group = okta.post(
        "/scim/v2/Groups",
        json={
            "schemas": [GROUP],
            "displayName": f"Pilots {tag}",
            "externalId": f"g-{tag}",
            "members": [{"value": user["id"]}],
        },
    ).json()
    if engine.dialect.name == "postgresql":
        _bulk_rows(engine, tenant.tenant_id)
    return {"tag": tag, "user_id": user["id"], "group_id": group["id"], "tenant": tenant.tenant_id}


def _bulk_rows(engine: Engine, tenant_id: str) -> None:
    """PostgreSQL plans by statistics: give it a tenant of thousands of rows, then ANALYZE."""
    now = "TIMESTAMP '2026-01-01 00:00:00'"
    with engine.begin() as conn:
        for statement in (
            "INSERT INTO users (tenant_id, id, user_name, user_name_key, email_key, external_id,"
            " active, source, document, created_at, last_modified, version)"
            " SELECT :t, 'bulk-' || g, 'b' || g || '@x.test', 'b' || g || '@x.test',"
            f" 'b' || g || '@x.test', 'bx-' || g, true, 'idp', '{{}}'::jsonb, {now}, {now}, 1"
            " FROM generate_series(1, 3000) AS g",
            "INSERT INTO user_emails (tenant_id, value_key, user_id)"
            " SELECT :t, 'b' || g || '@x.test', 'bulk-' || g FROM generate_series(1, 3000) AS g",
            "INSERT INTO groups (tenant_id, id, display_name, display_name_key, external_id,"
            " document, created_at, last_modified, version)"
            f" SELECT :t, 'bulkg-' || g, 'G' || g, 'g' || g, 'gx-' || g, '{{}}'::jsonb, {now},"
            f" {now}, 1 FROM generate_series(1, 1000) AS g",
            "INSERT INTO memberships (tenant_id, group_id, user_id, source, added_at)"
            f" SELECT :t, 'bulkg-' || (g % 1000 + 1), 'bulk-' || g, 'idp', {now}"
            " FROM generate_series(1, 3000) AS g",
        ):
            conn.execute(text(statement), {"t": tenant_id})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE users, user_emails, groups, memberships")


@pytest.mark.parametrize(
    ("path", "template", "params"),
    [
        ("/scim/v2/Users", 'userName eq "ANN.{tag}@X.TEST"', {"startIndex": 2, "count": 5}),
        ("/scim/v2/Users", 'externalId eq "ext-{tag}"', {"startIndex": 2}),
        ("/scim/v2/Users", 'emails.value eq "ANN.{tag}@HOME.TEST"', {"startIndex": 2}),
        ("/scim/v2/Users", 'emails[value eq "ann.{tag}@home.test"]', {}),
        ("/scim/v2/Users", 'emails eq "ann.{tag}@home.test" and active eq true', {}),
        ("/scim/v2/Users", 'groups.value eq "{group_id}"', {}),
        ("/scim/v2/Groups", 'displayName eq "PILOTS {tag}"', {}),
        ("/scim/v2/Groups", 'externalId eq "g-{tag}"', {}),
        ("/scim/v2/Groups", 'members.value eq "{user_id}"', {}),
    ],
)
def test_equality_filters_use_an_index(
    okta: TestClient,
    engine: Engine,
    captured: list[tuple[str, Any]],
    stored: dict[str, str],
    path: str,
    template: str,
    params: dict[str, Any],
) -> None:
    text = template.format(**stored)

    for statement, parameters in _filtered_statements(okta, captured, path, text, **params):
        _assert_indexed(engine, statement, parameters)


@pytest.mark.parametrize(
    ("statement_name", "key"),
    [
        ("USERS_BY_USER_NAME_KEY", "ann.{tag}@x.test"),
        ("USERS_BY_EXTERNAL_ID", "ext-{tag}"),
        ("USERS_BY_EMAIL_KEY", "ann.{tag}@home.test"),
    ],
)
def test_the_prebuilt_existence_checks_use_an_index(
    engine: Engine, stored: dict[str, str], statement_name: str, key: str
) -> None:
    # A lone `userName eq`, `externalId eq` or `emails.value eq` (what IdPs send before each
    # create) runs on a prebuilt statement straight on the driver, not through the events.
    compiled = getattr(sql, statement_name).compile(dialect=engine.dialect)
    values = {"b_tenant": stored["tenant"], "b_key": key.format(**stored), "b_offset": 0}
    values["b_limit"] = 100
    statement = str(compiled)
    if engine.dialect.name == "postgresql":
        parameters: Any = values
    else:
        parameters = tuple(values[name] for name in compiled.positiontup or ())
    _assert_indexed(engine, statement, parameters)
