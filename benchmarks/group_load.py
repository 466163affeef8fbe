#!/usr/bin/env python3
"""Group load benchmark: one-member PATCHes on a 100,000-member group and on a 10-member group.

Run it against a Muster server that is already running (benchmarks/run_group_load.sh starts
one on a fresh database and calls this script):

    python benchmarks/group_load.py --base-url http://127.0.0.1:8000/scim/v2 \
        --token mst_... --users 100000 --server-pid 12345

Setup, all through the SCIM API (timed, not measured against targets):
  users      POST /Users for N + P users at --concurrency 8, with Okta's create body. P (the
             PATCH requests per kind, default 1000) of them are "spare" users, spread evenly
             through the creation order, that the big group does not hold at the start.
  big group  POST /Groups "All Employees <tag>" with members: [], then PATCH add of --chunk
             (default 1000) members per request, one request after another, until it holds all
             N other users
  10 group   POST /Groups with 10 members in the body
  small      --small-groups (default 1000) POST /Groups of 0-5 members each, for the list test

Measured:
  PATCH rounds   The three one-member PATCHes, each --patch-requests times on each of the two
                 groups, run in rounds of --round-size (default 10) spare users, so that the
                 10-member group never holds more than 10 + round-size members:
                   add            {"op":"add","path":"members","value":[{"value":ID,"display":..}]}
                   remove-filter  {"op":"remove","path":"members[value eq \\"ID\\"]"} (Okta)
                   remove-value   {"op":"Remove","path":"members","value":[{"value":ID}]} (Entra)
                 A round adds its spare users one by one, removes them by filter, puts them back
                 with one unmeasured PATCH, then removes them by value list. Each kind runs as
                 a window per group; the two groups alternate window by window, so that both
                 see the same machine. Every window's server CPU is read from /proc around it.
  list           GET /Groups?excludedAttributes=members&startIndex=..&count=100, paging over
                 all groups again and again
  filter         GET /Groups?excludedAttributes=members&filter=displayName eq "…", per group
  get            GET /Groups/{id}?excludedAttributes=members, per group
  memory         a few GET /Groups/{big id} with all members, one at a time: the server's RSS
                 (VmRSS, summed over its process tree) is polled every --rss-interval-ms, and
                 the peak above the RSS just before is reported; the body must parse and hold
                 exactly the N members the group should have.

Only loopback addresses are accepted. Every loop is bounded, and every phase has a timeout.
Exit status: 0 when every target passes, 1 when one fails, 2 on a usage or setup error.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import math
import os
import random
import secrets
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from scim_load import (
    CLK_TCK,
    LIST_URN,
    OKTA_HEADERS,
    PATCH_URN,
    TICK_MS,
    AsyncConnection,
    ConnectionLost,
    Job,
    PhaseResult,
    Target,
    Workload,
    dumps,
    find_listening_pid,
    fmt_ms,
    loads,
    machine_busy_ticks,
    own_cpu_ticks,
    parse_target,
    percentile,
    print_phase,
    process_tree,
    tree_cpu_ticks,
)

GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
KINDS = ("add", "remove-filter", "remove-value")
SMALL_SIZE = 10  # members of the small group

# Targets.
PATCH_CPU_TARGET_MS = 2.0  # server CPU per one-member PATCH
P50_RATIO_TARGET = 1.25  # p50 on the big group / p50 on the 10-member group
PEAK_RSS_TARGET_MB = 150.0  # server RSS above idle while streaming the big group
OTHER_WARN = 20.0  # % of a core used by the rest of the machine that makes a run noisy


# --------------------------------------------------------------------------------------------
# Measuring: requests on kept-open connections, the server's CPU around them


async def drive(
    conns: Sequence[AsyncConnection],
    jobs: Sequence[Callable[[], Job]],
    res: PhaseResult,
    timeout: float,
    *,
    request_timeout: float = 60.0,
    stop_on_error: bool = False,
) -> None:
    """Run the jobs over the connections (one job at a time per connection), recording each.

    A request unanswered after `request_timeout` s counts as an error (599) and its connection
    is dropped; with `stop_on_error`, no new job starts once one request has failed.
    """
    todo = iter(jobs)
    perf = time.perf_counter

    async def worker(conn: AsyncConnection) -> None:
        for make in todo:  # shared iterator: each job runs once, on one connection
            if stop_on_error and (res.errors or res.check_failures):
                return
            job = make()
            try:
                method, path, body, kind = next(job)
            except StopIteration:
                continue
            for _ in range(100):  # a job is a handful of requests
                started = perf()
                try:
                    async with asyncio.timeout(request_timeout):
                        status, data = await conn.request(method, path, body)
                except TimeoutError:  # before OSError, of which it is a subclass
                    status, data = 599, b"no answer within %.0f s" % request_timeout
                    await conn.close()
                except (OSError, ConnectionLost) as error:
                    status, data = 599, repr(error).encode()
                res.record(kind, method, path, body, status, data, perf() - started)
                try:
                    method, path, body, kind = job.send((status, data))
                except StopIteration:
                    break

    async with asyncio.timeout(timeout):
        await asyncio.gather(*(worker(c) for c in conns[: max(1, min(len(conns), len(jobs)))]))


@dataclass
class Meter:
    """Reads the server's CPU (process tree, /proc) and the machine's around each run."""

    pid: int
    settle: float
    timeout: float
    request_timeout: float
    idle_ms_per_s: float = 0.0  # what the idle server burns (timers), measured at the start
    other_ticks: dict[str, int] = field(default_factory=dict)  # phase -> other procs' ticks
    elapsed: dict[str, float] = field(default_factory=dict)  # phase -> seconds incl. settle

    async def run(
        self,
        res: PhaseResult,
        jobs: Sequence[Callable[[], Job]],
        conns: Sequence[AsyncConnection],
        timeout: float | None = None,
        *,
        stop_on_error: bool = False,
    ) -> None:
        """One measured run: the jobs, then `settle` s for the server's batched log writes."""
        busy0, own0 = machine_busy_ticks(), own_cpu_ticks()
        ticks0, cpu0, wall0 = tree_cpu_ticks(self.pid), time.process_time(), time.perf_counter()
        try:
            await drive(
                conns,
                jobs,
                res,
                timeout or self.timeout,
                request_timeout=self.request_timeout,
                stop_on_error=stop_on_error,
            )
        except TimeoutError:
            print(f"{res.name}: timed out after {timeout or self.timeout:.0f} s", file=sys.stderr)
            res.errors += 1
        res.wall += time.perf_counter() - wall0
        res.client_cpu += time.process_time() - cpu0
        # The server writes the provisioning log in batches, up to 0.2 s after the answers.
        await asyncio.sleep(self.settle)
        user1, sys1 = tree_cpu_ticks(self.pid)
        server = user1 + sys1 - sum(ticks0)
        res.server_ticks += server
        res.server_sys_ticks += sys1 - ticks0[1]
        other = machine_busy_ticks() - busy0 - server - (own_cpu_ticks() - own0)
        self.other_ticks[res.name] = self.other_ticks.get(res.name, 0) + max(0, other)
        self.elapsed[res.name] = self.elapsed.get(res.name, 0.0) + time.perf_counter() - wall0

    def idle_share(self, res: PhaseResult) -> float:
        """The idle server's CPU over this phase's runs and settles, per request (included)."""
        seconds = self.elapsed.get(res.name, 0.0)
        return self.idle_ms_per_s * seconds / res.requests if res.requests else math.nan

    def finish(self, res: PhaseResult) -> PhaseResult:
        seconds = self.elapsed.get(res.name, 0.0)
        if seconds:
            res.other_share = self.other_ticks.get(res.name, 0) * TICK_MS / 10 / seconds
        return res


