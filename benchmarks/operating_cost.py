"""What operating Muster adds to each SCIM request: metrics, request id, rate-limit check.

Times each per-request call in a loop (timeit on CPU time, best of 30 runs); prints µs per call.
Metrics are timed twice: in-process (one worker) and in prometheus_client's multiprocess mode
(`--workers N`), where every value lives in a memory-mapped file. Run:

    .venv/bin/python benchmarks/operating_cost.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import timeit

N = 10_000
REPEATS = 30  # the best of many short runs: on a shared machine the others only add noise


def _best(statement: str, setup: str) -> float:
    # CPU time of this process: time other processes take the core from us does not count.
    timer = timeit.Timer(statement, setup=setup, timer=time.process_time)
    timer.timeit(number=N)  # warm up
    return min(timer.repeat(repeat=REPEATS, number=N)) / N * 1e6


SETUP = """
from time import perf_counter
from muster.errors import ScimError
conflict = ScimError.uniqueness('userName')
from muster.web.metrics import Metrics
from muster.web import request_ids
from muster.services.rate_limits import RateLimiter
metrics = Metrics()
limiter = RateLimiter(limit=10**12, window_seconds=60)
paths = [f'/scim/v2/{kind}/{n}' for kind in ('Users', 'Groups') for n in range(5)]
def ten_then_fold():
    for status, path in enumerate(paths):
        metrics.observe_scim('GET', path, 200 + status, None, perf_counter() - 0.002)
    metrics.fold()
"""

CASES = [
    # A request that began 2 ms ago (the latency histogram's third bucket).
    ("metrics.observe_scim, a 200 on /Users/{id}",
     "metrics.observe_scim('GET', '/scim/v2/Users/2819c2', 200, None, perf_counter() - 0.002)"),
    ("metrics.observe_scim, a 409 uniqueness on POST /Users",
     "metrics.observe_scim('POST', '/scim/v2/Users', 409, conflict, perf_counter() - 0.002)"),
    ("10 requests of 10 label sets, then metrics.fold() (at most once a second)",
     "ten_then_fold()"),
    ("metrics.observe_pool (at each pool checkout and checkin)", "metrics.observe_pool(3)"),
    ("request_ids.begin, no incoming id", "request_ids.begin(None)"),
    ("request_ids.begin, a sane incoming id",
     "request_ids.begin(b'2819c223-7f76-453a-919d-413861904646')"),
    ("RateLimiter.admit", "limiter.admit('t1', 'tok1', 1_800_000_010.0)"),
]


def main() -> None:
    mode = "multiprocess" if "PROMETHEUS_MULTIPROC_DIR" in os.environ else "one process"
    for label, statement in CASES:
        is_metrics = "metrics." in statement or "fold" in statement
        if not is_metrics and mode == "multiprocess":
            continue
        suffix = f" [{mode}]" if is_metrics else ""
        print(f"{_best(statement, SETUP):7.2f} µs  {label}{suffix}")
    if mode == "one process":
        with tempfile.TemporaryDirectory(prefix="muster-metrics-") as directory:
            env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": directory}
            subprocess.run([sys.executable, __file__], env=env, check=True)


if __name__ == "__main__":
    main()
