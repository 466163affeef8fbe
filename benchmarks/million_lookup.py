"""`userName eq` lookups in a tenant of 1,000,000 users, on PostgreSQL or SQLite.

    .venv/bin/python benchmarks/million_lookup.py --database-url URL [--users 1000000]

URL must name an empty database: a SQLite file path (sqlite:////tmp/m.db) or a PostgreSQL
database (the URL printed by scripts/postgres.sh). The script migrates it, creates the tenant
`million`, stores one user through Muster's own service (the template), and copies it N - 1
times with one set-based INSERT ... SELECT (generate_series on PostgreSQL, a recursive CTE on
SQLite), each copy with its own id, userName, email and externalId, and its email index row.
It then starts `muster serve` on a free loopback port and sends, over one keep-alive
connection, Okta's existence check `GET /Users?filter=userName eq "…"&startIndex=1&count=100`
for random users that exist (hits) and for names that do not (misses), one at a time.

It prints p50/p99 latency, the server's CPU per lookup from /proc (and, on PostgreSQL, the CPU
of the backends serving that database), the bulk-load time and the bytes on disk per user.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))
from scim_load import (
    OKTA_HEADERS,
    TICK_MS,
    matching_cpu_ticks,
    percentile,
    tree_cpu_ticks,
)

from muster.config import Settings
from muster.db.engine import normalise_url
from muster.services import api_tokens, tenants, users
from muster.services.database import Database

DOMAIN = "million.example.com"


def _user_name(i: int) -> str:
    return f"user{i}@{DOMAIN}"


def _template(i: int) -> dict[str, Any]:
    """User number i as Okta creates it (see scim_load.py)."""
    email = _user_name(i)
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": email,
        "name": {"givenName": "Ann", "familyName": f"Lee{i}"},
        "emails": [{"primary": True, "value": email, "type": "work"}],
        "displayName": f"Ann Lee{i}",
        "locale": "en-US",
        "externalId": f"00u{i:017d}",
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    }


# The copies: every column of the template row, with the per-user values rewritten. `i` runs
# from 2 to N; user 1 is the template itself, stored through the service.
_COPY_POSTGRES = """
INSERT INTO users (tenant_id, id, user_name, user_name_key, email_key, external_id, active,
                   source, document, created_at, last_modified, version)
SELECT t.tenant_id,
       lpad(to_hex(i), 8, '0') || '-0000-7000-8000-' || lpad(to_hex(i), 12, '0'),
       'user' || i || '@' || :domain, 'user' || i || '@' || :domain,
       'user' || i || '@' || :domain, '00u' || lpad(i::text, 17, '0'), t.active, t.source,
       jsonb_set(jsonb_set(jsonb_set(jsonb_set(jsonb_set(t.document,
           '{userName}', to_jsonb('user' || i || '@' || :domain)),
           '{emails,0,value}', to_jsonb('user' || i || '@' || :domain)),
           '{externalId}', to_jsonb('00u' || lpad(i::text, 17, '0'))),
           '{name,familyName}', to_jsonb('Lee' || i)),
           '{displayName}', to_jsonb('Ann Lee' || i)),
       t.created_at, t.last_modified, t.version
FROM users t, generate_series(2, :n) AS i
WHERE t.tenant_id = :tenant AND t.id = :template
"""
_EMAILS_POSTGRES = """
INSERT INTO user_emails (tenant_id, value_key, user_id)
SELECT :tenant, 'user' || i || '@' || :domain,
       lpad(to_hex(i), 8, '0') || '-0000-7000-8000-' || lpad(to_hex(i), 12, '0')
FROM generate_series(2, :n) AS i
"""
_COPY_SQLITE = """
WITH RECURSIVE s(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM s WHERE i < :n)
INSERT INTO users (tenant_id, id, user_name, user_name_key, email_key, external_id, active,
                   source, document, created_at, last_modified, version)
SELECT t.tenant_id, printf('%08x-0000-7000-8000-%012x', i, i),
       'user' || i || '@' || :domain, 'user' || i || '@' || :domain,
       'user' || i || '@' || :domain, printf('00u%017d', i), t.active, t.source,
       json_set(t.document, '$.userName', 'user' || i || '@' || :domain,
                '$.emails[0].value', 'user' || i || '@' || :domain,
                '$.externalId', printf('00u%017d', i),
                '$.name.familyName', 'Lee' || i, '$.displayName', 'Ann Lee' || i),
       t.created_at, t.last_modified, t.version