def tree_runtime_ns(root: int) -> int | None:
    """CPU time in ns of the tree's live threads (/proc/PID/task/TID/schedstat), if available.

    Finer than clock ticks, but blind to exited threads: used only for the idle estimate.
    """
    total = 0
    for pid in process_tree(root):
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                return None
    return total


async def idle_rate(pid: int, seconds: float) -> float:
    """The idle server's CPU in ms per second (its timers), measured over `seconds`."""
    ns0, ticks0 = tree_runtime_ns(pid), sum(tree_cpu_ticks(pid))
    await asyncio.sleep(seconds)
    ns1, ticks1 = tree_runtime_ns(pid), sum(tree_cpu_ticks(pid))
    if ns0 is not None and ns1 is not None:
        return (ns1 - ns0) / 1e6 / seconds
    return (ticks1 - ticks0) * TICK_MS / seconds


# --------------------------------------------------------------------------------------------
# Memory: VmRSS of the server's process tree, polled from a thread


@dataclass
class Rss:
    rss_kb: int = 0
    anon_kb: int = 0
    file_kb: int = 0
    hwm_kb: int = 0

    def mb(self, kb: int) -> float:
        return kb / 1024


def read_rss(pids: Sequence[int]) -> Rss:
    """VmRSS, RssAnon, RssFile and VmHWM from /proc/PID/status, summed over `pids`."""
    out = Rss()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", "rb") as f:
                data = f.read()
        except OSError:
            continue
        for line in data.split(b"\n"):
            key, _, rest = line.partition(b":")
            if key == b"VmRSS":
                out.rss_kb += int(rest.split()[0])
            elif key == b"RssAnon":
                out.anon_kb += int(rest.split()[0])
            elif key == b"RssFile":
                out.file_kb += int(rest.split()[0])
            elif key == b"VmHWM":
                out.hwm_kb += int(rest.split()[0])
    return out


def rss_by_mapping(pids: Sequence[int]) -> dict[str, int]:
    """Rss (kB) per mapped file, [heap] or [anonymous], from /proc/PID/smaps, over `pids`."""
    out: dict[str, int] = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps", "rb") as f:
                lines = f.read().decode("latin-1").splitlines()
        except OSError:
            continue
        name = "[anonymous]"
        for line in lines:
            head = line.split(maxsplit=5)
            if head and "-" in head[0] and not head[0].endswith(":"):  # a mapping's first line
                name = head[5] if len(head) > 5 else "[anonymous]"
            elif line.startswith("Rss:"):
                out[name] = out.get(name, 0) + int(line.split()[1])
    return out


