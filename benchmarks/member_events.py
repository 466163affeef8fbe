"""Membership events of a 100,000-member group replace, written by the database.

    .venv/bin/python benchmarks/member_events.py --database-url URL [--users 100000]

URL must name an empty database (sqlite:////tmp/e.db, or the URL scripts/postgres.sh prints).
The script bulk-loads 2N users (as million_lookup.py does), creates an empty group through the
service, then times two full replaces through services.groups.replace_group, as a PUT /Groups
would run them:

  fill     members := users 1..N            -> N group.member_added events
  swap     members := users N+1..2N         -> N group.member_removed + N member_added events

For each it prints the wall time, the events written (from the tenant's counter), the time per
event, and how much the process's peak memory grew during the call: the member list of the
request is built before the call, so growth there would be events or memberships passing
through Python, which they must not.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from million_lookup import bulk_load

from muster.config import Settings
from muster.services import groups
from muster.services.database import Database

GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"


def _copy_id(i: int) -> str:
    return f"{i:08x}-0000-7000-8000-{i:012x}"  # the ids million_lookup's copies get


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _replace(database: Database, tenant_id: str, group_id: str, name: str, ids: range) -> None:
    body = {
        "schemas": [GROUP_URN],
        "displayName": name,
        "members": [{"value": _copy_id(i)} for i in ids],
    }
    uow = database.uow(tenant_id)
    with uow.reading():
        before = uow.events.position()[0]
    peak = _peak_mib()
    began = time.perf_counter()
    groups.replace_group(database.uow(tenant_id), group_id, body, if_match=None)
    took = time.perf_counter() - began
    with uow.reading():
        written = uow.events.position()[0] - before
    print(
        f"{len(ids):>7} members replaced: {took:6.2f} s, {written} events "
        f"({took / max(written, 1) * 1e6:.1f} µs each), peak memory +{_peak_mib() - peak:.1f} MiB"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--users", type=int, default=100_000)
    args = parser.parse_args()
    n = args.users
    database = Database(Settings(database_url=args.database_url, create_demo_tenant=False))
    database.upgrade()
    tenant_id, _ = bulk_load(database, 2 * n + 1)
    name = "All Employees"
    created = groups.create_group(
        database.uow(tenant_id), {"schemas": [GROUP_URN], "displayName": name}
    )
    group_id = created.group.group_id
    _replace(database, tenant_id, group_id, name, range(2, n + 2))  # fill
    _replace(database, tenant_id, group_id, name, range(n + 2, 2 * n + 2))  # swap
    return 0


if __name__ == "__main__":
    sys.exit(main())
