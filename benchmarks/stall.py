#!/usr/bin/env python3
"""Stall: a row lock, a frozen PostgreSQL and a restarted one, while other tenants are served.

    .venv/bin/python benchmarks/stall.py [--workers N] [--statement-timeout-ms 2000]

It starts a PostgreSQL cluster of its own (initdb in a temporary folder, on a free loopback
port, as the `postgres` OS user), never touching a shared server, migrates it, creates tenants
A and B with their tokens and starts `muster serve` on it. Then, with /healthz and tenant B's
`GET /Users?count=10` polled throughout by their own connections:

1. lock: a session holds tenant A's row (`SELECT ... FOR UPDATE`) for --lock-seconds while
   A's creates wait on it, one after another (each ends with 503 at the lock timeout);
2. freeze: every process of the cluster is stopped (SIGSTOP) for --freeze-seconds; it prints
   when /readyz first said 503 and how long each SCIM request took to be answered;
3. restart: the cluster is stopped (`pg_ctl stop -m fast`) and started again; it prints how
   long until tenant B's GET answers 200 again.

It prints its numbers and the targets (healthz and B's p99 <= 50 ms in 1 and 2; /readyz 503
within 2 s of the freeze; SCIM 503 within the statement timeout + 1 s; recovery within 10 s).
Exit status 0 when all hold, 1 otherwise, 2 for a setup error. Loopback only; every loop is
bounded in time.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("MUSTER_VENV", ROOT / ".venv"))
MUSTER = str(VENV / "bin" / "muster")
PYTHON = str(VENV / "bin" / "python")
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_bin(name: str) -> str:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name)
    if not versions:
        raise SystemExit("needs Debian's postgresql (apt-get install postgresql)")
    return str(versions[-1] / name)


def as_postgres(*command: str) -> list[str]:
    """Run as the postgres OS user when we are root (initdb refuses root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return list(command)


class Cluster:
    """A throwaway PostgreSQL cluster on 127.0.0.1:port."""

    def __init__(self, folder: Path) -> None:
        self.data = folder / "data"
        self.sockets = folder / "sockets"
        self.port = free_port()
        self.log = folder / "postgres.log"

    def create(self) -> None:
        self.sockets.mkdir(parents=True)
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "postgres", str(self.data.parent)], check=True)
        subprocess.run(
            as_postgres(pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.start()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            as_postgres(
                pg_bin("pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "start",
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        subprocess.run(
            as_postgres(pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"),
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def pids(self) -> list[int]:
        """The postmaster and every process it started."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(
            ["pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False
        ).stdout.split()
        return [postmaster, *map(int, children)]

    def signal_all(self, signum: int) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str) -> None:
        subprocess.run(["psql", self.url(), "-qAtc", sql], check=True, stdout=subprocess.DEVNULL)


@dataclass
class Samples:
    """(time sent, seconds to answer, status) of one poller's requests."""

    rows: list[tuple[float, float, int]] = field(default_factory=list)

    def between(self, start: float, end: float) -> list[tuple[float, float, int]]:
        return [r for r in self.rows if start <= r[0] < end]


def p99(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


class Poller(threading.Thread):
    """Sends one request after another on one keep-alive connection until told to stop."""

    def __init__(self, port: int, path: str, token: str | None, pause: float) -> None:
        super().__init__(daemon=True)
        self.port, self.path, self.token, self.pause = port, path, token, pause
        self.samples = Samples()
        self.stop = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        while not self.stop.is_set():
            sent = time.monotonic()
            try:
                conn.request("GET", self.path, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.samples.rows.append((sent, time.monotonic() - sent, status))
            self.stop.wait(self.pause)


def request(
    port: int, method: str, path: str, token: str, body: object = None
) -> tuple[int, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started = time.monotonic()
    try:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
        conn.request(method, path, body=json.dumps(body) if body else None, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    except (OSError, http.client.HTTPException):
        return 0, time.monotonic() - started
    finally:
        conn.close()


def new_user(tag: str) -> dict[str, object]:
    email = f"{tag}@example.com"
    return {
        "schemas": [USER_URN],
        "userName": email,
        "name": {"givenName": "Ann", "familyName": "Lee"},
        "emails": [{"primary": True, "value": email, "type": "work"}],
        "active": True,
    }


@contextlib.contextmanager
def server(
    env: dict[str, str], port: int, workers: int, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [
            MUSTER,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-worker",
        ],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    break
            assert process.poll() is None, log.read_text()
            time.sleep(0.2)
        time.sleep(2)  # every worker up
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--statement-timeout-ms", type=int, default=2000)
    parser.add_argument("--lock-seconds", type=float, default=10)
    parser.add_argument("--freeze-seconds", type=float, default=10)
    parser.add_argument("--show-log", action="store_true", help="print the server's whole log")
    args = parser.parse_args()
    statement_timeout = args.statement_timeout_ms / 1000
    folder = Path(tempfile.mkdtemp(prefix="muster-stall-"))
    cluster = Cluster(folder)
    results: list[tuple[str, float, float, bool]] = []
    try:
        cluster.create()
        cluster.psql("CREATE DATABASE muster")
        env = {
            **os.environ,
            "MUSTER_DATABASE_URL": cluster.url("muster"),
            "MUSTER_CREATE_DEMO_TENANT": "false",
            "MUSTER_DB_STATEMENT_TIMEOUT_MS": str(args.statement_timeout_ms),
            "MUSTER_SERVE_WORKER": "false",
            "MUSTER_LOG_FORMAT": "text",
        }
        subprocess.run([MUSTER, "db", "upgrade"], env=env, check=True, stdout=subprocess.DEVNULL)
        tokens = {}
        for slug in ("tenant-a", "tenant-b"):
            subprocess.run(
                [MUSTER, "tenant", "create", slug, "--plan", "enterprise", "--seats", "1000"],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            out = subprocess.run(
                [MUSTER, "scim-token", slug], env=env, check=True, capture_output=True, text=True
            ).stdout
            tokens[slug] = out.strip().splitlines()[-1]
        port = free_port()
        print(
            f"cluster on port {cluster.port}; muster on {port} with {args.workers} workers; "
            f"statement timeout {args.statement_timeout_ms} ms"
        )
        with server(env, port, args.workers, folder / "muster.log"):
            health = Poller(port, "/healthz", None, 0.02)
            reads = Poller(port, "/scim/v2/Users?count=10", tokens["tenant-b"], 0.02)
            ready = Poller(port, "/readyz", None, 0.05)
            for poller in (health, reads, ready):
                poller.start()
            time.sleep(2)

            # 1. A row lock of tenant A held while A's writes wait on it.
            holder = subprocess.Popen(
                ["psql", cluster.url("muster"), "-qAt"],
                stdin=subprocess.PIPE,
                text=True,
                stdout=subprocess.DEVNULL,
            )
            assert holder.stdin is not None
            holder.stdin.write(
                "BEGIN; SELECT 1 FROM tenants WHERE slug = 'tenant-a' FOR UPDATE; "
                f"SELECT pg_sleep({args.lock_seconds}); COMMIT;\n"
            )
            holder.stdin.flush()
            time.sleep(0.3)
            lock_start = time.monotonic()
            writes: list[tuple[int, float]] = []
            while time.monotonic() - lock_start < args.lock_seconds - 0.5:
                writes.append(
                    request(
                        port,
                        "POST",
                        "/scim/v2/Users",
                        tokens["tenant-a"],
                        new_user(f"a-{len(writes)}-{time.monotonic_ns()}"),
                    )
                )
            lock_end = time.monotonic()
            holder.stdin.close()
            holder.wait(timeout=30)
            h = [r[1] for r in health.samples.between(lock_start, lock_end)]
            b = [r[1] for r in reads.samples.between(lock_start, lock_end)]
            b_ok = all(r[2] == 200 for r in reads.samples.between(lock_start, lock_end))
            print(
                f"\n== lock ({args.lock_seconds:g} s): A's writes {[s for s, _ in writes]} "
                f"after {[round(t, 2) for _, t in writes]} s"
            )
            print(
                f"   /healthz p99 {p99(h) * 1000:.1f} ms over {len(h)}; "
                f"B's GET p99 {p99(b) * 1000:.1f} ms over {len(b)} (all 200: {b_ok})"
            )
            results.append(("lock: /healthz p99 (ms)", p99(h) * 1000, 50, p99(h) <= 0.05))
            results.append(("lock: B's GET p99 (ms)", p99(b) * 1000, 50, p99(b) <= 0.05 and b_ok))
            time.sleep(1)

            # 2. The whole cluster frozen.
            freeze_start = time.monotonic()
            cluster.signal_all(signal.SIGSTOP)
            scim: list[tuple[int, float]] = []
            while time.monotonic() - freeze_start < args.freeze_seconds:
                scim.append(request(port, "GET", "/scim/v2/Users?count=1", tokens["tenant-b"]))
                time.sleep(0.1)
            freeze_end = time.monotonic()
            cluster.signal_all(signal.SIGCONT)
            h = [r[1] for r in health.samples.between(freeze_start, freeze_end)]
            first_503 = next(
                (
                    r[0] + r[1] - freeze_start
                    for r in ready.samples.rows
                    if r[0] >= freeze_start - 0.5 and r[2] == 503
                ),
                float("inf"),
            )
            slowest = max(t for _, t in scim)
            statuses = sorted({s for s, _ in scim})
            print(
                f"\n== freeze ({args.freeze_seconds:g} s): /healthz p99 {p99(h) * 1000:.1f} ms; "
                f"/readyz 503 after {first_503:.2f} s"
            )
            print(
                f"   SCIM: {len(scim)} requests, statuses {statuses}, slowest {slowest:.2f} s, "
                f"first answer {scim[0][1]:.2f} s"
            )
            results.append(("freeze: /healthz p99 (ms)", p99(h) * 1000, 50, p99(h) <= 0.05))
            results.append(("freeze: /readyz 503 after (s)", first_503, 2, first_503 <= 2))
            limit = statement_timeout + 1
            results.append(
                (
                    "freeze: slowest SCIM answer (s)",
                    slowest,
                    limit,
                    slowest <= limit and all(s in (200, 503) for s, _ in scim),
                )
            )
            time.sleep(3)

            # 3. Stopped and started again.
            cluster.stop()
            down = time.monotonic()
            time.sleep(2)
            during = request(port, "GET", "/scim/v2/Users?count=1", tokens["tenant-b"])
            cluster.start()
            started = time.monotonic()
            recovered = float("inf")
            while time.monotonic() - started < 30:
                status, _ = request(port, "GET", "/scim/v2/Users?count=1", tokens["tenant-b"])
                if status == 200:
                    recovered = time.monotonic() - started
                    break
                time.sleep(0.1)
            print(
                f"\n== restart: while down SCIM answered {during[0]} in {during[1]:.2f} s; "
                f"200 again {recovered:.2f} s after the start ({started - down:.1f} s down)"
            )
            results.append(("restart: SCIM 503 while down", during[0], 503, during[0] == 503))
            results.append(("restart: SCIM 200 again after (s)", recovered, 10, recovered <= 10))
            for poller in (health, reads, ready):
                poller.stop.set()
    except (subprocess.CalledProcessError, AssertionError) as error:
        print(f"setup failed: {error}", file=sys.stderr)
        return 2
    finally:
        with contextlib.suppress(Exception):
            cluster.signal_all(signal.SIGCONT)
        log = folder / "muster.log"
        if log.exists():
            errors = [line for line in log.read_text().splitlines() if " ERROR " in line]
            print(
                f"\n== server log: {len(errors)} ERROR lines" + ("; the first:" if errors else "")
            )
            for line in errors[:5]:
                print("   " + line[:300])
            if args.show_log:
                print(log.read_text())
        cluster.stop()
        subprocess.run(["rm", "-rf", str(folder)], check=False)
    print("\n   check                                     measured     target  result")
    for name, measured, target, ok in results:
        print(f"   {name:<40} {measured:>9.2f} {target:>9.2f}  {'PASS' if ok else 'FAIL'}")
    return 0 if all(ok for *_, ok in results) else 1


if __name__ == "__main__":
    sys.exit(main())