class RssPoller(threading.Thread):
    """Keeps the highest VmRSS sample seen until stopped (or for `limit` seconds at most)."""

    def __init__(self, pids: Sequence[int], interval: float, limit: float) -> None:
        super().__init__(daemon=True)
        self.pids, self.interval, self.limit = list(pids), interval, limit
        self.peak = Rss()
        self.samples = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.limit
        while not self.stopped.is_set() and time.monotonic() < deadline:
            sample = read_rss(self.pids)
            self.samples += 1
            if sample.rss_kb > self.peak.rss_kb:
                self.peak = sample
            time.sleep(self.interval)

    def stop(self) -> Rss:
        self.stopped.set()
        self.join(5)
        return self.peak


@dataclass
class MemoryRun:
    seconds: float
    size: int
    status: int
    members: int
    server_cpu_ms: float
    peak: Rss
    after: Rss
    samples: int


# --------------------------------------------------------------------------------------------
# The workload


@dataclass
class Group:
    label: str  # "100000-member" or "10-member"
    name: str  # displayName
    members: list[int]  # indices (into the users) of its members at the start
    group_id: str = ""


class GroupWorkload:
    def __init__(self, prefix: str, users: Workload, spare: list[int]) -> None:
        self.prefix = prefix
        self.users = users.users  # names and, once created, ids
        self.spare = spare

    def uid(self, i: int) -> str:
        user_id = self.users.ids[i]
        assert user_id is not None
        return user_id

    def member(self, i: int) -> dict[str, str]:
        return {"value": self.uid(i), "display": self.users.names[i]}

    # -- setup ---------------------------------------------------------------------------------

    def create_group(self, group: Group, res: PhaseResult, with_members: Sequence[int] = ()) -> Job:
        path = f"{self.prefix}/Groups"
        body = dumps(
            {
                "schemas": [GROUP_URN],
                "displayName": group.name,
                "members": [self.member(i) for i in with_members],
            }
        )
        status, data = yield ("POST", path, body, "create-group")
        if status == 201:
            created = loads(data)
            members = created.get("members", [])
            if created.get("displayName") == group.name and len(members) == len(with_members):
                group.group_id = created["id"]
            else:
                res.check_failed("POST", path, body, status, data, "wrong name or members")
        elif 200 <= status < 300:
            res.check_failed("POST", path, body, status, data, "expected 201")

    def patch(self, group: Group, operation: dict[str, Any], kind: str, res: PhaseResult) -> Job:
        path = f"{self.prefix}/Groups/{group.group_id}"
        body = dumps({"schemas": [PATCH_URN], "Operations": [operation]})
        status, data = yield ("PATCH", path, body, kind)
        if 200 <= status < 300 and status != 204:
            res.check_failed("PATCH", path, body, status, data, "expected 204 No Content")

    def add_many(self, group: Group, indices: Sequence[int], kind: str, res: PhaseResult) -> Job:
        value = [self.member(i) for i in indices]
        yield from self.patch(group, {"op": "add", "path": "members", "value": value}, kind, res)

    # -- the measured one-member PATCHes -------------------------------------------------------

    def one_member(self, kind: str, group: Group, i: int, res: PhaseResult) -> Job:
        user_id = self.uid(i)
        if kind == "add":  # Okta's membership push and Entra's add
            op: dict[str, Any] = {"op": "add", "path": "members", "value": [self.member(i)]}
        elif kind == "remove-filter":  # Okta
            op = {"op": "remove", "path": f'members[value eq "{user_id}"]'}
        else:  # Entra's default remove: the member in `value`, no filter
            op = {"op": "Remove", "path": "members", "value": [{"value": user_id}]}
        yield from self.patch(group, op, kind, res)

    def in_groups(self, i: int, expect: dict[str, bool], res: PhaseResult) -> Job:
        """GET /Users/{id}?attributes=groups: is the user in (True) or out of each group?"""
        path = f"{self.prefix}/Users/{self.uid(i)}?attributes=groups"
        status, data = yield ("GET", path, None, "membership-check")
        if 200 <= status < 300:
            held = {g.get("value") for g in loads(data).get("groups", [])}
            wrong = [gid for gid, member in expect.items() if (gid in held) != member]
            if wrong:
                note = f"expected {'in' if expect[wrong[0]] else 'not in'} group {wrong[0]}"
                res.check_failed("GET", path, None, status, data, note)

    # -- reads ---------------------------------------------------------------------------------

    def list_page(self, start: int, total: int, res: PhaseResult) -> Job:
        query = f"excludedAttributes=members&startIndex={start}&count=100"
        path = f"{self.prefix}/Groups?{query}"
        status, data = yield ("GET", path, None, "list")
        if 200 <= status < 300:
            page = loads(data)
            resources = page.get("Resources") or []
            expected = max(0, min(100, total - start + 1))
            if (
                page.get("schemas") != [LIST_URN]
                or page.get("totalResults") != total
                or len(resources) != expected
                or page.get("itemsPerPage") != expected
                or any("members" in r for r in resources)
            ):
                note = f"expected {expected} groups of {total} without members"
                res.check_failed("GET", path, None, status, data[:2000], note)

    def filter_by_name(self, group: Group, res: PhaseResult) -> Job:
        query = urllib.parse.urlencode(
            {"excludedAttributes": "members", "filter": f'displayName eq "{group.name}"'},
            quote_via=urllib.parse.quote,
        )
        path = f"{self.prefix}/Groups?{query}"
        status, data = yield ("GET", path, None, "filter")
        if 200 <= status < 300:
            found = loads(data)
            resources = found.get("Resources") or []
            if (
                found.get("totalResults") != 1
                or not resources
                or resources[0].get("id") != group.group_id
                or "members" in resources[0]
            ):
                res.check_failed("GET", path, None, status, data, "expected this group alone")

    def get_excluded(self, group: Group, res: PhaseResult) -> Job:
        path = f"{self.prefix}/Groups/{group.group_id}?excludedAttributes=members"
        status, data = yield ("GET", path, None, "get")
        if 200 <= status < 300:
            body = loads(data)
            if body.get("id") != group.group_id or "members" in body:
                res.check_failed("GET", path, None, status, data, "wrong group or members sent")


