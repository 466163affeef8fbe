"""Metrics: Prometheus counters and histograms of requests, SCIM outcomes and the DB pool.

Labels are bounded by design: a route *template* (`/scim/v2/Users/{id}`, never an id), a known
method, a status code, and for provisioning outcomes the resource type, the operation and the
outcome (`success`, a scimType, or the status). No label names a tenant or a token: with
thousands of tenants every per-tenant label multiplies the series a Prometheus must keep (and
a tenant's slug is customer data). A tenant's own outcomes are in its provisioning log
(`muster log SLUG`), which is per tenant by construction.

Several worker processes (`muster serve --workers N`) each count their own requests; with
PROMETHEUS_MULTIPROC_DIR set (the CLI sets a temporary one per run) prometheus_client keeps
each process's values in files there, and GET /metrics adds up all of them.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import time
from bisect import bisect_left
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from muster.errors import ScimError

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
# A SCIM request takes ~0.5-20 ms; a list of a big group can take seconds.
FOLD_SECONDS = 1.0
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

SCIM_PREFIX = "/scim/v2"
UNMATCHED = "unmatched"
_SCIM_UNMATCHED = (f"{SCIM_PREFIX}/{UNMATCHED}", None, False)
_OPERATIONS = {
    ("POST", False): "create",
    ("GET", False): "list",
    ("GET", True): "get",
    ("PUT", True): "replace",
    ("PATCH", True): "patch",
    ("DELETE", True): "delete",
}
Route = tuple[str, str | None, bool]  # template, resource type (Users/Groups only), one resource
# Built once: a request looks its template up instead of formatting one.
_COLLECTION_ROUTES: dict[str, Route] = {
    name: (f"{SCIM_PREFIX}/{name}", resource_type, False)
    for name, resource_type in (("Users", "User"), ("Groups", "Group"))
}
_SEARCH_ROUTES: dict[str, Route] = {
    name: (f"{route[0]}/.search", route[1], False) for name, route in _COLLECTION_ROUTES.items()
}
_ITEM_ROUTES: dict[str, Route] = {
    name: (f"{route[0]}/{{id}}", route[1], True) for name, route in _COLLECTION_ROUTES.items()
}
for _name in ("ResourceTypes", "Schemas"):
    _COLLECTION_ROUTES[_name] = (f"{SCIM_PREFIX}/{_name}", None, False)
    _ITEM_ROUTES[_name] = (f"{SCIM_PREFIX}/{_name}/{{id}}", None, False)
for _name in ("ServiceProviderConfig", "Bulk", "Me", ""):
    _COLLECTION_ROUTES[_name] = (f"{SCIM_PREFIX}/{_name}".rstrip("/"), None, False)
_NESTED_IDS = frozenset({"Schemas"})  # a schema id may contain "/" (the route takes a :path)


def scim_route(path: str) -> Route:
    """(route template, resource type or None, names one resource) of a /scim/v2 path."""
    parts = path.split("/", 5)  # "", "scim", "v2", name, id, rest
    count = len(parts)
    name = parts[3] if count > 3 else ""
    item = parts[4] if count > 4 else ""
    if not item:
        return _COLLECTION_ROUTES.get(name, _SCIM_UNMATCHED)
    if count > 5 and name not in _NESTED_IDS:
        return _SCIM_UNMATCHED
    if item == ".search":
        return _SEARCH_ROUTES.get(name, _SCIM_UNMATCHED)
    return _ITEM_ROUTES.get(name, _SCIM_UNMATCHED)


class _Tally:
    """Requests of one label set since the last fold, their latencies by histogram bucket."""

    __slots__ = ("buckets", "count", "seconds")

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf

    def add(self, seconds: float) -> None:
        self.count += 1
        self.seconds += seconds
        # The first bucket whose bound is >= seconds, as Histogram.observe() picks it.
        self.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1


class Metrics:
    """One app's metrics; its own registry, so each create_app (tests build many) starts at 0.

    A request only adds to a tally in a dict (well under a microsecond); the tallies are folded
    into prometheus_client's metrics at most FOLD_SECONDS later and before this process answers
    a scrape. Folding per request would cost 4 locked writes, and in multiprocess mode 4 writes
    to memory-mapped files (~3 and ~8 µs; benchmarks/operating_cost.py).
    """

    def __init__(self) -> None:
        self.is_multiprocess = MULTIPROCESS_DIR_ENV in os.environ
        self.registry = CollectorRegistry()
        # In multiprocess mode values live in the shared files and the scrape reads those.
        registry = None if self.is_multiprocess else self.registry
        self.requests = Counter(
            "muster_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "muster_http_request_duration_seconds",
            "Time from a request's arrival to its last response byte, by route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.scim_operations = Counter(
            "muster_scim_operations",
            "Provisioning operations on Users and Groups, by outcome: success, the scimType of "
            "a rejection, or the status when there is none. Never by tenant (see the README).",
            ["resource_type", "operation", "outcome"],
            registry=registry,
        )
        # livesum: the sum over the worker processes alive now.
        self.pool_checked_out = Gauge(
            "muster_db_pool_checked_out",
            "Database connections in use (held by a request or kept for the next one).",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.pool_size = Gauge(
            "muster_db_pool_size",
            "Database connections each process keeps open, summed over processes "
            "(each may open up to MUSTER_DB_MAX_OVERFLOW more under load).",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.refused = Counter(
            "muster_requests_refused",
            "Requests answered 503 because the database or this server could not serve them "
            "now (each also writes one process-log line), by reason: lock_timeout, "
            "statement_timeout, unreachable, stalled, busy, read_only, disk_full, ...",
            ["reason"],
            registry=registry,
        )
        self.auth_failures = Counter(
            "muster_auth_failures",
            "Requests whose bearer credential was missing or not valid (`refused`, 401), and "
            "those refused unread because their address kept failing (`throttled`, 429). "
            "Never by tenant: such a request proves none.",
            ["outcome"],
            registry=registry,
        )
        # Children by label values: prometheus_client's labels() costs more than the count.
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._request_tallies: dict[tuple[str, str, int], _Tally] = {}
        self._scim_tallies: dict[tuple[str, Route, int, str | None], _Tally] = {}
        self._timer: asyncio.TimerHandle | None = None

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        if method not in _METHODS:
            method = "other"
        key = (method, route, status)
        tally = self._request_tallies.get(key)
        if tally is None:
            tally = self._request_tallies[key] = _Tally()
            self._fold_soon()
        tally.add(seconds)

    def observe_scim(
        self, method: str, path: str, status: int, error: ScimError | None, started: float
    ) -> None:
        """Count one /scim/v2 request that began at perf_counter() `started`; on Users and
        Groups also its provisioning outcome."""
        seconds = time.perf_counter() - started
        if method not in _METHODS:
            method = "other"
        key = (method, scim_route(path), status, error.scim_type if error is not None else None)
        tally = self._scim_tallies.get(key)
        if tally is None:
            tally = self._scim_tallies[key] = _Tally()
            self._fold_soon()
        tally.add(seconds)

    def _fold_soon(self) -> None:
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # outside a server (a script, a unit test): render() folds
        # An empty context: the fold belongs to no request.
        self._timer = loop.call_later(FOLD_SECONDS, self.fold, context=contextvars.Context())

    def fold(self) -> None:
        """Add the tallies to prometheus_client's metrics now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        requests, self._request_tallies = self._request_tallies, {}
        for (method, route, status), tally in requests.items():
            _add(*self._request_children_of(method, route, status), tally)
        scim, self._scim_tallies = self._scim_tallies, {}
        for (method, scim_path, status, scim_type), tally in scim.items():
            template, resource_type, is_item = scim_path
            _add(*self._request_children_of(method, template, status), tally)
            if resource_type is None:
                continue
            if template.endswith("/.search"):
                operation = "search" if method == "POST" else "other"
            else:
                operation = _OPERATIONS.get((method, is_item), "other")
            outcome = "success" if status < 400 else (scim_type or str(status))
            self.scim_operations.labels(resource_type, operation, outcome).inc(tally.count)

    def _request_children_of(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            children = self._request_children[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        return children

    def observe_refusal(self, reason: str | None) -> None:
        """Count one request refused with 503 (rare: counted at once, not tallied)."""
        self.refused.labels(reason or "other").inc()

    def observe_auth_failure(self, outcome: str) -> None:
        """Count one request refused for its credential (rare: counted at once)."""
        self.auth_failures.labels(outcome).inc()

    def observe_pool(self, checked_out: int) -> None:
        self.pool_checked_out.set(checked_out)

    def render(self) -> bytes:
        """The Prometheus text exposition of every process's metrics."""
        self.fold()  # this process's own, exact; other workers' are at most FOLD_SECONDS old
        if self.is_multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)

    def process_exited(self) -> None:
        """Fold the last tallies; drop this process's live gauges from the shared files."""
        self.fold()
        if self.is_multiprocess:
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def _add(requests: Any, latency: Any, tally: _Tally) -> None:
    requests.inc(tally.count)
    # prometheus_client has no public call that adds many observations at once; these are the
    # values Histogram.observe() itself increments: the sum and each observation's bucket.
    latency._sum.inc(tally.seconds)
    for bucket, count in zip(latency._buckets, tally.buckets, strict=True):
        if count:
            bucket.inc(count)
