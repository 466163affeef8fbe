#!/usr/bin/env python3
"""Filter latency with 1,000,000 users in one tenant on SQLite.

    .venv/bin/python benchmarks/million_filters.py [--db /tmp/muster-million-filters.db]
        [--users 1000000] [--lookups 300] [--co-runs 10]

Setup (not measured): a migrated SQLite file with tenant `million` and its users, written by
set-based SQL (one INSERT ... SELECT over a recursive counter per table), not over HTTP. The
file is kept and reused by later runs while it still holds the expected users.

Measured, for each filter, --lookups requests (each looks up a different random user) after
a short warm-up; p50 / p99 / max in milliseconds:

  http     the whole ASGI application in-process: a GET /scim/v2/Users?filter=... scope goes
           through routing, bearer-token auth, the SCIM pipeline, the service, SQL and the JSON
           body (no socket, no HTTP parser);
  service  services.users.list_users with a parsed ListQuery: the service, SQL and row mapping.

Filters: `userName eq` (Okta's existence check, a prebuilt statement), `externalId eq`,
`emails.value eq`, and `name.familyName co "smi"` with count=100 (a scan: the page stops early,
the totalResults count reads every user's JSON document). Each prints its SQLite query plan.
The target for the eq lookups is p99 < 10 ms in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select, text

from muster.app import create_app
from muster.config import Settings
from muster.db.filter_sql import users
from muster.scim.listing import parse_list_query
from muster.services import api_tokens, tenants
from muster.services import users as user_service
from muster.services.database import Database

SLUG = "million"
FAMILY_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall",
    "Rivera", "Campbell", "Mitchell", "Carter", "Smithers",
]  # fmt: skip
TARGET_MS = 10.0


def _user_id(n: int) -> str:
    return f"{n:08x}-0000-7000-8000-{n:012x}"


def _load(database: Database, tenant_id: str, count: int) -> None:
    """Insert `count` users and their email rows with two set-based statements."""
    names = ", ".join(f"({i}, '{name}')" for i, name in enumerate(FAMILY_NAMES))
    counter = f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count})"
    user_name = "'User' || i || '@Bench.example'"
    with database.engine.begin() as conn:
        conn.execute(
            text(
                f"{counter}, fam(k, name) AS (VALUES {names}) "
                "INSERT INTO users (tenant_id, id, user_name, user_name_key, email_key, "
                "external_id, active, source, document, created_at, last_modified, version) "
                f"SELECT :t, printf('%08x-0000-7000-8000-%012x', i, i), {user_name}, "
                f"lower({user_name}), lower({user_name}), 'ext-' || i, 1, 'idp', "
                "json_object('schemas', json_array('urn:ietf:params:scim:schemas:core:2.0:User'),"
                f" 'userName', {user_name}, 'externalId', 'ext-' || i, "
                "'name', json_object('givenName', 'Given' || i, 'familyName', fam.name), "
                "'displayName', 'Given' || i || ' ' || fam.name, "
                f"'emails', json_array(json_object('value', {user_name}, 'type', 'work', "
                "'primary', json('true'))), 'active', json('true')), "
                "'2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000', 1 "
                f"FROM n JOIN fam ON fam.k = (i * 7) % {len(FAMILY_NAMES)}"
            ),
            {"t": tenant_id},
        )
        conn.execute(
            text(
                f"{counter} INSERT INTO user_emails (tenant_id, value_key, user_id) "
                f"SELECT :t, lower({user_name}), printf('%08x-0000-7000-8000-%012x', i, i) FROM n"
            ),
            {"t": tenant_id},
        )
        conn.execute(
            text("UPDATE tenants SET seats_used = :n, seat_limit = :n WHERE id = :t"),
            {"n": count, "t": tenant_id},
        )
    with database.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def _prepare(path: str, count: int) -> tuple[Database, str, str]:
    """Return the database, the tenant id and a fresh SCIM token, loading users if needed."""
    settings = Settings(database_url=f"sqlite:///{path}", create_demo_tenant=False)
    database = Database(settings)
    database.upgrade()
    platform = database.uow()
    existing = [t for t in tenants.list_tenants(platform) if t.slug == SLUG]
    if existing:
        tenant_id = existing[0].tenant_id
    else:
        tenant_id = tenants.create_tenant(platform, SLUG, plan="enterprise", seats=count).tenant_id
    with database.engine.connect() as conn:
        stored = conn.execute(
            select(func.count()).select_from(users).where(users.c.tenant_id == tenant_id)
        ).scalar_one()
    if stored != count:
        if stored:
            sys.exit(f"{path} holds {stored} users of {SLUG}, not {count}: delete it first")
        started = time.perf_counter()
        print(f"loading {count:,} users into {path} ...", flush=True)
        _load(database, tenant_id, count)
        print(f"  loaded in {time.perf_counter() - started:.1f} s", flush=True)
    else:
        print(f"reusing {path} ({count:,} users)")
    token = api_tokens.issue_scim_token(database.uow(), SLUG).secret
    return database, tenant_id, token


class AsgiDriver:
    """Calls the ASGI app directly: one GET at a time, the full application stack."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self.loop = app, asyncio.new_event_loop()
        self.headers = [
            (b"host", b"bench.local"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"accept", b"application/scim+json"),
            (b"user-agent", b"Okta SCIM Client 1.0.0"),
        ]
        self.loop.run_until_complete(self._lifespan("startup"))

    async def _lifespan(self, phase: str) -> None:
        if phase == "startup":
            self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            self._replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            self._task = asyncio.ensure_future(
                self.app.site({"type": "lifespan"}, self._events.get, self._replies.put)
            )
        await self._events.put({"type": f"lifespan.{phase}"})
        reply = await self._replies.get()
        assert reply["type"].endswith("complete"), reply

    def close(self) -> None:
        self.loop.run_until_complete(self._lifespan("shutdown"))
        self.loop.close()

    def get(self, path: str, params: dict[str, str]) -> tuple[int, bytes]:
        return self.loop.run_until_complete(self._get(path, params))

    async def _get(self, path: str, params: dict[str, str]) -> tuple[int, bytes]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": urllib.parse.urlencode(params).encode(),
            "root_path": "",
            "headers": self.headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        status, body = 0, bytearray()

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, bytes(body)