# --------------------------------------------------------------------------------------------
# Options


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--base-url", required=True, help="http://127.0.0.1:PORT/scim/v2")
    p.add_argument("--token", required=True, help="the tenant's SCIM bearer token")
    p.add_argument("--users", type=int, default=100_000, help="N, the big group's size")
    p.add_argument(
        "--server-pid", type=int, default=None, help="default: the process listening on the port"
    )
    p.add_argument("--concurrency", type=int, default=8, help="setup and GET phases (default 8)")
    p.add_argument(
        "--patch-concurrency",
        type=int,
        default=1,
        help="connections for the measured PATCHes (default 1: an IdP pushes one group's "
        "changes one after another)",
    )
    p.add_argument("--patch-requests", type=int, default=1000, help="P, PATCHes per kind and group")
    p.add_argument("--round-size", type=int, default=10, help="spare users per round")
    p.add_argument("--chunk", type=int, default=1000, help="members per setup PATCH")
    p.add_argument("--small-groups", type=int, default=1000, help="groups of 0-5 members")
    p.add_argument("--get-requests", type=int, default=1000, help="requests per read phase")
    p.add_argument("--memory-gets", type=int, default=3, help="full GETs of the big group")
    p.add_argument("--rss-interval-ms", type=float, default=2.0, help="RSS poll interval")
    p.add_argument(
        "--check-every",
        type=int,
        default=10,
        help="check the spare users' groups (GET /Users/{id}) every this many rounds",
    )
    p.add_argument(
        "--settle", type=float, default=0.3, help="seconds after each measured run (log writes)"
    )
    p.add_argument("--phase-timeout", type=float, default=900.0, help="seconds per run")
    p.add_argument("--setup-timeout", type=float, default=1800.0, help="seconds per setup step")
    p.add_argument(
        "--request-timeout",
        type=float,
        default=60.0,
        help="seconds before an unanswered request counts as an error (default 60)",
    )
    p.add_argument(
        "--loop", choices=("auto", "asyncio", "uvloop"), default="auto", help="client loop"
    )
    p.add_argument("--run-tag", default=None, help="tag in names (default: random)")
    args = p.parse_args(argv)
    if not SMALL_SIZE <= args.users <= 1_000_000:
        p.error(f"--users must be between {SMALL_SIZE} and 1,000,000")
    limits = {
        "concurrency": (1, 64),
        "patch_concurrency": (1, 64),
        "patch_requests": (1, 10_000),
        "round_size": (1, 1000),
        "chunk": (1, 10_000),
        "small_groups": (0, 10_000),
        "get_requests": (1, 100_000),
        "memory_gets": (1, 20),
        "check_every": (1, 1_000_000),
    }
    for name, (low, high) in limits.items():
        if not low <= getattr(args, name) <= high:
            p.error(f"--{name.replace('_', '-')} must be between {low} and {high}")
    if not 0.5 <= args.rss_interval_ms <= 100:
        p.error("--rss-interval-ms must be between 0.5 and 100")
    if not 0 <= args.settle <= 5:
        p.error("--settle must be between 0 and 5")
    return args


# --------------------------------------------------------------------------------------------
# Main


@dataclass
class Run:
    args: argparse.Namespace
    target: Target
    pid: int
    head: bytes
    meter: Meter
    setup: list[tuple[str, float, PhaseResult]] = field(default_factory=list)
    results: dict[str, PhaseResult] = field(default_factory=dict)
    checks: PhaseResult = field(default_factory=lambda: PhaseResult("membership checks"))
    memory: list[MemoryRun] = field(default_factory=list)
    idle: Rss = field(default_factory=Rss)
    growth: list[tuple[int, str]] = field(default_factory=list)  # (kB, mapping), largest first
    small_members_ok: bool = False

    def conns(self, n: int) -> list[AsyncConnection]:
        return [AsyncConnection(self.target.host, self.target.port, self.head) for _ in range(n)]


