#!/usr/bin/env python3
"""Console page queries on a 100,000-member group: groups list, group detail pages, user search.

    .venv/bin/python benchmarks/console_pages.py [--members 100000] [--database-url URL]

Builds a throwaway database (SQLite in a temporary folder unless --database-url names an
empty PostgreSQL database): one tenant, N users, one group holding all of them, 200 small
groups. Users and membership rows are inserted in bulk (the setup is not what is measured).
Then it times the service calls behind the console pages, each several times, and prints the
median and the worst in milliseconds, plus the process's peak RSS growth during the reads.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from muster.config import Settings
from muster.db import statements as sql
from muster.db.ids import new_id
from muster.services import groups, tenants, users
from muster.services.clock import utcnow
from muster.services.database import Database


def _setup(database: Database, members: int) -> tuple[str, str]:
    tenant = tenants.create_tenant(database.uow(), "bench", plan="enterprise", seats=members + 10)
    tid, now = tenant.tenant_id, utcnow()
    big = new_id()
    with database.engine.begin() as conn:
        conn.execute(
            sql.groups.insert(),
            [
                {
                    "tenant_id": tid,
                    "id": gid,
                    "display_name": name,
                    "display_name_key": name.lower(),
                    "external_id": None,
                    "document": {"displayName": name},
                    "created_at": now,
                    "last_modified": now,
                    "version": 1,
                }
                for gid, name in [(big, "All Employees")]
                + [(new_id(), f"Team {i:03}") for i in range(200)]
            ],
        )
        batch = 5000
        for start in range(0, members, batch):
            rows, emails, memberships = [], [], []
            for i in range(start, min(start + batch, members)):
                uid, email = new_id(), f"person{i}@example.com"
                document = {
                    "userName": email,
                    "name": {"givenName": f"Given{i}", "familyName": f"Family{i}"},
                    "emails": [{"value": email, "primary": True}],
                    "active": True,
                }
                rows.append(
                    {
                        "tenant_id": tid,
                        "id": uid,
                        "user_name": email,
                        "user_name_key": email,
                        "email_key": email,
                        "external_id": None,
                        "active": True,
                        "source": "idp",
                        "document": document,
                        "created_at": now,
                        "last_modified": now,
                        "version": 1,
                    }
                )
                emails.append({"tenant_id": tid, "value_key": email, "user_id": uid})
                memberships.append(
                    {
                        "tenant_id": tid,
                        "group_id": big,
                        "user_id": uid,
                        "source": "idp",
                        "added_at": now,
                    }
                )
            conn.execute(sql.users.insert(), rows)
            conn.execute(sql.user_emails.insert(), emails)
            conn.execute(sql.memberships.insert(), memberships)
        conn.execute(sql.tenants.update().where(sql.tenants.c.id == tid).values(seats_used=members))
    if database.engine.dialect.name == "postgresql":
        # The steady state autovacuum keeps: statistics and a visibility map for index-only
        # scans (the member counts), not a table fresh from a bulk load.
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    return tid, big


def _time(label: str, call: Callable[[], Any], repeat: int) -> None:
    call()  # warm the caches once
    took = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        took.append((time.perf_counter() - started) * 1000)
    print(f"{label:<44} median {statistics.median(took):8.2f} ms   worst {max(took):8.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'console.db'}"
        database = Database(Settings(database_url=url))
        database.upgrade()
        started = time.perf_counter()
        tid, big = _setup(database, args.members)
        print(
            f"setup: {args.members} users in one group, 200 small groups, "
            f"{time.perf_counter() - started:.1f} s ({database.engine.dialect.name})"
        )
        uow = lambda: database.uow(tid)  # noqa: E731
        last_page = -(-args.members // 50)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        _time("groups list, page 1 (counts by SQL)", lambda: groups.groups_page(uow()), args.repeat)
        _time("group detail, members page 1", lambda: groups.group_detail(uow(), big), args.repeat)
        _time(
            f"group detail, members page {last_page}",
            lambda: groups.group_detail(uow(), big, page=last_page),
            args.repeat,
        )
        _time("users, page 1 (no filter)", lambda: users.search_users(uow()), args.repeat)
        _time(
            "users, search 'family99999' (scan)",
            lambda: users.search_users(uow(), text="family99999"),
            args.repeat,
        )
        _time(
            "users, source=local (none match)",
            lambda: users.search_users(uow(), source="local"),
            args.repeat,
        )
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
        print(f"peak RSS growth during the reads: {grown / 1024:.1f} MiB")
        database.dispose()


if __name__ == "__main__":
    main()