def _percentiles(samples: list[float]) -> tuple[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return (
        f"p50 {statistics.median(ordered):7.2f} ms  p99 {p99:7.2f} ms  max {ordered[-1]:7.2f} ms"
        f"  (n={len(ordered)})"
    ), p99


def _measure(run: Callable[[int], None], picks: list[int], warmup: int = 20) -> list[float]:
    for n in picks[:warmup]:
        run(n)
    samples = []
    for n in picks:
        started = time.perf_counter_ns()
        run(n)
        samples.append((time.perf_counter_ns() - started) / 1e6)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="/tmp/muster-million-filters.db")
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=300)
    parser.add_argument("--co-runs", type=int, default=10)
    args = parser.parse_args()

    database, tenant_id, token = _prepare(args.db, args.users)
    settings = Settings(
        database_url=f"sqlite:///{args.db}", create_demo_tenant=False, log_flush_seconds=0.2
    )
    app = create_app(settings, database=database)
    driver = AsgiDriver(app, token)
    rng = random.Random(7)

    filters: dict[str, Callable[[int], str]] = {
        "userName eq": lambda n: f'userName eq "user{n}@bench.example"',
        "externalId eq": lambda n: f'externalId eq "ext-{n}"',
        "emails.value eq": lambda n: f'emails.value eq "USER{n}@bench.example"',
    }
    co_filter = 'name.familyName co "smi"'
    print(f"\nSQLite {database.engine.dialect.dbapi.sqlite_version}, {args.users:,} users in "
          f"one tenant, {os.cpu_count()} CPUs (shared)\n")  # fmt: skip
    _explain(database, tenant_id, {**{k: f(1) for k, f in filters.items()}, "co": co_filter})

    failures = 0
    for name, make in filters.items():
        picks = [rng.randint(1, args.users) for _ in range(args.lookups)]

        def over_http(n: int, make: Callable[[int], str] = make) -> None:
            status, body = driver.get("/scim/v2/Users", {"filter": make(n)})
            assert status == 200 and b'"totalResults":1' in body, (status, body[:300])

        def in_service(n: int, make: Callable[[int], str] = make) -> None:
            query = parse_list_query({"filter": make(n)}, default_count=100, max_count=1000)
            total, _ = user_service.list_users(database.uow(tenant_id), query)
            assert total == 1

        for layer, run in (("http", over_http), ("service", in_service)):
            line, p99 = _percentiles(_measure(run, picks))
            verdict = "ok" if p99 < TARGET_MS else f"FAIL (target p99 < {TARGET_MS} ms)"
            failures += p99 >= TARGET_MS
            print(f"{name:18} {layer:8} {line}  {verdict}")

    runs = list(range(args.co_runs))

    def co_http(_: int) -> None:
        status, body = driver.get("/scim/v2/Users", {"filter": co_filter, "count": "100"})
        assert status == 200 and b'"itemsPerPage":100' in body, (status, body[:300])

    def co_service(_: int) -> None:
        params = {"filter": co_filter, "count": "100"}
        query = parse_list_query(params, default_count=100, max_count=1000)
        total, page = user_service.list_users(database.uow(tenant_id), query)
        assert len(page) == 100 and total > 0

    for layer, run in (("http", co_http), ("service", co_service)):
        line, _ = _percentiles(_measure(run, runs, warmup=1))
        print(f"{'familyName co':18} {layer:8} {line}  (count=100, no target)")
    params = {"filter": co_filter, "count": "100"}
    query = parse_list_query(params, default_count=100, max_count=1000)
    total, _ = user_service.list_users(database.uow(tenant_id), query)
    print(f"\n`{co_filter}` matches {total:,} users (totalResults)")
    driver.close()
    return 1 if failures else 0


def _explain(database: Database, tenant_id: str, texts: dict[str, str]) -> None:
    from muster.db.filter_sql import user_filter
    from muster.db.statements import USER_COLUMNS
    from muster.scim.listing import parse_filter

    with database.engine.connect() as conn:
        for name, filter_text in texts.items():
            where = user_filter(parse_filter(filter_text), tenant_id)
            statement = (
                select(*USER_COLUMNS)
                .where(users.c.tenant_id == tenant_id, where)
                .order_by(users.c.id)
                .limit(100)
            )
            compiled = statement.compile(conn, compile_kwargs={"literal_binds": True})
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
            print(f"plan {name:16} " + " | ".join(row[-1] for row in plan))
    print()


if __name__ == "__main__":
    sys.exit(main())