async def setup_step(
    run: Run,
    res: PhaseResult,
    jobs: Sequence[Callable[[], Job]],
    conns: Sequence[AsyncConnection],
    slices: int = 1,
) -> bool:
    """Run one setup step in `slices` parts, printing progress; stop at the first failure."""
    started = time.perf_counter()
    step = math.ceil(len(jobs) / slices)
    for k in range(0, len(jobs), step):  # bounded: `slices` parts
        part = jobs[k : k + step]
        await run.meter.run(res, part, conns, run.args.setup_timeout, stop_on_error=True)
        if res.errors or res.check_failures:
            break
        if slices > 1:
            print(f"   ... {k + len(part)} of {len(jobs)} in {time.perf_counter() - started:.0f} s")
            sys.stdout.flush()
    seconds = time.perf_counter() - started
    run.meter.finish(res)
    run.setup.append((res.name, seconds, res))
    rate = res.requests / res.wall if res.wall else 0.0
    print(
        f"   {res.name}: {seconds:.1f} s, {rate:.0f} req/s, server CPU "
        f"{cpu_per_request(res):.3f} ms/request, other procs {res.other_share:.0f}% of a core"
    )
    sys.stdout.flush()
    if res.errors or res.check_failures:
        print_phase(res)
        print(f"setup step {res.name!r} failed; stopping", file=sys.stderr)
        return False
    return True


async def run_setup(
    run: Run, work: Workload, groups: GroupWorkload, big: Group, small: Group, others: list[Group]
) -> bool:
    args = run.args
    pool = run.conns(args.concurrency)
    one = run.conns(1)
    try:
        total = len(work.users.names)
        res = PhaseResult(f"POST /Users x {total} ({args.concurrency} connections)")
        jobs = [functools.partial(work.create, i, res) for i in range(total)]
        if not await setup_step(run, res, jobs, pool, slices=10):
            return False

        # Okta's Group Push: the group first, then its members, a chunk per PATCH.
        chunks = [big.members[i : i + args.chunk] for i in range(0, len(big.members), args.chunk)]
        res = PhaseResult(
            f"POST /Groups {big.name!r}, then {len(chunks)} x PATCH add of up to "
            f"{args.chunk} members (1 connection)"
        )
        jobs = [functools.partial(groups.create_group, big, res)]
        jobs += [functools.partial(groups.add_many, big, c, "add-chunk", res) for c in chunks]
        if not await setup_step(run, res, jobs, one):
            return False
        lat = res.latencies.get("add-chunk", [])
        if len(lat) >= 20:
            print(
                f"   (PATCH of {args.chunk} members: p50 {fmt_ms(percentile(sorted(lat), 50))} ms;"
                f" first 10 median {fmt_ms(sorted(lat[:10])[5])} ms, last 10 median "
                f"{fmt_ms(sorted(lat[-10:])[5])} ms)"
            )

        res = PhaseResult(
            f"POST /Groups with members: the {SMALL_SIZE}-member group and {len(others)} "
            f"groups of 0-5 ({args.concurrency} connections)"
        )
        jobs = [functools.partial(groups.create_group, small, res, small.members)]
        jobs += [functools.partial(groups.create_group, g, res, g.members) for g in others]
        return await setup_step(run, res, jobs, pool)
    finally:
        for conn in pool + one:
            await conn.close()


async def run_patch_rounds(run: Run, groups: GroupWorkload, big: Group, small: Group) -> None:
    args, meter = run.args, run.meter
    conns = run.conns(args.patch_concurrency)
    results = {
        (kind, g.label): PhaseResult(f"PATCH {kind}, {g.label} group")
        for kind in KINDS
        for g in (big, small)
    }
    checks = run.checks
    spare = groups.spare
    size = args.round_size
    rounds = math.ceil(len(spare) / size)
    started = time.perf_counter()

    async def unmeasured(*steps: list[Callable[[], Job]]) -> None:
        """Run each list of jobs after the one before it, then settle."""
        for jobs in steps:
            if jobs:
                await drive(
                    conns, jobs, checks, args.phase_timeout, request_timeout=args.request_timeout
                )
        await asyncio.sleep(args.settle)  # their log writes must not land in the next window

    def expect(i: int, member: bool) -> Callable[[], Job]:
        return functools.partial(
            groups.in_groups, i, {big.group_id: member, small.group_id: member}, checks
        )

    for r in range(rounds):  # bounded: P / round-size rounds
        batch = spare[r * size : (r + 1) * size]
        order = (big, small) if r % 2 == 0 else (small, big)  # neither group always goes first
        check = r % args.check_every == 0
        probe = [batch[0], batch[-1]] if len(batch) > 1 else batch
        for kind in KINDS:
            if kind == "remove-value":
                # Put the round's users back (unmeasured), then take them out by value list.
                jobs = [
                    functools.partial(groups.add_many, g, batch, "restore", checks) for g in order
                ]
                await unmeasured(jobs, [expect(i, True) for i in probe] if check else [])
            for g in order:
                res = results[(kind, g.label)]
                jobs = [functools.partial(groups.one_member, kind, g, i, res) for i in batch]
                await meter.run(res, jobs, conns)
            if check:
                await unmeasured([expect(i, kind == "add") for i in probe])
    for conn in conns:
        await conn.close()
    wall = time.perf_counter() - started
    print(
        f"\n== PATCH rounds: {rounds} rounds of {size} spare users, {args.patch_concurrency} "
        f"connection(s), in {wall:.1f} s"
    )
    for key, res in results.items():
        run.results[f"{key[0]}/{key[1]}"] = meter.finish(res)
        print_phase(res)
        print(
            f"   (of the server CPU, about {meter.idle_share(res):.3f} ms/request is the idle "
            f"server's own timers over the {meter.elapsed[res.name]:.1f} s of runs and settles)"
        )
    sys.stdout.flush()


