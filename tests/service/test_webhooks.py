"""services.webhooks: endpoints (secret shown once), the delivery log and redelivery."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from muster.db.unit_of_work import UnitOfWork
from muster.errors import ScimError
from muster.scim.records import TenantInfo
from muster.services import users, webhook_delivery, webhooks
from tests.factories import given_tenant, given_user

pytestmark = pytest.mark.service

UowFactory = Callable[..., UnitOfWork]
URL = "https://hooks.example.com/muster"


def _fan_out(uow_factory: UowFactory) -> None:
    while webhook_delivery.fan_out(uow_factory()):
        pass


def _deliveries(uow: UnitOfWork, endpoint_id: str, state: str | None = None) -> list[int]:
    return [d.event_seq for d in webhooks.deliveries_page(uow, endpoint_id, state=state).items]


def test_create_endpoint_shows_the_secret_once_and_never_again(uow: UnitOfWork) -> None:
    created = webhooks.create_endpoint(uow, URL, description="  audit trail ")

    assert created.secret.startswith("whsec_") and len(created.secret) > 40
    endpoint = created.endpoint
    assert (endpoint.url, endpoint.description, endpoint.is_enabled) == (URL, "audit trail", True)
    assert endpoint.event_types is None
    listed = webhooks.list_endpoints(uow)
    assert [e.endpoint_id for e in listed] == [endpoint.endpoint_id]
    shown = repr(listed) + repr(webhooks.get_endpoint(uow, endpoint.endpoint_id))
    assert created.secret not in shown and "whsec_" not in shown
    assert webhooks.create_endpoint(uow, URL).secret != created.secret


def test_an_endpoints_format_reaches_its_claims_body_and_content_type(
    uow_factory: UowFactory, uow: UnitOfWork
) -> None:
    plain = webhooks.create_endpoint(uow, URL).endpoint
    tokens = webhooks.create_endpoint(uow, URL + "/set", format="set").endpoint
    given_user(uow)
    _fan_out(uow_factory)
    claims = webhook_delivery.claim(uow_factory(), limit=10, lease_seconds=60)
    by_endpoint = {c.endpoint_id: c for c in claims}
    as_json, as_set = by_endpoint[plain.endpoint_id], by_endpoint[tokens.endpoint_id]

    assert (plain.format, tokens.format) == ("json", "set")
    assert webhooks.get_endpoint(uow, tokens.endpoint_id).format == "set"
    assert (as_json.format, as_set.format) == ("json", "set")
    json_body = as_json.body("https://muster.example.com/scim/v2", 1)
    set_body = as_set.body("https://muster.example.com/scim/v2", 1)
    assert json_body.startswith(b"{") and set_body.count(b".") == 2  # a compact JWS
    assert as_json.headers(json_body, 1)["Content-Type"] == "application/json"
    headers = as_set.headers(set_body, 1)
    assert headers["Content-Type"] == "application/secevent+jwt"
    assert headers["Muster-Signature"].startswith("t=1,v1=")  # the HMAC stays on SETs too
    with pytest.raises(ScimError) as refused:
        webhooks.create_endpoint(uow, URL, format="xml")
    assert refused.value.detail == "format must be one of json, set"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/x",
        "https://",
        "hooks.example.com/x",
        "javascript:alert(1)",
        "https://user:pass@hooks.example.com/",
        "https://hooks.example.com:port/",
        "https://example.com/" + "x" * 2000,
    ],
)
def test_create_endpoint_refuses_a_url_that_is_not_http_with_a_host(
    uow: UnitOfWork, url: str
) -> None:
    with pytest.raises(ScimError) as refused:
        webhooks.create_endpoint(uow, url)
    assert refused.value.status == 400
    assert webhooks.list_endpoints(uow) == []


def test_create_endpoint_refuses_unknown_event_types_naming_them(uow: UnitOfWork) -> None:
    with pytest.raises(ScimError) as refused:
        webhooks.create_endpoint(uow, URL, event_types=["user.deactivated", "user.exploded"])
    assert refused.value.status == 400 and "user.exploded" in refused.value.detail


def test_event_types_are_kept_in_catalogue_order_without_repeats(uow: UnitOfWork) -> None:
    created = webhooks.create_endpoint(
        uow, URL, event_types=["user.deleted", "user.created", "user.deleted"]
    )
    assert created.endpoint.event_types == ("user.created", "user.deleted")
    assert webhooks.create_endpoint(uow, URL, event_types=[]).endpoint.event_types is None


def test_a_new_endpoint_receives_only_events_after_its_creation(
    uow_factory: UowFactory, uow: UnitOfWork
) -> None:
    given_user(uow)  # event 1, before the endpoint
    endpoint = webhooks.create_endpoint(uow, URL).endpoint
    later = given_user(uow)  # event 2

    _fan_out(uow_factory)

    page = webhooks.deliveries_page(uow, endpoint.endpoint_id)
    assert [(d.event_seq, d.event_type, d.resource_id) for d in page.items] == [
        (2, "user.created", later.user_id)
    ]
    assert page.items[0].state == "pending" and page.items[0].attempts == 0
    assert webhooks.get_endpoint(uow, endpoint.endpoint_id).pending == 1


def test_an_endpoint_gets_only_the_event_types_it_chose(
    uow_factory: UowFactory, uow: UnitOfWork
) -> None:
    chosen = webhooks.create_endpoint(uow, URL, event_types=["user.deleted"]).endpoint
    everything = webhooks.create_endpoint(uow, URL).endpoint
    user = given_user(uow)
    users.delete_user(uow, user.user_id)
    _fan_out(uow_factory)

    assert _deliveries(uow, chosen.endpoint_id) == [2]
    assert _deliveries(uow, everything.endpoint_id) == [2, 1]


def test_a_disabled_endpoint_pauses_and_catches_up_when_enabled(
    uow_factory: UowFactory, uow: UnitOfWork
) -> None:
    endpoint = webhooks.create_endpoint(uow, URL).endpoint
    paused = webhooks.set_endpoint_enabled(uow, endpoint.endpoint_id, False)
    assert paused.is_enabled is False
    given_user(uow)
    _fan_out(uow_factory)
    assert _deliveries(uow, endpoint.endpoint_id) == []

    webhooks.set_endpoint_enabled(uow, endpoint.endpoint_id, True)
    _fan_out(uow_factory)
    assert _deliveries(uow, endpoint.endpoint_id) == [1]


def test_remove_endpoint_removes_its_deliveries(uow_factory: UowFactory, uow: UnitOfWork) -> None:
    endpoint = webhooks.create_endpoint(uow, URL).endpoint
    given_user(uow)
    _fan_out(uow_factory)

    webhooks.remove_endpoint(uow, endpoint.endpoint_id)

    assert webhooks.list_endpoints(uow) == []
    with pytest.raises(ScimError) as gone:
        webhooks.deliveries_page(uow, endpoint.endpoint_id)
    assert gone.value.status == 404
    with pytest.raises(ScimError):
        webhooks.remove_endpoint(uow, endpoint.endpoint_id)


def test_another_tenants_endpoint_is_not_found(
    uow_factory: UowFactory, uow: UnitOfWork, tenant: TenantInfo
) -> None:
    other = given_tenant(uow_factory())
    theirs = webhooks.create_endpoint(uow_factory(other.tenant_id), URL).endpoint

    assert webhooks.list_endpoints(uow) == []
    for attempt in (
        lambda: webhooks.get_endpoint(uow, theirs.endpoint_id),
        lambda: webhooks.set_endpoint_enabled(uow, theirs.endpoint_id, False),
        lambda: webhooks.remove_endpoint(uow, theirs.endpoint_id),
        lambda: webhooks.deliveries_page(uow, theirs.endpoint_id),
        lambda: webhooks.redeliver_dead(uow, theirs.endpoint_id),
    ):
        with pytest.raises(ScimError) as refused:
            attempt()
        assert refused.value.status == 404
    assert webhooks.list_endpoints(uow_factory(other.tenant_id))[0].is_enabled


def test_a_tenant_has_at_most_max_endpoints(uow: UnitOfWork) -> None:
    for _ in range(webhooks.MAX_ENDPOINTS):
        webhooks.create_endpoint(uow, URL)
    with pytest.raises(ScimError) as refused:
        webhooks.create_endpoint(uow, URL)
    assert refused.value.status == 400


def test_deliveries_page_filters_by_state_and_refuses_unknown_states(
    uow_factory: UowFactory, uow: UnitOfWork
) -> None:
    endpoint = webhooks.create_endpoint(uow, URL).endpoint
    for _ in range(3):
        given_user(uow)
    _fan_out(uow_factory)

    page = webhooks.deliveries_page(uow, endpoint.endpoint_id, state="pending")
    assert (page.total, page.number, page.pages) == (3, 1, 1)
    assert page.items[0].event_id != page.items[1].event_id
    assert webhooks.deliveries_page(uow, endpoint.endpoint_id, state="dead").total == 0
    with pytest.raises(ScimError):
        webhooks.deliveries_page(uow, endpoint.endpoint_id, state="lost")


def test_redeliver_queues_a_delivered_or_dead_delivery_again_from_scratch(
    uow_factory: UowFactory, uow: UnitOfWork
) -> None:
    endpoint = webhooks.create_endpoint(uow, URL).endpoint
    given_user(uow)
    given_user(uow)
    _fan_out(uow_factory)
    policy = webhook_delivery.RetryPolicy(max_attempts=1, base_seconds=60, max_seconds=60)
    first, second = webhook_delivery.claim(uow_factory(), limit=10, lease_seconds=60)
    webhook_delivery.record_delivered(uow_factory(), first, 204)
    webhook_delivery.record_failed(uow_factory(), second, policy, status=500, error="boom")
    assert _deliveries(uow, endpoint.endpoint_id, "dead") == [2]

    webhooks.redeliver(uow, endpoint.endpoint_id, 1)
    assert webhooks.redeliver_dead(uow, endpoint.endpoint_id) == 1

    page = webhooks.deliveries_page(uow, endpoint.endpoint_id)
    assert {(d.event_seq, d.state, d.attempts) for d in page.items} == {
        (1, "pending", 0),
        (2, "pending", 0),
    }
    assert {d.last_error for d in page.items} == {None, "boom"}  # the history is kept
    again = webhook_delivery.claim(uow_factory(), limit=10, lease_seconds=60)
    assert sorted(c.event_seq for c in again) == [1, 2]
    # A delivery on its way is left alone; an event never queued is not found.
    webhooks.redeliver(uow, endpoint.endpoint_id, 1)
    assert _deliveries(uow, endpoint.endpoint_id, "sending") == [2, 1]
    with pytest.raises(ScimError) as unknown:
        webhooks.redeliver(uow, endpoint.endpoint_id, 99)
    assert unknown.value.status == 404
