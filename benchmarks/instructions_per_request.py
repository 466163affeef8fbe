#!/usr/bin/env python3
"""Instructions per SCIM request: `muster serve` under callgrind, one figure per request kind.

Wall-clock and even /proc CPU figures swing with whatever else the machine runs; callgrind
counts the instructions the server process executes, which repeat to within a fraction of a
percent for the same code and inputs. Use it to compare two versions of the hot path; use
scim_load.py for the real CPU time per request on a quiet machine.

    .venv/bin/python benchmarks/instructions_per_request.py [--requests 300]

It creates a throwaway SQLite database and tenant, starts `muster serve` under
`valgrind --tool=callgrind` on a free loopback port, warms it up with the same kind of
requests, and then, per phase, zeroes the counters, sends the phase's requests over one
keep-alive connection and dumps the counters: the dump's total divided by the number of
requests is the figure printed. Only loopback; every loop is bounded.
"""

from __future__ import annotations

import argparse
import glob
import http.client
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scim_load import OKTA_HEADERS, PATCH_URN, Workload, dumps, loads

VENV = Path(os.environ.get("MUSTER_VENV", Path(__file__).resolve().parents[1] / ".venv"))
MUSTER = str(VENV / "bin" / "muster")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def total_instructions(dump: str) -> int:
    for line in Path(dump).read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {dump}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per phase")
    args = parser.parse_args()
    n = args.requests
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        print("needs valgrind (Debian package valgrind)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="muster-instr."))
    env = {
        **os.environ,
        "MUSTER_DATABASE_URL": f"sqlite:///{work}/bench.db",
        "MUSTER_CREATE_DEMO_TENANT": "false",
    }
    run = lambda *a: subprocess.run([MUSTER, *a], env=env, check=True, capture_output=True)  # noqa: E731
    run("db", "upgrade")
    run("tenant", "create", "bench", "--plan", "enterprise", "--seats", str(4 * n + 100))
    token = run("scim-token", "bench").stdout.decode().strip().splitlines()[-1]
    port = free_port()
    out = work / "callgrind.out"
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
         MUSTER, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(1800):  # up to 180 s: valgrind starts slowly
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=5).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {**OKTA_HEADERS, "Authorization": f"Bearer {token}"}

        def send(method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
            conn.request(method, path, body=body, headers=headers)
            answer = conn.getresponse()
            return answer.status, answer.read()

        tag = secrets.token_hex(3)
        warm = Workload("/scim/v2", n, f"w{tag}")
        load = Workload("/scim/v2", n, f"m{tag}")
        phases: list[tuple[str, Callable[[Workload, int], tuple[str, str, bytes | None]]]] = [
            ("lookup-miss", lambda w, i: ("GET", w._filter_path(w.users.names[i]), None)),
            ("create", lambda w, i: ("POST", "/scim/v2/Users", w.create_body(i))),
            ("lookup", lambda w, i: ("GET", w._filter_path(w.users.names[i]), None)),
            ("get", lambda w, i: ("GET", f"/scim/v2/Users/{w.users.ids[i]}", None)),
            ("put", lambda w, i: ("PUT", f"/scim/v2/Users/{w.users.ids[i]}", _put_body(w, i))),
            ("patch", lambda w, i: ("PATCH", f"/scim/v2/Users/{w.users.ids[i]}", _patch_body())),
        ]
        subprocess.run(["callgrind_control", "-i", "on", str(server.pid)], check=True,
                       capture_output=True)
        print(f"{'phase':<12} {'instructions/request':>22}")
        for name, make in phases:
            for workload, measured in ((warm, False), (load, True)):
                if measured:
                    time.sleep(0.5)  # let the log buffer flush the warm-up's entries
                    subprocess.run(["callgrind_control", "-z", str(server.pid)], check=True,
                                   capture_output=True)
                for i in range(n):
                    status, data = send(*make(workload, i))
                    if status >= 300:
                        raise RuntimeError(f"{name}: {status} {data[:300]!r}")
                    if name == "create":
                        workload.users.ids[i] = loads(data)["id"]
                    elif name == "get":
                        workload.users.bodies[i] = loads(data)
                if measured:
                    time.sleep(0.5)  # include the batched log flush of this phase
                    for old in glob.glob(f"{out}.*"):
                        os.unlink(old)
                    subprocess.run(["callgrind_control", "-d", str(server.pid)], check=True,
                                   capture_output=True)
                    dumps_ = sorted(glob.glob(f"{out}.*"))
                    print(f"{name:<12} {total_instructions(dumps_[-1]) / n:>22,.0f}", flush=True)
        conn.close()
    finally:
        server.terminate()
        server.wait(60)
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _put_body(w: Workload, i: int) -> bytes:
    document = dict(w.users.bodies[i] or {})
    document["name"] = {**document.get("name", {}), "givenName": "Benchmarked"}
    document.setdefault("groups", [])
    return dumps(document)


def _patch_body() -> bytes:
    return dumps({"schemas": [PATCH_URN],
                  "Operations": [{"op": "replace", "value": {"active": False}}]})


if __name__ == "__main__":
    sys.exit(main())