async def run_reads(run: Run, groups: GroupWorkload, big: Group, small: Group) -> None:
    args, meter = run.args, run.meter
    conns = run.conns(args.concurrency)
    n = args.get_requests

    # How many groups the tenant holds (more than ours when the server is shared).
    probe = PhaseResult("probe")
    total_seen: list[int] = []

    def count(res: PhaseResult) -> Job:
        path = f"{groups.prefix}/Groups?excludedAttributes=members&count=1"
        status, data = yield ("GET", path, None, "probe")
        if status == 200:
            total_seen.append(int(loads(data).get("totalResults", -1)))

    await drive(
        conns[:1],
        [functools.partial(count, probe)],
        probe,
        args.phase_timeout,
        request_timeout=args.request_timeout,
    )
    run.checks.errors += probe.errors
    total = total_seen[0] if total_seen else -1
    pages = max(1, math.ceil(total / 100))
    print(f"\n(the tenant holds {total} groups: {pages} pages of 100)")

    res = PhaseResult(f"list: GET /Groups?excludedAttributes=members, {pages} pages of 100")
    jobs = [
        functools.partial(groups.list_page, (i % pages) * 100 + 1, total, res) for i in range(n)
    ]
    await meter.run(res, jobs, conns)
    run.results["list"] = meter.finish(res)
    print_phase(res)
    for g in (big, small):
        res = PhaseResult(f"filter displayName eq, {g.label} group")
        await meter.run(res, [functools.partial(groups.filter_by_name, g, res)] * n, conns)
        run.results[f"filter/{g.label}"] = meter.finish(res)
        print_phase(res)
    for g in (big, small):
        res = PhaseResult(f"GET /Groups/{{id}}?excludedAttributes=members, {g.label} group")
        await meter.run(res, [functools.partial(groups.get_excluded, g, res)] * n, conns)
        run.results[f"get/{g.label}"] = meter.finish(res)
        print_phase(res)
    for conn in conns:
        await conn.close()
    sys.stdout.flush()


async def run_memory(
    run: Run, groups: GroupWorkload, big: Group, small: Group, expected: set[str]
) -> None:
    args = run.args
    conn = run.conns(1)[0]
    prefix = groups.prefix

    # The 10-member group, in full, first: it must hold exactly its members again.
    path = f"{prefix}/Groups/{small.group_id}"
    try:
        async with asyncio.timeout(args.request_timeout):
            status, data = await conn.request("GET", path, None)
    except (OSError, ConnectionLost, TimeoutError) as error:
        status, data = 599, repr(error).encode()
        run.checks.errors += 1
    want = {groups.uid(i) for i in small.members}
    got = {m.get("value") for m in loads(data).get("members", [])} if status == 200 else set()
    run.small_members_ok = got == want
    if not run.small_members_ok:
        run.checks.check_failed("GET", path, None, status, data, "10-member group changed")

    await asyncio.sleep(1.0)
    tree = process_tree(run.pid)
    samples = []
    for _ in range(5):
        samples.append(read_rss(tree))
        await asyncio.sleep(0.02)
    run.idle = sorted(samples, key=lambda s: s.rss_kb)[2]  # the median
    maps_before = rss_by_mapping(tree)
    path = f"{prefix}/Groups/{big.group_id}"
    for _ in range(args.memory_gets):
        poller = RssPoller(tree, args.rss_interval_ms / 1000, args.phase_timeout)
        ticks0 = sum(tree_cpu_ticks(run.pid))
        poller.start()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(args.request_timeout):
                status, data = await conn.request("GET", path, None)
        except (OSError, ConnectionLost, TimeoutError) as error:
            status, data = 599, repr(error).encode()
        seconds = time.perf_counter() - started
        await asyncio.sleep(0.05)  # the tail of the answer may still be being freed
        peak = poller.stop()
        await asyncio.sleep(args.settle)
        cpu_ms = (sum(tree_cpu_ticks(run.pid)) - ticks0) * TICK_MS
        members = -1
        if status == 200:
            try:
                values = [m["value"] for m in loads(data).get("members", [])]
            except (ValueError, KeyError, TypeError) as error:
                run.checks.check_failed("GET", path, None, status, data[:2000], repr(error))
            else:
                members = len(values)
                if set(values) != expected or len(values) != len(expected):
                    note = f"{members} members; expected the {len(expected)} it was given"
                    run.checks.check_failed("GET", path, None, status, data[:2000], note)
        else:
            run.checks.errors += 1
            run.checks.check_failed("GET", path, None, status, data[:2000], "non-200")
        run.memory.append(
            MemoryRun(
                seconds, len(data), status, members, cpu_ms, peak, read_rss(tree), poller.samples
            )
        )
        del data
    await conn.close()
    maps_after = rss_by_mapping(tree)
    run.growth = sorted(
        ((kb - maps_before.get(name, 0), name) for name, kb in maps_after.items()), reverse=True
    )
    print_memory(run)


