#!/usr/bin/env python3
"""Fuzz load: 100,000 hostile and sloppy requests against a real server, counted by status.

    .venv/bin/python benchmarks/fuzz_load.py [--requests 100000] [--connections 8] [--seed 1]

It migrates a throwaway SQLite file (or MUSTER_BENCH_DATABASE_URL, an empty database of your
own), stores a tenant with a few users and a group, another tenant with a user (its ids are
sent too), an events API key, and starts `muster serve` with its default workers. Then it sends
--requests requests made by tests/fuzz_requests.py (the generator the fuzz suite's Hypothesis
drives) over --connections keep-alive connections, each with its own seeded generator, and
prints the count of each status, the first few 5xx with their requests, and the server's
ERROR log lines. RFC 7644 §3.11's 501 for /Me is counted apart. Exit 0 when no request got any
other 5xx, 1 otherwise. Loopback only; bounded by --requests.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fuzz_requests import FuzzRequest, Known, random_request  # noqa: E402

from muster.config import Settings  # noqa: E402
from muster.services import api_tokens, groups, tenants, users  # noqa: E402
from muster.services.database import Database  # noqa: E402

VENV = Path(os.environ.get("MUSTER_VENV", ROOT / ".venv"))
MUSTER = str(VENV / "bin" / "muster")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def person(name: str) -> dict[str, object]:
    email = f"{name}@example.com"
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": email,
        "emails": [{"primary": True, "value": email, "type": "work"}],
        "name": {"givenName": "Ann", "familyName": "Lee"},
    }


def prepare(url: str) -> Known:
    database = Database(Settings(database_url=url))
    database.upgrade()
    tenant = tenants.create_tenant(database.uow(), "fuzz", plan="enterprise", seats=1_000_000)
    other = tenants.create_tenant(database.uow(), "other", plan="enterprise", seats=10)
    uow = database.uow
    people = [users.create_user(uow(tenant.tenant_id), person(f"p{i}")).user for i in range(5)]
    group = groups.create_group(
        uow(tenant.tenant_id),
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Everyone",
            "members": [{"value": p.user_id} for p in people[:3]],
        },
    ).group
    stranger = users.create_user(uow(other.tenant_id), person("stranger")).user
    known = Known(
        user_ids=[p.user_id for p in people],
        group_ids=[group.group_id],
        token=api_tokens.issue_scim_token(uow(), "fuzz").secret,
        events_key=api_tokens.issue_events_key(uow(), "fuzz").secret,
        other_tenant_ids=[stranger.user_id],
    )
    database.dispose()
    return known


def send(conn: http.client.HTTPConnection, request: FuzzRequest) -> int:
    headers = {name: value.encode() for name, value in request.headers.items()}
    conn.request(request.method, request.path, body=request.body, headers=headers)  # type: ignore[arg-type]
    response = conn.getresponse()
    response.read()
    return response.status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="muster-fuzz-"))
    url = os.environ.get("MUSTER_BENCH_DATABASE_URL") or f"sqlite:///{folder / 'fuzz.db'}"
    known = prepare(url)
    port = free_port()
    env = {
        **os.environ,
        "MUSTER_DATABASE_URL": url,
        "MUSTER_CREATE_DEMO_TENANT": "false",
        "MUSTER_SERVE_WORKER": "false",
        "MUSTER_RATE_LIMIT_REQUESTS": "0",
        "MUSTER_AUTH_FAILURES_PER_WINDOW": "0",  # bad tokens are part of the mix
        "MUSTER_LOG_FORMAT": "text",
    }
    log_path = folder / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [MUSTER, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    lock = threading.Lock()
    try:
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(OSError):
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                probe.request("GET", "/readyz")
                if probe.getresponse().status == 200:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                print(log_path.read_text(), file=sys.stderr)
                return 2
            time.sleep(0.2)
        time.sleep(2)
        share = args.requests // args.connections

        def run(index: int) -> None:
            rng = random.Random(args.seed * 1000 + index)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            for _ in range(share):
                request = random_request(rng, known)
                try:
                    status = send(conn, request)
                except (OSError, http.client.HTTPException) as error:
                    status = 0
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                    with lock:
                        failures.append(f"transport {error!r}: {request.describe()}")
                is_me = request.path.split("?")[0].rstrip("/").endswith("/Me")
                key = -501 if (is_me and status == 501) else status
                with lock:
                    statuses[key] += 1
                    if status >= 500 and key != -501 and len(failures) < 20:
                        failures.append(f"{status}: {request.describe()}")

        started = time.monotonic()
        threads = [threading.Thread(target=run, args=(i,)) for i in range(args.connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    finally:
        server.terminate()
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            server.kill()
    total = sum(statuses.values())
    print(
        f"{total} requests in {elapsed:.0f} s ({total / elapsed:.0f}/s), {args.connections} "
        f"connections, seed {args.seed}, database {url.split(':')[0]}"
    )
    print("\n   status   count")
    for status, count in sorted(statuses.items(), key=lambda item: abs(item[0])):
        label = "501 /Me" if status == -501 else str(status or "transport error")
        print(f"   {label:<8} {count:>7}")
    server_errors = sum(c for s, c in statuses.items() if s >= 500 or s == 0)
    print(f"\n   5xx (but /Me's 501) and transport errors: {server_errors}")
    for line in failures[:20]:
        print("   " + line[:400])
    errors = [line for line in log_path.read_text().splitlines() if " ERROR " in line]
    print(f"   server ERROR log lines: {len(errors)}")
    for line in errors[:5]:
        print("   " + line[:300])
    subprocess.run(["rm", "-rf", str(folder)], check=False)
    return 0 if server_errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
