"""Route templates and the counting of requests and provisioning outcomes."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from muster.errors import ScimError
from muster.web import metrics as metrics_module
from muster.web.metrics import Metrics, scim_route


def _ago(seconds: float) -> float:
    """A perf_counter() reading `seconds` ago."""
    return time.perf_counter() - seconds


def _samples(metrics: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return _samples_of(metrics.render().decode(), name)


def _samples_of(exposition: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/scim/v2/Users", ("/scim/v2/Users", "User", False)),
        ("/scim/v2/Users/2819c223-7f76-453a", ("/scim/v2/Users/{id}", "User", True)),
        ("/scim/v2/Groups/abc", ("/scim/v2/Groups/{id}", "Group", True)),
        ("/scim/v2/Groups/.search", ("/scim/v2/Groups/.search", "Group", False)),
        ("/scim/v2/Users/", ("/scim/v2/Users", "User", False)),
        ("/scim/v2/ServiceProviderConfig", ("/scim/v2/ServiceProviderConfig", None, False)),
        ("/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
         ("/scim/v2/Schemas/{id}", None, False)),
        ("/scim/v2/ResourceTypes", ("/scim/v2/ResourceTypes", None, False)),
        ("/scim/v2", ("/scim/v2", None, False)),
        ("/scim/v2/Users/abc/extra", ("/scim/v2/unmatched", None, False)),
        ("/scim/v2/Whatever-123", ("/scim/v2/unmatched", None, False)),
        ("/scim/v2/Me/123", ("/scim/v2/unmatched", None, False)),
    ],
)
def test_scim_route_is_a_template_never_an_id(
    path: str, expected: tuple[str, str | None, bool]
) -> None:
    assert scim_route(path) == expected


def test_requests_are_counted_by_method_route_and_status() -> None:
    metrics = Metrics()
    for user_id in ("a", "b", "c"):
        metrics.observe_scim("GET", f"/scim/v2/Users/{user_id}", 200, None, _ago(0.002))
    metrics.observe_scim("GET", "/scim/v2/Users/d", 404, None, _ago(0.0005))

    counts = _samples(metrics, "muster_http_requests_total")
    assert counts == {
        (("method", "GET"), ("route", "/scim/v2/Users/{id}"), ("status", "200")): 3.0,
        (("method", "GET"), ("route", "/scim/v2/Users/{id}"), ("status", "404")): 1.0,
    }
    latency = _samples(metrics, "muster_http_request_duration_seconds_count")
    assert latency == {(("method", "GET"), ("route", "/scim/v2/Users/{id}")): 4.0}
    buckets = _samples(metrics, "muster_http_request_duration_seconds_bucket")
    key = (("le", "0.0025"), ("method", "GET"), ("route", "/scim/v2/Users/{id}"))
    assert buckets[key] == 4.0
    key = (("le", "0.001"), ("method", "GET"), ("route", "/scim/v2/Users/{id}"))
    assert buckets[key] == 1.0


def test_provisioning_outcomes_name_the_scim_type_or_the_status_but_no_tenant() -> None:
    metrics = Metrics()
    metrics.observe_scim("POST", "/scim/v2/Users", 201, None, _ago(0.003))
    conflict = ScimError.uniqueness("userName")
    metrics.observe_scim("POST", "/scim/v2/Users", 409, conflict, _ago(0.003))
    metrics.observe_scim("POST", "/scim/v2/Users", 409, conflict, _ago(0.003))
    metrics.observe_scim("PATCH", "/scim/v2/Groups/g1", 204, None, _ago(0.003))
    metrics.observe_scim("POST", "/scim/v2/Groups/.search", 200, None, _ago(0.003))
    metrics.observe_scim("DELETE", "/scim/v2/Users/u1", 429, None, _ago(0.001))
    metrics.observe_scim("GET", "/scim/v2/ServiceProviderConfig", 200, None, _ago(0.001))

    outcomes = _samples(metrics, "muster_scim_operations_total")
    assert outcomes == {
        (("operation", "create"), ("outcome", "success"), ("resource_type", "User")): 1.0,
        (("operation", "create"), ("outcome", "uniqueness"), ("resource_type", "User")): 2.0,
        (("operation", "patch"), ("outcome", "success"), ("resource_type", "Group")): 1.0,
        (("operation", "search"), ("outcome", "success"), ("resource_type", "Group")): 1.0,
        (("operation", "delete"), ("outcome", "429"), ("resource_type", "User")): 1.0,
    }


def test_unknown_methods_share_one_label() -> None:
    metrics = Metrics()
    metrics.observe_request("BREW", "/healthz", 405, 0.0001)
    metrics.observe_request("PROPFIND", "/healthz", 405, 0.0001)

    counts = _samples(metrics, "muster_http_requests_total")
    assert counts == {(("method", "other"), ("route", "/healthz"), ("status", "405")): 2.0}


def test_each_app_has_its_own_metrics() -> None:
    first, second = Metrics(), Metrics()
    first.observe_request("GET", "/healthz", 200, 0.0001)

    assert _samples(second, "muster_http_requests_total") == {}


def test_a_server_folds_its_tallies_on_a_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_module, "FOLD_SECONDS", 0.01)
    metrics = Metrics()

    async def serve() -> None:
        metrics.observe_request("GET", "/healthz", 200, 0.0001)
        metrics.observe_scim("GET", "/scim/v2/Users/u1", 200, None, _ago(0.002))
        await asyncio.sleep(0.1)

    asyncio.run(serve())

    # Read the registry as it is, without render()'s own fold.
    exposition = generate_latest(metrics.registry).decode()
    counts = _samples_of(exposition, "muster_http_requests_total")
    assert counts[(("method", "GET"), ("route", "/healthz"), ("status", "200"))] == 1
    assert counts[(("method", "GET"), ("route", "/scim/v2/Users/{id}"), ("status", "200"))] == 1


def test_a_latency_on_a_bucket_bound_falls_in_that_bucket() -> None:
    metrics = Metrics()
    metrics.observe_request("GET", "/healthz", 200, 0.001)

    buckets = _samples(metrics, "muster_http_request_duration_seconds_bucket")

    assert buckets[(("le", "0.001"), ("method", "GET"), ("route", "/healthz"))] == 1