def print_memory(run: Run) -> None:
    idle = run.idle
    print(f"\n== memory: GET /Groups/{{id}} of the {run.args.users}-member group, in full")
    print(
        f"   idle server RSS {idle.mb(idle.rss_kb):.1f} MB (anon {idle.mb(idle.anon_kb):.1f}, "
        f"file {idle.mb(idle.file_kb):.1f}; VmHWM so far {idle.mb(idle.hwm_kb):.1f})"
    )
    for k, m in enumerate(run.memory, 1):
        p = m.peak
        print(
            f"   GET {k}: {m.status}, {m.size / 1e6:.1f} MB body, {m.members} members, "
            f"{m.seconds * 1000:.0f} ms, server CPU {m.server_cpu_ms:.0f} ms; peak RSS "
            f"+{p.mb(p.rss_kb - idle.rss_kb):.1f} MB above idle (anon "
            f"{p.mb(p.anon_kb - idle.anon_kb):+.1f}, file {p.mb(p.file_kb - idle.file_kb):+.1f}; "
            f"{m.samples} samples); after: +{p.mb(m.after.rss_kb - idle.rss_kb):.1f} MB"
        )
    last = run.memory[-1].after if run.memory else idle
    if last.hwm_kb > idle.hwm_kb:
        print(
            f"   kernel high-water mark VmHWM rose to {last.mb(last.hwm_kb):.1f} MB: "
            f"+{last.mb(last.hwm_kb - idle.rss_kb):.1f} MB above idle (exact, not sampled)"
        )
    else:
        print("   VmHWM did not rise: the peak stayed below the process's earlier high-water mark")
    grew = ", ".join(f"{name} {kb / 1024:+.1f} MB" for kb, name in run.growth[:3])
    print(f"   RSS growth by mapping, idle -> after the GETs (/proc/PID/smaps): {grew}")
    print(
        "   (RssFile: pages of files mapped into the process, such as the SQLite database read "
        "through mmap (PRAGMA mmap_size); they are shared with the page cache, clean and "
        "reclaimable. RssAnon: the process's own heap.)"
    )


def comparison(run: Run, big: Group, small: Group) -> None:
    rows = [(f"PATCH {k}", k) for k in KINDS]
    rows += [("filter displayName eq", "filter"), ("GET ?excludedAttributes=members", "get")]
    print(f"\n== {big.label} vs {small.label} group (latency p50/p99 ms, server CPU ms/request)")
    width = max(len(r[0]) for r in rows)
    print(
        f"   {'request':<{width}}  {'p50 big':>8} {'p50 10':>8} {'ratio':>6}  "
        f"{'p99 big':>8} {'p99 10':>8}  {'CPU big':>8} {'CPU 10':>8}"
    )
    for label, key in rows:
        a, b = run.results[f"{key}/{big.label}"], run.results[f"{key}/{small.label}"]
        la, lb = a.all_latencies(), b.all_latencies()
        p50a, p50b = percentile(la, 50), percentile(lb, 50)
        print(
            f"   {label:<{width}}  {fmt_ms(p50a):>8} {fmt_ms(p50b):>8} {p50a / p50b:>5.2f}x  "
            f"{fmt_ms(percentile(la, 99)):>8} {fmt_ms(percentile(lb, 99)):>8}  "
            f"{cpu_per_request(a):>8.3f} {cpu_per_request(b):>8.3f}"
        )


def cpu_per_request(r: PhaseResult) -> float:
    return r.server_ticks * TICK_MS / r.requests if r.requests else math.nan


