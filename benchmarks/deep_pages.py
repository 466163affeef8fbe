"""Deep pages at a million users: by cursor (RFC 9865 keyset) against by startIndex (OFFSET).

In-process, on a throwaway SQLite file: one tenant is bulk-loaded with set-based SQL (a
recursive CTE, no HTTP, no per-row Python), then the page of users 900,001-900,100 is read
through the same service functions GET /Users calls, in creation order and sorted by
userName, and the p50/p99 of each are printed. An index page counts totalResults every time;
a cursor page past the first repeats the count carried in its cursor, so the COUNT (what the
first cursor page and every index page pay) is timed on its own too.

    .venv/bin/python benchmarks/deep_pages.py                 # 1,000,000 users
    .venv/bin/python benchmarks/deep_pages.py --users 200000 --repeat 20
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text

from muster.db.engine import make_engine
from muster.db.tables import Base
from muster.db.unit_of_work import UnitOfWork
from muster.scim.cursors import Cursor, CursorKeys, Listing, encode_cursor
from muster.scim.listing import ListQuery
from muster.services import tenants, users

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"

# Any key does: the pages are read straight through the services, signed and checked alike.
KEYS = CursorKeys((b"deep-pages-benchmark-cursor-key!",))


def _id(n: str) -> str:
    """SQL for a UUID-shaped id that sorts as n does (the real ids are time-ordered)."""
    return f"printf('%08x-0000-7000-8000-%012x', {n}, {n})"


def load(path: Path, count: int) -> str:
    """Create the schema and one tenant holding `count` users; return the tenant id."""
    engine = make_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    tenant = tenants.create_tenant(
        UnitOfWork(engine, None), "bench", plan="enterprise", seats=count + 10
    )
    engine.dispose()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    started = time.perf_counter()
    name = "printf('user%07d@example.com', n)"
    db.execute(
        f"""
        INSERT INTO users (tenant_id, id, user_name, user_name_key, email_key, external_id,
                           active, source, document, created_at, last_modified, version)
        WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < :count)
        SELECT :tenant, {_id("n")}, {name}, {name}, {name}, printf('00u%07d', n), 1, 'idp',
               json_object('schemas', json_array('{USER_URN}'), 'userName', {name},
                           'name', json_object('givenName', 'Ann', 'familyName', 'Lee'),
                           'emails', json_array(json_object('value', {name}, 'type', 'work',
                                                            'primary', json('true'))),
                           'active', json('true')),
               '2025-01-01 00:00:00.000000', '2025-01-01 00:00:00.000000', 1
        FROM seq
        """,
        {"count": count, "tenant": tenant.tenant_id},
    )
    db.execute(
        "INSERT INTO user_emails (tenant_id, value_key, user_id) "
        "SELECT tenant_id, email_key, id FROM users WHERE tenant_id = :tenant",
        {"tenant": tenant.tenant_id},
    )
    db.execute("UPDATE tenants SET seats_used = :count", {"count": count})
    db.commit()
    db.execute("ANALYZE")
    db.close()
    print(f"loaded {count:,} users in {time.perf_counter() - started:.1f} s", flush=True)
    return tenant.tenant_id


def timed(label: str, repeat: int, run: Callable[[], Any]) -> list[float]:
    run()  # warm the page cache and the statement cache
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
    print(f"  {label:<44} p50 {p50:9.2f} ms   p99 {p99:9.2f} ms", flush=True)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--start", type=int, default=900_001, help="first user of the page")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args(argv)
    if args.start + args.count - 1 > args.users:
        parser.error("the page must lie inside the users loaded")

    with tempfile.TemporaryDirectory(prefix="muster-deep-") as folder:
        path = Path(folder) / "deep.db"
        tenant_id = load(path, args.users)
        engine = make_engine(f"sqlite:///{path}")
        uow = UnitOfWork(engine, tenant_id)
        before = args.start - 1  # the last user of the previous page
        with engine.connect() as conn:
            last_id = conn.execute(text(f"SELECT {_id(':n')}"), {"n": before}).scalar_one()
        last_name = f"user{before:07d}@example.com"
        end = args.start + args.count - 1
        print(
            f"page of users {args.start:,}-{end:,} of {args.users:,} "
            f"(count={args.count}, {args.repeat} runs each, SQLite, in-process)"
        )

        def by_index(sort_by: str | None) -> Callable[[], Any]:
            query = ListQuery(None, args.start, args.count, sort_by)

            def run() -> Any:
                total, page = users.list_users(uow, query, with_groups=False)
                assert total == args.users and len(page) == args.count
                return page

            return run

        def by_cursor(sort_by: str | None, key: Any) -> Callable[[], Any]:
            sort = (sort_by or "").lower()
            # As a client holds it after 9,000 pages: the first page's total rides along.
            cursor = Cursor("User", sort, False, key, last_id, total=args.users)
            listing = Listing(KEYS, tenant_id, "User", "", sort, False)
            query = ListQuery(
                None,
                1,
                args.count,
                sort_by,
                cursor=encode_cursor(cursor, listing),
                cursor_keys=KEYS,
                tenant_id=tenant_id,
            )

            def run() -> Any:
                page = users.list_users_by_cursor(uow, query, with_groups=False)
                assert page.total == args.users and len(page.items) == args.count
                return page

            return run

        index_page = by_index(None)()
        cursor_page = by_cursor(None, last_id)()
        assert [u.user_id for u in index_page] == [u.user_id for u in cursor_page.items]
        sorted_index = by_index("userName")()
        sorted_cursor = by_cursor("userName", last_name)()
        assert [u.user_id for u in sorted_index] == [u.user_id for u in sorted_cursor.items]

        print("creation order (no sortBy):")
        timed("startIndex (OFFSET, COUNT each page)", args.repeat, by_index(None))
        timed("cursor (keyset seek, total from cursor)", args.repeat, by_cursor(None, last_id))
        print("sortBy=userName:")
        timed("startIndex (OFFSET, COUNT each page)", args.repeat, by_index("userName"))
        timed(
            "cursor (keyset seek, total from cursor)",
            args.repeat,
            by_cursor("userName", last_name),
        )
        print("the COUNT behind totalResults (first cursor page, every index page):")
        count_only = ListQuery(None, 1, 0)
        timed("count=0 (totalResults only)", args.repeat,
              lambda: users.list_users(uow, count_only, with_groups=False))  # fmt: skip
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
