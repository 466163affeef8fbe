#!/usr/bin/env python3
"""Adversary: the costliest requests, sent back to back, while another client's GETs are timed.

    .venv/bin/python benchmarks/adversary.py [--seconds 30] [--users 5000] [--workers N]

It migrates a throwaway SQLite file, stores an Enterprise tenant with --users users (through the
services, before the server starts), and starts `muster serve` with its default worker count
(one per core) unless --workers says otherwise. Then, for --seconds:

- two adversary connections loop over the costliest requests benchmarks/costly_requests.py
  found within the 1 MiB body limit: a /Bulk of 100 user creates (maxOperations), a group
  created with every user as a member, a PatchOp of 1,000 filtered operations on a user with
  100 emails, a search with 32 substring terms on the JSON document, a /Bulk of 100 PatchOps
  holding 1,000 changes together (the most one /Bulk may hold);
- a measuring client sends `GET /Users/{id}` every 10 ms, over four keep-alive connections in
  turn (so both worker processes are measured), and records each latency.

It prints each adversary request's count, statuses and median time, and the measured GETs'
p50, p99 and max. Target: GET p99 <= 50 ms. Exit 0 when it holds, 1 otherwise, 2 on a setup
error. Loopback only; every loop ends with --seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from muster.config import Settings
from muster.services import api_tokens, tenants, users
from muster.services.database import Database

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("MUSTER_VENV", ROOT / ".venv"))
MUSTER = str(VENV / "bin" / "muster")
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_URN = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
SEARCH_URN = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
Request = tuple[str, str, Any]  # method, path, JSON body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def user_body(name: str, **more: Any) -> dict[str, Any]:
    email = f"{name}@example.com"
    return {
        "schemas": [USER_URN],
        "userName": email,
        "name": {"givenName": "Ann", "familyName": "Lee"},
        "emails": [{"primary": True, "value": email, "type": "work"}],
        "active": True,
        **more,
    }


class Adversary:
    """Builds the costly requests; each call to next() gives a fresh one (new names)."""

    def __init__(self, user_ids: list[str], wide: list[tuple[str, str]]) -> None:
        self.user_ids = user_ids
        self.wide = wide  # (user id, name) of users holding 100 emails each
        self.counter = itertools.count()

    def kinds(self) -> list[tuple[str, Callable[[], Request]]]:
        return [
            ("bulk of 100 user creates", self.bulk_creates),
            ("group with every user", self.big_group),
            ("PatchOp of 1000 filtered operations", self.filtered_patch),
            ("search with 32 terms on the document", self.heavy_search),
            ("bulk of 100 PatchOps, 1000 changes", self.bulk_patches),
        ]

    def tag(self) -> str:
        return f"adv{next(self.counter)}-{time.monotonic_ns()}"

    def bulk_creates(self) -> Request:
        tag = self.tag()
        operations = [
            {"method": "POST", "path": "/Users", "bulkId": f"u{i}", "data": user_body(f"{tag}-{i}")}
            for i in range(100)  # MUSTER_BULK_MAX_OPERATIONS
        ]
        return "POST", "/scim/v2/Bulk", {"schemas": [BULK_URN], "Operations": operations}

    def big_group(self) -> Request:
        members = [{"value": user_id} for user_id in self.user_ids]
        body = {"schemas": [GROUP_URN], "displayName": self.tag(), "members": members}
        return "POST", "/scim/v2/Groups", body

    def _filtered_operations(self) -> tuple[str, list[dict[str, Any]]]:
        """1,000 filtered replaces (the PatchOp limit), each matched against 100 emails."""
        user_id, name = self.wide[next(self.counter) % len(self.wide)]
        operations = [
            {
                "op": "replace",
                "value": f"d{i}",
                "path": f'emails[value eq "{name}.{i % 99}@example.org"].display',
            }
            for i in range(1000)
        ]
        return user_id, operations

    def filtered_patch(self) -> Request:
        user_id, operations = self._filtered_operations()
        return (
            "PATCH",
            f"/scim/v2/Users/{user_id}",
            {"schemas": [PATCH_URN], "Operations": operations},
        )

    def heavy_search(self) -> Request:
        terms = " or ".join(f'name.givenName co "g{i}"' for i in range(32))
        return (
            "POST",
            "/scim/v2/Users/.search",
            {
                "schemas": [SEARCH_URN],
                "filter": terms,
                "count": 100,
            },
        )

    def bulk_patches(self) -> Request:
        """100 PatchOps of 10 filtered operations: the 1,000 changes a /Bulk may hold."""
        operations = []
        for _ in range(100):
            user_id, changes = self._filtered_operations()
            operations.append(
                {
                    "method": "PATCH",
                    "path": f"/Users/{user_id}",
                    "data": {"schemas": [PATCH_URN], "Operations": changes[:10]},
                }
            )
        return "POST", "/scim/v2/Bulk", {"schemas": [BULK_URN], "Operations": operations}


def send(conn: http.client.HTTPConnection, token: str, request: Request) -> int:
    method, path, body = request
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    conn.request(
        method, path, body=orjson.dumps(body) if body is not None else None, headers=headers
    )
    response = conn.getresponse()
    response.read()
    return response.status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=None, help="default: muster's own")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="muster-adversary-"))
    url = f"sqlite:///{folder / 'adversary.db'}"
    database = Database(Settings(database_url=url))
    database.upgrade()
    tenant = tenants.create_tenant(database.uow(), "adversary", plan="enterprise", seats=10_000_000)
    token = api_tokens.issue_scim_token(database.uow(), "adversary").secret
    started = time.monotonic()
    user_ids = [
        users.create_user(database.uow(tenant.tenant_id), user_body(f"member-{i}")).user.user_id
        for i in range(args.users)
    ]
    wide = []
    for i in range(20):
        name = f"wide-{i}"
        emails = [{"value": f"{name}.{j}@example.org", "type": "other"} for j in range(99)]
        body = user_body(name)
        body["emails"] = body["emails"] + emails
        stored = users.create_user(database.uow(tenant.tenant_id), body).user
        wide.append((stored.user_id, name))
    print(f"stored {len(user_ids) + len(wide)} users in {time.monotonic() - started:.1f} s")
    database.dispose()
    port = free_port()
    env = {
        **os.environ,
        "MUSTER_DATABASE_URL": url,
        "MUSTER_CREATE_DEMO_TENANT": "false",
        "MUSTER_RATE_LIMIT_REQUESTS": "0",
        "MUSTER_SERVE_WORKER": "false",
    }
    command = [MUSTER, "serve", "--host", "127.0.0.1", "--port", str(port)]
    if args.workers:
        command += ["--workers", str(args.workers)]
    log = (folder / "server.log").open("wb")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(OSError):
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                probe.request("GET", "/readyz")
                if probe.getresponse().status == 200:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                print("the server did not start", file=sys.stderr)
                return 2
            time.sleep(0.2)
        time.sleep(3)  # every worker up

        stop = threading.Event()
        adversary = Adversary(user_ids, wide)
        outcomes: dict[str, list[tuple[int, float]]] = defaultdict(list)

        def attack(offset: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            kinds = adversary.kinds()
            for step in itertools.count(offset):
                if stop.is_set():
                    return
                name, build = kinds[step % len(kinds)]
                request = build()
                sent = time.monotonic()
                try:
                    status = send(conn, token, request)
                except (OSError, http.client.HTTPException):
                    status = 0
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                outcomes[name].append((status, time.monotonic() - sent))

        latencies: list[float] = []
        statuses: dict[int, int] = defaultdict(int)

        def measure() -> None:
            conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(4)]
            target = ("GET", f"/scim/v2/Users/{user_ids[0]}", None)
            for step in itertools.count():
                if stop.is_set():
                    return
                sent = time.monotonic()
                try:
                    status = send(conns[step % 4], token, target)
                except (OSError, http.client.HTTPException):
                    status = 0
                    conns[step % 4] = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                latencies.append(time.monotonic() - sent)
                statuses[status] += 1
                stop.wait(max(0.0, 0.01 - (time.monotonic() - sent)))

        threads = [threading.Thread(target=attack, args=(i * 2,)) for i in range(2)]
        threads.append(threading.Thread(target=measure))
        for thread in threads:
            thread.start()
        time.sleep(args.seconds)
        stop.set()
        for thread in threads:
            thread.join(timeout=180)
    finally:
        server.terminate()
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    workers = args.workers or "default"
    print(f"\n{args.seconds:g} s, workers {workers}; adversary requests (2 connections):")
    for name, rows in outcomes.items():
        codes = sorted({status for status, _ in rows})
        median = statistics.median(t for _, t in rows) * 1000
        print(f"   {name:<38} {len(rows):>4} sent, statuses {codes}, median {median:7.1f} ms")
    ordered = sorted(latencies)
    p50 = ordered[len(ordered) // 2] * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    print(f"\nmeasured GET /Users/{{id}}: {len(ordered)} sent, statuses {dict(statuses)}")
    print(f"   p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {ordered[-1] * 1000:.1f} ms")
    errors = [line for line in (folder / "server.log").read_text().splitlines() if "ERROR" in line]
    if errors:
        print(f"\nserver log: {len(errors)} ERROR lines; the first: {errors[0][:300]}")
    subprocess.run(["rm", "-rf", str(folder)], check=False)
    ok = p99 <= 50 and set(statuses) == {200}
    print(f"\n   target GET p99 <= 50 ms: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