def summary(run: Run, big: Group, small: Group) -> int:
    rows: list[tuple[str, str, str, bool | None]] = []  # check, measured, target, ok (None: info)
    for kind in KINDS:
        for g in (big, small):
            v = cpu_per_request(run.results[f"{kind}/{g.label}"])
            limit = PATCH_CPU_TARGET_MS
            rows.append(
                (
                    f"server CPU, PATCH {kind}, {g.label}",
                    f"{v:.3f} ms",
                    f"<= {limit} ms",
                    v <= limit,
                )
            )
    for kind in KINDS:
        a = percentile(run.results[f"{kind}/{big.label}"].all_latencies(), 50)
        b = percentile(run.results[f"{kind}/{small.label}"].all_latencies(), 50)
        ratio = a / b if b else math.inf
        rows.append(
            (
                f"p50 {big.label} / {small.label}, PATCH {kind}",
                f"{ratio:.2f}x",
                f"<= {P50_RATIO_TARGET}x",
                ratio <= P50_RATIO_TARGET,
            )
        )
    if run.memory:
        peak = max(m.peak.rss_kb for m in run.memory) - run.idle.rss_kb
        mb = peak / 1024
        rows.append(
            (
                f"peak RSS above idle, full GET of the {big.label} group",
                f"{mb:.1f} MB",
                f"< {PEAK_RSS_TARGET_MB:.0f} MB",
                mb < PEAK_RSS_TARGET_MB,
            )
        )
        at_peak = max(run.memory, key=lambda m: m.peak.rss_kb).peak
        for kind, kb, idle_kb in (
            ("RssAnon (heap)", at_peak.anon_kb, run.idle.anon_kb),
            ("RssFile (mapped files)", at_peak.file_kb, run.idle.file_kb),
        ):
            rows.append((f"  of which {kind}", f"{(kb - idle_kb) / 1024:+.1f} MB", "-", None))
        ok = all(m.members == run.args.users for m in run.memory)
        members = ", ".join(str(m.members) for m in run.memory)
        rows.append((f"members in the full GET (JSON) of {big.label}", members, "= N", ok))
    else:
        rows.append(("full GET of the big group", "not run", "-", False))
    measured = [*run.results.values(), run.checks]
    errors = sum(r.errors for r in measured)
    wrong = sum(r.check_failures for r in measured)
    rows.append(("errors (non-2xx), all phases and checks", str(errors), "0", errors == 0))
    rows.append(("wrong answers (checks)", str(wrong), "0", wrong == 0))

    width = max(len(r[0]) for r in rows)
    print("\n== Summary")
    print(f"   {'check':<{width}}  {'measured':>12}  {'target':>10}  result")
    for label, measured_value, goal, ok in rows:
        result = "info" if ok is None else "PASS" if ok else "FAIL"
        print(f"   {label:<{width}}  {measured_value:>12}  {goal:>10}  {result}")
    others = [(r.other_share, r.name) for r in run.results.values()]
    busiest = max(others) if others else (0.0, "-")
    note = "  <- not a quiet machine: rerun to compare" if busiest[0] > OTHER_WARN else ""
    print(f"   other procs: at most {busiest[0]:.0f}% of a core ({busiest[1]}){note}")
    failed = [r[0] for r in rows if r[3] is False]
    checks = sum(r[3] is not None for r in rows)
    print("RESULT: " + ("PASS" if not failed else f"FAIL ({len(failed)} of {checks} checks)"))
    return 0 if not failed else 1


async def amain(args: argparse.Namespace, target: Target, pid: int) -> int:
    headers = {"Host": target.host_header, "Authorization": f"Bearer {args.token}", **OKTA_HEADERS}
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode("latin-1")
    run = Run(
        args, target, pid, head, Meter(pid, args.settle, args.phase_timeout, args.request_timeout)
    )
    run_tag = args.run_tag or secrets.token_hex(3)
    n, spare_count = args.users, args.patch_requests
    total = n + spare_count
    work = Workload(target.prefix, total, run_tag)
    # Spare users sit evenly through the creation order, so their ids (time-ordered) are
    # spread over the membership index like any member's, not bunched at its end.
    spare = [(k + 1) * total // spare_count - 1 for k in range(spare_count)]
    spare_set = set(spare)
    members = [i for i in range(total) if i not in spare_set]
    random.Random(run_tag).shuffle(spare)  # each round's users are spread too
    big = Group(f"{n}-member", f"All Employees {run_tag}", members)
    small_members = [members[k * n // SMALL_SIZE] for k in range(SMALL_SIZE)]
    small = Group(f"{SMALL_SIZE}-member", f"Ten Members {run_tag}", small_members)
    others = [  # 0-5 members each, picked all over the user list
        Group(
            "small",
            f"Team {run_tag} {k:05d}",
            [members[(k * 7919 + j * 104729) % n] for j in range(k % 6)],
        )
        for k in range(args.small_groups)
    ]
    groups = GroupWorkload(target.prefix, work, spare)

    print(
        f"Muster group load: N={n} members, {spare_count} PATCHes per kind and group, rounds of "
        f"{args.round_size}, PATCH connections {args.patch_concurrency}, setup/GET connections "
        f"{args.concurrency}, target {target.base}"
    )
    print(
        f"server process tree {process_tree(pid)}; CPU clock {CLK_TCK} ticks/s; run tag "
        f"{run_tag}; settle {args.settle} s after each measured run"
    )
    run.meter.idle_ms_per_s = await idle_rate(pid, 3.0)
    print(f"idle server CPU: {run.meter.idle_ms_per_s:.1f} ms per second (over 3 s)")

    print("\n== Setup, all through the SCIM API (timed; no targets)")
    setup_started = time.perf_counter()
    if not await run_setup(run, work, groups, big, small, others):
        return 2
    print(f"   setup took {time.perf_counter() - setup_started:.1f} s")
    sys.stdout.flush()

    await run_patch_rounds(run, groups, big, small)
    await run_reads(run, groups, big, small)
    await run_memory(run, groups, big, small, {groups.uid(i) for i in members})
    if run.checks.failures or run.checks.errors:
        print_phase(run.checks)
    else:
        print(f"\n(membership checks: {run.checks.requests} unmeasured requests, all as expected)")
    comparison(run, big, small)
    return summary(run, big, small)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    target = parse_target(args.base_url)
    pid = args.server_pid or find_listening_pid(target.port)
    if pid is None or not os.path.exists(f"/proc/{pid}/stat"):
        print("no server process found; pass --server-pid", file=sys.stderr)
        return 2
    loop_factory = None
    if args.loop != "asyncio":
        try:
            import uvloop

            loop_factory = uvloop.new_event_loop
        except ImportError:
            if args.loop == "uvloop":
                print("uvloop is not installed", file=sys.stderr)
                return 2
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(amain(args, target, pid))


if __name__ == "__main__":
    sys.exit(main())