FROM users t, s
WHERE t.tenant_id = :tenant AND t.id = :template
"""
_EMAILS_SQLITE = """
WITH RECURSIVE s(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM s WHERE i < :n)
INSERT INTO user_emails (tenant_id, value_key, user_id)
SELECT :tenant, 'user' || i || '@' || :domain, printf('%08x-0000-7000-8000-%012x', i, i) FROM s
"""


def bulk_load(database: Database, n: int) -> tuple[str, str]:
    """Create the tenant and its N users; return (tenant id, token)."""
    tenant = tenants.create_tenant(database.uow(), "million", plan="enterprise", seats=n + 100)
    token = api_tokens.issue_scim_token(database.uow(), "million").secret
    template = users.create_user(database.uow(tenant.tenant_id), _template(1)).user
    postgres = database.engine.dialect.name == "postgresql"
    params = {"n": n, "tenant": tenant.tenant_id, "template": template.user_id, "domain": DOMAIN}
    began = time.perf_counter()
    with database.engine.begin() as conn:
        conn.execute(text(_COPY_POSTGRES if postgres else _COPY_SQLITE), params)
        conn.execute(text(_EMAILS_POSTGRES if postgres else _EMAILS_SQLITE), params)
        conn.execute(
            text("UPDATE tenants SET seats_used = :n WHERE id = :tenant"),
            {"n": n, "tenant": tenant.tenant_id},
        )
    loaded = time.perf_counter() - began
    with database.engine.connect() as conn:
        if postgres:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM ANALYZE users, user_emails")
            )
        else:
            conn.execute(text("ANALYZE"))
            conn.commit()
    print(f"bulk load: {n - 1} users and their email rows in {loaded:.1f} s (one transaction)")
    return tenant.tenant_id, token


def bytes_on_disk(conn: Connection, n: int) -> None:
    if conn.dialect.name == "postgresql":
        sizes = {
            table: conn.execute(text(f"SELECT pg_total_relation_size('{table}')")).scalar()
            for table in ("users", "user_emails")
        }
        for table, size in sizes.items():
            heap = conn.execute(text(f"SELECT pg_relation_size('{table}')")).scalar()
            print(
                f"  {table:<12} {size / 1e6:8.1f} MB with indexes ({size / n:6.0f} B/user; "
                f"heap {heap / n:.0f} B/user, indexes {(size - heap) / n:.0f} B/user)"
            )
        total = sum(sizes.values())
        print(f"  total        {total / 1e6:8.1f} MB = {total / n:.0f} bytes per user")
    else:
        pages = conn.execute(text("PRAGMA page_count")).scalar()
        page_size = conn.execute(text("PRAGMA page_size")).scalar()
        total = pages * page_size
        print(f"  SQLite file  {total / 1e6:8.1f} MB = {total / n:.0f} bytes per user")


def start_server(url: str, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MUSTER_DATABASE_URL": url, "MUSTER_CREATE_DEMO_TENANT": "false"}
    muster = [sys.executable, "-m", "muster.cli", "serve", "--port", str(port)]
    log = (workdir / "million-server.log").open("wb")
    server = subprocess.Popen(muster, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.2)
        if server.poll() is not None:
            break
    server.kill()
    raise SystemExit("muster serve did not become ready")


def lookups(
    label: str,
    port: int,
    token: str,
    names: list[str],
    expect: int,
    server_pid: int,
    db_match: str | None,
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {**OKTA_HEADERS, "Authorization": f"Bearer {token}"}
    latencies = []
    db0 = matching_cpu_ticks(db_match) if db_match else 0
    cpu0 = sum(tree_cpu_ticks(server_pid))
    began = time.perf_counter()
    for name in names:
        query = urllib.parse.quote(f'userName eq "{name}"')
        sent = time.perf_counter()
        conn.request("GET", f"/scim/v2/Users?filter={query}&startIndex=1&count=100", None, headers)
        response = conn.getresponse()
        body = response.read()
        latencies.append(time.perf_counter() - sent)
        found = json.loads(body).get("totalResults") if response.status == 200 else None
        if found != expect:
            raise SystemExit(f"{name}: status {response.status}, totalResults {found}, {body!r}")
    wall = time.perf_counter() - began
    time.sleep(0.3)  # the provisioning log is written after the answer
    cpu_ms = (sum(tree_cpu_ticks(server_pid)) - cpu0) * TICK_MS
    latencies.sort()
    n = len(names)
    print(
        f"  {label:<7} {n} lookups in {wall:.1f} s ({n / wall:.0f}/s, one connection): "
        f"p50 {percentile(latencies, 50) * 1000:.2f} ms, p99 {percentile(latencies, 99) * 1000:.2f}"
        f" ms; server CPU {cpu_ms / n:.3f} ms/lookup (±{TICK_MS / n:.3f})"
    )
    if db_match:
        db_ms = (matching_cpu_ticks(db_match) - db0) * TICK_MS
        print(
            f"          PostgreSQL backend CPU {db_ms / n:.3f} ms/lookup; "
            f"server + database {(cpu_ms + db_ms) / n:.3f} ms/lookup"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", required=True, help="an EMPTY database (see above)")
    p.add_argument("--users", type=int, default=1_000_000)
    p.add_argument("--lookups", type=int, default=5000, help="of each kind (hits, misses)")
    args = p.parse_args()
    if not 2 <= args.users <= 20_000_000 or not 1 <= args.lookups <= 100_000:
        p.error("--users between 2 and 20,000,000; --lookups between 1 and 100,000")
    url = args.database_url
    database = Database(Settings(database_url=url, create_demo_tenant=False))
    database.upgrade()
    with database.engine.connect() as conn:
        if conn.execute(text("SELECT count(*) FROM tenants")).scalar():
            raise SystemExit("the database is not empty; give the URL of an empty one")
    print(f"database {database.engine.dialect.name}: {url}")
    _, token = bulk_load(database, args.users)
    with database.engine.connect() as conn:
        bytes_on_disk(conn, args.users)
    database.dispose()

    parsed = make_url(normalise_url(url))
    db_match = f" {parsed.database} " if parsed.get_backend_name() == "postgresql" else None
    workdir = Path(os.environ.get("TMPDIR", "/tmp"))
    port = int(os.environ.get("MUSTER_BENCH_PORT", "0")) or _free_port()
    server = start_server(url, port, workdir)
    try:
        rng = random.Random(7)
        warm = [_user_name(rng.randint(1, args.users)) for _ in range(200)]
        lookups("warm-up", port, token, warm, 1, server.pid, None)  # caches, prepared statements
        print("measured:")
        hits = [_user_name(rng.randint(1, args.users)) for _ in range(args.lookups)]
        lookups("hits", port, token, hits, 1, server.pid, db_match)
        misses = [f"nobody{rng.randint(1, 10**9)}@{DOMAIN}" for _ in range(args.lookups)]
        lookups("misses", port, token, misses, 0, server.pid, db_match)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    main()
