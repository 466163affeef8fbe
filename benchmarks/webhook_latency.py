#!/usr/bin/env python3
"""Webhook benchmark: how fast a SCIM deactivation reaches the platform, and how many events
per second one delivery worker sends.

benchmarks/run_webhook_latency.sh starts Muster on a fresh database (its own worker off) and
calls this script, which:

  1. starts a receiving HTTP server on 127.0.0.1 (this file, `receive` mode, in its own
     process): it checks every Muster-Signature and prints one line per delivery;
  2. adds a webhook endpoint for that receiver with `muster webhook add`;
  3. throughput: provisions N users over SCIM while no worker runs (N user.created events
     wait in the outbox), then starts one `muster worker` and times the deliveries: events/s
     between the first and the last arrival, and the worker's CPU per event from /proc;
  4. latency: with that worker idle, deactivates M users one at a time (Okta's PATCH) and
     measures from the moment the SCIM answer arrives (the change is committed) to the moment
     the receiver has the user.deactivated event: p50, p99, max.

It checks what it measures: every delivery's signature is valid, no event arrives twice in
normal operation, and each user's events arrive in order.

Only loopback targets; every loop is bounded by N, M and a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scim_load import (
    OKTA_HEADERS,
    PATCH_URN,
    TICK_MS,
    USER_URN,
    AsyncConnection,
    percentile,
    tree_cpu_ticks,
)

SIGNATURE_TOLERANCE_S = 300


# -- the receiver (its own process) ------------------------------------------------------------


def _valid(secret: bytes, header: str, body: bytes) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    stamp, given = parts.get("t", ""), parts.get("v1", "")
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > SIGNATURE_TOLERANCE_S:
        return False
    expected = hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


def receive(port: int, secret: str) -> None:
    """Serve POST / on 127.0.0.1:port; print `arrival seq type resource valid` per delivery."""
    import uvicorn

    key = secret.encode()
    out = sys.stdout

    async def app(
        scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        arrived = time.time()
        headers = dict(scope["headers"])
        valid = _valid(key, headers.get(b"muster-signature", b"").decode(), body)
        event = orjson.loads(body)
        out.write(
            f"{arrived:.6f} {event['sequence']} {event['type']} {event['resource']['id']} "
            f"{int(valid)}\n"
        )
        out.flush()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    print("ready", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- the driver ---------------------------------------------------------------------------------


class Arrivals:
    """What the receiver printed, collected by a thread, waited on by the driver."""

    def __init__(self, stream: Any) -> None:
        self._cond = threading.Condition()
        self.lines: list[tuple[float, int, str, str, bool]] = []
        self.by_key: dict[tuple[str, str], float] = {}
        self.duplicates = self.invalid = 0
        self._seen: set[int] = set()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for raw in stream:  # ends when the receiver exits
            arrived, seq, type_, resource, valid = raw.split()
            item = (float(arrived), int(seq), type_, resource, valid == "1")
            with self._cond:
                self.lines.append(item)
                if item[1] in self._seen:
                    self.duplicates += 1
                self._seen.add(item[1])
                self.invalid += not item[4]
                self.by_key.setdefault((type_, resource), item[0])
                self._cond.notify_all()

    def wait_count(self, count: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.lines) >= count, timeout)

    def wait_for(self, type_: str, resource: str, timeout: float) -> float | None:
        with self._cond:
            self._cond.wait_for(lambda: (type_, resource) in self.by_key, timeout)
            return self.by_key.get((type_, resource))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _user_body(i: int) -> bytes:
    email = f"hook.{i}.{os.getpid()}@example.com"
    return orjson.dumps(
        {
            "schemas": [USER_URN],
            "userName": email,
            "name": {"givenName": "Wen", "familyName": f"Hook{i}"},
            "emails": [{"primary": True, "value": email, "type": "work"}],
            "active": True,
        }
    )


async def _provision(
    host: str, port: int, root: str, head: bytes, n: int, workers: int
) -> list[str]:
    ids: list[str] = []
    queue = iter(range(n))

    async def run() -> None:
        conn = AsyncConnection(host, port, head)
        for i in queue:
            status, data = await conn.request("POST", f"{root}/Users", _user_body(i))
            if status != 201:
                raise SystemExit(f"create answered {status}: {data[:300]!r}")
            ids.append(orjson.loads(data)["id"])
        await conn.close()

    await asyncio.gather(*(run() for _ in range(workers)))
    return ids


async def _deactivate_one(conn: AsyncConnection, root: str, user_id: str) -> tuple[float, float]:
    body = orjson.dumps(
        {"schemas": [PATCH_URN], "Operations": [{"op": "replace", "value": {"active": False}}]}
    )
    sent = time.time()
    status, data = await conn.request("PATCH", f"{root}/Users/{user_id}", body)
    if status != 200:
        raise SystemExit(f"deactivate answered {status}: {data[:300]!r}")
    return sent, time.time()


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    return (
        f"p50 {percentile(ordered, 50) * 1000:.1f} ms, p99 {percentile(ordered, 99) * 1000:.1f} ms,"
        f" max {ordered[-1] * 1000:.1f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    rec = sub.add_parser("receive")
    rec.add_argument("--port", type=int, required=True)
    rec.add_argument("--secret", required=True)
    drive = sub.add_parser("drive")
    drive.add_argument("--base-url", required=True)  # http://127.0.0.1:PORT/scim/v2
    drive.add_argument("--token", required=True)
    drive.add_argument("--muster", required=True, help="the muster command")
    drive.add_argument("--slug", default="bench")
    drive.add_argument("--users", type=int, default=2000)
    drive.add_argument("--latency-samples", type=int, default=300)
    drive.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    if args.mode == "receive":
        receive(args.port, args.secret)
        return 0
    return _drive(args)


def _drive(args: argparse.Namespace) -> int:
    host_port = args.base_url.split("//", 1)[1].split("/", 1)
    host, port = host_port[0].split(":")
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit("loopback targets only")
    root = "/" + host_port[1]
    head = b"".join(f"{k}: {v}\r\n".encode() for k, v in OKTA_HEADERS.items())
    head += f"Host: {host}:{port}\r\nAuthorization: Bearer {args.token}\r\n".encode()

    receiver_port = _free_port()
    added = subprocess.run(
        [args.muster, "webhook", "add", args.slug, f"http://127.0.0.1:{receiver_port}/"],
        check=True,
        capture_output=True,
        text=True,
    )
    secret = added.stdout.strip().splitlines()[-1]
    receiver = subprocess.Popen(
        [sys.executable, __file__, "receive", "--port", str(receiver_port), "--secret", secret],
        stdout=subprocess.PIPE,
        text=True,
    )
    worker: subprocess.Popen[bytes] | None = None
    try:
        assert receiver.stdout is not None
        if receiver.stdout.readline().strip() != "ready":
            raise SystemExit("the receiver did not start")
        arrivals = Arrivals(receiver.stdout)
        for _ in range(100):  # until uvicorn listens (bounded: 10 s)
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", receiver_port)) == 0:
                    break
            time.sleep(0.1)

        n = args.users
        print(f"== throughput: {n} user.created events waiting, then one `muster worker`")
        started = time.perf_counter()
        ids = asyncio.run(_provision(host, int(port), root, head, n, 8))
        print(f"provisioned {n} users in {time.perf_counter() - started:.1f} s (no worker running)")
        worker_started = time.time()
        worker = subprocess.Popen([args.muster, "worker"], stderr=subprocess.DEVNULL)
        if not arrivals.wait_count(n, args.timeout):
            raise SystemExit(f"only {len(arrivals.lines)} of {n} events arrived")
        ticks = sum(tree_cpu_ticks(worker.pid))
        first, last = arrivals.lines[0][0], arrivals.lines[n - 1][0]
        print(
            f"delivered {n} events: {(n - 1) / (last - first):.0f} events/s between the first and"
            f" the last arrival ({last - worker_started:.2f} s after the worker was started);"
            f" worker CPU {ticks * TICK_MS / n:.3f} ms per event (incl. start-up)"
        )

        m = min(args.latency_samples, n)
        print(f"== latency: {m} deactivations, one at a time, worker idle in between")
        after_commit, after_send = [], []

        async def deactivate_all() -> None:
            conn = AsyncConnection(host, int(port), head)
            for user_id in ids[:m]:
                sent, answered = await _deactivate_one(conn, root, user_id)
                arrived = await asyncio.to_thread(
                    arrivals.wait_for, "user.deactivated", user_id, 30.0
                )
                if arrived is None:
                    raise SystemExit(f"user.deactivated of {user_id} never arrived")
                after_commit.append(arrived - answered)
                after_send.append(arrived - sent)
                await asyncio.sleep(random.uniform(0.005, 0.03))  # no lock-step with the poll
            await conn.close()

        asyncio.run(deactivate_all())
        print(f"SCIM answer -> webhook arrival: {_ms(after_commit)}")
        print(f"SCIM request sent -> webhook arrival: {_ms(after_send)}")

        order: dict[str, list[int]] = {}
        for _, seq, _, resource, _ in arrivals.lines:
            order.setdefault(resource, []).append(seq)
        out_of_order = sum(seqs != sorted(seqs) for seqs in order.values())
        print(
            f"checks: {len(arrivals.lines)} deliveries, {arrivals.invalid} bad signatures, "
            f"{arrivals.duplicates} duplicates, {out_of_order} users with events out of order"
        )
        return 0 if not (arrivals.invalid or arrivals.duplicates or out_of_order) else 1
    finally:
        for proc in (worker, receiver):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    sys.exit(main())
