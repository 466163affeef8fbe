"""psycopg 3 or asyncpg: one indexed user lookup, measured each way on the same database.

    .venv/bin/pip install asyncpg   # only for this comparison; Muster does not use it
    .venv/bin/python benchmarks/pg_driver_lookup.py --database-url URL [--users 20000]

URL must name an empty PostgreSQL database (scripts/postgres.sh prints one). The users are
bulk-loaded as in million_lookup.py. Each variant runs the same lookup (the user row by
tenant and lower-cased userName, the query behind Okta's existence check) --iterations times
on one connection and prints the client's CPU and wall time per lookup.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from sqlalchemy import text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))
from million_lookup import DOMAIN, _user_name, bulk_load

from muster.config import Settings
from muster.db.engine import normalise_url
from muster.services.database import Database

SQL = (
    "SELECT id, user_name, active, document, created_at, last_modified, version FROM users"
    " WHERE tenant_id = {0} AND user_name_key = {1}"
)


def measure(label: str, iterations: int, run: Callable[[], None]) -> None:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    run()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(
        f"  {label:<40} {cpu / iterations * 1e6:7.1f} µs CPU, "
        f"{wall / iterations * 1e6:7.1f} µs wall per lookup"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", required=True)
    p.add_argument("--users", type=int, default=20_000)
    p.add_argument("--iterations", type=int, default=10_000)
    args = p.parse_args()
    import asyncpg  # type: ignore[import-not-found]
    import psycopg

    database = Database(Settings(database_url=args.database_url, create_demo_tenant=False))
    database.upgrade()
    tenant_id, _ = bulk_load(database, args.users)
    rng = random.Random(3)
    names = [_user_name(rng.randint(1, args.users)) for _ in range(args.iterations)]
    dsn = make_url(normalise_url(args.database_url)).set(drivername="postgresql")
    dsn_text = dsn.render_as_string(hide_password=False)
    n = args.iterations
    print(f"{n} lookups by userName among {args.users} users ({DOMAIN})")

    with psycopg.connect(dsn_text, autocommit=True) as conn:
        query = SQL.format("%s", "%s")

        def psycopg_raw() -> None:
            for name in names:
                row = conn.execute(query, (tenant_id, name), prepare=True).fetchone()
                assert row is not None

        psycopg_raw()  # warm: the server plans and prepares once
        measure("psycopg 3, raw, prepared", n, psycopg_raw)

    with database.engine.connect() as sa_conn:
        statement = text(SQL.format(":t", ":u"))

        def sqlalchemy_core() -> None:
            for name in names:
                row = sa_conn.execute(statement, {"t": tenant_id, "u": name}).first()
                assert row is not None

        sqlalchemy_core()
        measure("SQLAlchemy Core on psycopg 3", n, sqlalchemy_core)

    async def asyncpg_raw() -> None:
        conn = await asyncpg.connect(dsn_text)
        prepared = await conn.prepare(SQL.format("$1", "$2"))
        try:
            for name in names[:100]:  # warm
                await prepared.fetchrow(tenant_id, name)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for name in names:
                row = await prepared.fetchrow(tenant_id, name)
                assert row is not None
                orjson.loads(row["document"])  # psycopg decodes jsonb itself; asyncpg does not
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            print(
                f"  {'asyncpg, raw, prepared':<40} {cpu / n * 1e6:7.1f} µs CPU, "
                f"{wall / n * 1e6:7.1f} µs wall per lookup"
            )
        finally:
            await conn.close()

    asyncio.run(asyncpg_raw())
    database.dispose()


if __name__ == "__main__":
    main()
