"""The console's webhook pages over HTTP: add (secret shown once), pause, remove, the log."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient

from muster.config import Settings
from muster.db.unit_of_work import UnitOfWork
from muster.scim.records import TenantInfo
from muster.services import admins, webhooks
from tests.console_factories import ConsoleClient, cheap_password_hasher, given_admin
from tests.factories import given_tenant, given_user
from tests.group_factories import given_group
from tests.webhook_fixtures import Receiver, fast_settings, running_worker, settle_deliveries

pytestmark = pytest.mark.integration
UowFactory = Callable[..., UnitOfWork]
PAGE = "/console/settings/webhooks"
URL = "https://hooks.example.com/muster"


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admins, "_hasher", cheap_password_hasher())


@pytest.fixture
def console(client: TestClient, uow_factory: UowFactory, tenant: TenantInfo) -> ConsoleClient:
    """A client signed in as an admin of `tenant`."""
    signed_in = ConsoleClient(client)
    assert signed_in.sign_in(given_admin(uow_factory(), tenant.slug)).status_code == 303
    return signed_in


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as started:
        yield started


def _shown_secret(html: str) -> str:
    found = re.search(r'id="webhook-secret-value" type="text" value="([^"]+)"', html)
    assert found is not None, "no secret dialog on the page"
    return found.group(1)


def _rows(html: str) -> list[int]:
    """The event numbers of the delivery log's rows, in page order."""
    return [int(seq) for seq in re.findall(r'<tr id="delivery-(\d+)">', html)]


# -- adding an endpoint -----------------------------------------------------------------------


def test_an_added_endpoints_secret_is_shown_once_and_never_again(
    console: ConsoleClient, uow: UnitOfWork
) -> None:
    empty = console.get(PAGE)
    shown = console.post(
        f"{PAGE}/add",
        {
            "url": f"  {URL}  ",
            "description": "access sync",
            "event.user.deleted": "on",
            "event.user.deactivated": "on",
        },
    )
    secret = _shown_secret(shown.text)
    [endpoint] = webhooks.list_endpoints(uow)
    listed = console.get(PAGE)
    detail = console.get(f"{PAGE}/{endpoint.endpoint_id}")

    assert "No endpoints yet" in empty.text
    assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
    assert "cannot be shown again" in shown.text and "Muster-Signature" in shown.text
    assert 'href="/console/settings/webhooks?notice=webhook_secret_closed"' in shown.text
    with uow.reading():
        assert uow.webhooks.endpoint(endpoint.endpoint_id).secret == secret
    assert secret.startswith("whsec_") and len(secret) > 40
    assert (endpoint.url, endpoint.description) == (URL, "access sync")
    assert endpoint.event_types == ("user.deactivated", "user.deleted")  # the catalogue's order
    for page in (listed, detail):
        assert page.status_code == 200 and secret not in page.text and "whsec_" not in page.text
        assert URL in page.text and "user.deactivated, user.deleted" in page.text
    assert "access sync" in listed.text and 'class="badge ok">Enabled' in listed.text
    closed = console.get(f"{PAGE}?notice=webhook_secret_closed")
    assert "hidden for good" in closed.text and 'role="dialog"' not in closed.text


def test_an_endpoint_with_no_type_ticked_gets_all_events(
    console: ConsoleClient, uow: UnitOfWork
) -> None:
    console.post(f"{PAGE}/add", {"url": URL})
    [endpoint] = webhooks.list_endpoints(uow)

    assert endpoint.event_types is None
    assert "All events" in console.get(PAGE).text


def test_an_endpoint_is_added_in_the_chosen_format_and_shows_it(
    console: ConsoleClient, uow: UnitOfWork
) -> None:
    form = console.get(PAGE).text
    console.post(f"{PAGE}/add", {"url": URL, "format": "set"})
    console.post(f"{PAGE}/add", {"url": URL + "/plain"})  # no choice sent: JSON
    tokens, plain = webhooks.list_endpoints(uow)
    listed = console.get(PAGE).text
    detail = console.get(f"{PAGE}/{tokens.endpoint_id}").text

    assert re.search(r'name="format" value="json" checked', form)
    assert 'name="format" value="set"' in form
    assert (tokens.format, plain.format) == ("set", "json")
    assert "Security Event Token (RFC 9967)" in listed and "JSON" in listed
    assert re.search(r'id="endpoint-format">Security Event Token \(RFC 9967\)<', detail)


def test_an_unknown_format_is_refused_beside_the_form_with_the_choice_kept(
    console: ConsoleClient, uow: UnitOfWork
) -> None:
    refused = console.post(f"{PAGE}/add", {"url": URL, "format": "xml"})
    kept = console.post(f"{PAGE}/add", {"url": "ftp://x.example.com", "format": "set"})

    assert refused.status_code == 400 and "format must be one of json, set" in refused.text
    assert kept.status_code == 400 and re.search(r'name="format" value="set" checked', kept.text)
    assert webhooks.list_endpoints(uow) == []


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"url": "ftp://hooks.example.com/x"}, "must start with https://"),
        ({"url": "https://ann:pw@hooks.example.com/x"}, "must not carry a user name"),
        ({"url": "https:///nohost"}, "must name a host"),
        ({"url": URL, "event.user.exploded": "on"}, "unknown event type user.exploded"),
        ({"url": URL, "description": "d" * 201}, "longer than 200 characters"),
    ],
)
def test_a_refused_endpoint_is_explained_beside_the_form_with_its_values_kept(
    console: ConsoleClient, uow: UnitOfWork, fields: dict[str, str], said: str
) -> None:
    form = {"description": "kept text", "event.group.deleted": "on", **fields}

    response = console.post(f"{PAGE}/add", form)

    assert response.status_code == 400
    assert said in response.text and 'id="add-error"' in response.text
    assert f'value="{form["url"]}"' in response.text
    assert f'value="{form["description"]}"' in response.text
    assert re.search(r'name="event\.group\.deleted" value="on" checked', response.text)
    assert not re.search(r'name="event\.user\.created" value="on" checked', response.text)
    assert 'role="dialog"' not in response.text and "whsec_" not in response.text
    assert webhooks.list_endpoints(uow) == []


# -- one endpoint: pause, enable, remove ------------------------------------------------------


def test_pause_and_enable_an_endpoint(console: ConsoleClient, uow: UnitOfWork) -> None:
    endpoint = webhooks.create_endpoint(uow, URL).endpoint
    here = f"{PAGE}/{endpoint.endpoint_id}"

    paused = console.post(f"{here}/pause")
    paused_page = console.get(paused.headers["location"])
    listed = console.get(PAGE)
    enabled = console.post(f"{here}/enable")

    assert (
        paused.status_code == 303 and paused.headers["location"] == f"{here}?notice=webhook_paused"
    )
    assert "Endpoint paused" in paused_page.text and 'id="enable-endpoint"' in paused_page.text
    assert 'class="badge">Paused' in listed.text
    assert enabled.headers["location"] == f"{here}?notice=webhook_enabled"
    assert webhooks.get_endpoint(uow, endpoint.endpoint_id).is_enabled
    assert 'id="pause-endpoint"' in console.get(here).text


def test_removing_an_endpoint_asks_first(console: ConsoleClient, uow: UnitOfWork) -> None:
    endpoint = webhooks.create_endpoint(uow, URL).endpoint
    here = f"{PAGE}/{endpoint.endpoint_id}"

    asked = console.post(f"{here}/remove")
    still = webhooks.get_endpoint(uow, endpoint.endpoint_id)
    removed = console.post(f"{here}/remove", {"confirm": "yes"})

    assert asked.status_code == 200 and "Remove this endpoint?" in asked.text
    assert 'name="confirm" value="yes"' in asked.text and still.url == URL
    assert removed.status_code == 303
    assert removed.headers["location"] == f"{PAGE}?notice=webhook_removed"
    assert webhooks.list_endpoints(uow) == []
    assert console.get(here).status_code == 404
    assert "Endpoint removed" in console.get(removed.headers["location"]).text


# -- the delivery log -------------------------------------------------------------------------


def test_the_delivery_log_is_newest_first_and_filters_by_state(
    console: ConsoleClient, uow: UnitOfWork, uow_factory: UowFactory
) -> None:
    endpoint = webhooks.create_endpoint(uow, URL).endpoint
    for _ in range(4):
        given_user(uow)
    settle_deliveries(uow_factory, ["delivered", "dead", "pending"])  # event 4 stays due
    here = f"{PAGE}/{endpoint.endpoint_id}"

    everything = console.get(here)

    assert _rows(everything.text) == [4, 3, 2, 1]
    assert _rows(console.get(f"{here}?state=delivered").text) == [1]
    assert _rows(console.get(f"{here}?state=dead").text) == [2]
    assert _rows(console.get(f"{here}?state=pending").text) == [4, 3]
    assert 'class="badge bad">503<' in everything.text
    assert "ConnectError: All connection attempts failed" in everything.text
    assert 'id="endpoint-pending">2<' in everything.text
    assert 'id="endpoint-dead">1<' in everything.text
    assert everything.text.count('aria-label="Redeliver event') == 2  # delivered and dead only
    assert 'aria-label="Redeliver event 1"' in everything.text
    assert 'aria-label="Redeliver event 2"' in everything.text
    assert "user.created" in everything.text
    assert 'class="badge state-dead">Dead' in everything.text
    assert "No deliveries in this state" in console.get(f"{here}?state=sending").text
    assert console.get(f"{here}?state=lost").status_code == 400


def test_the_delivery_log_is_paged(
    console: ConsoleClient, uow: UnitOfWork, uow_factory: UowFactory
) -> None:
    endpoint = webhooks.create_endpoint(uow, URL).endpoint
    for _ in range(51):
        given_group(uow)  # groups take no seats
    settle_deliveries(uow_factory, ["dead"] * 51)
    here = f"{PAGE}/{endpoint.endpoint_id}"

    first = console.get(f"{here}?state=dead")
    second = console.get(f"{here}?state=dead&page=2")

    assert _rows(first.text) == list(range(51, 1, -1)) and "Page 1 of 2" in first.text
    assert f'href="{here}?state=dead&amp;page=2"' in first.text
    assert _rows(second.text) == [1]


def test_redeliver_one_then_every_dead_delivery(
    console: ConsoleClient, uow: UnitOfWork, uow_factory: UowFactory
) -> None:
    endpoint = webhooks.create_endpoint(uow, URL).endpoint
    for _ in range(3):
        given_user(uow)
    settle_deliveries(uow_factory, ["delivered", "dead", "dead"])
    here = f"{PAGE}/{endpoint.endpoint_id}"

    one = console.post(f"{here}/deliveries/2/redeliver", {"state": "dead", "page": "1"})
    after_one = {d.event_seq: d for d in webhooks.deliveries_page(uow, endpoint.endpoint_id).items}
    again = console.post(f"{here}/deliveries/1/redeliver", {"state": "bogus", "page": "3"})
    every = console.post(f"{here}/redeliver-dead", {"state": "all"})
    none_left = console.post(f"{here}/redeliver-dead")
    states = [d.state for d in webhooks.deliveries_page(uow, endpoint.endpoint_id).items]

    assert one.headers["location"] == f"{here}?state=dead&notice=webhook_redelivered"
    assert (after_one[2].state, after_one[2].attempts) == ("pending", 0)
    assert after_one[3].state == "dead"
    assert again.headers["location"] == f"{here}?page=3&notice=webhook_redelivered"
    assert every.headers["location"] == f"{here}?notice=webhook_dead_redelivered"
    assert none_left.headers["location"] == f"{here}?notice=webhook_no_dead"
    assert states == ["pending", "pending", "pending"]
    assert "queued to be sent again" in console.get(one.headers["location"]).text
    assert console.post(f"{here}/deliveries/99/redeliver").status_code == 404


def test_a_dead_delivery_redelivered_from_the_console_reaches_the_receiver(
    console: ConsoleClient,
    uow: UnitOfWork,
    uow_factory: UowFactory,
    settings: Settings,
    receiver: Receiver,
) -> None:
    created = webhooks.create_endpoint(uow, receiver.url("hook"))
    receiver.secrets["hook"] = created.secret
    user = given_user(uow)
    settle_deliveries(uow_factory, ["dead"])
    here = f"{PAGE}/{created.endpoint.endpoint_id}"
    assert 'id="redeliver-dead"' in console.get(here).text

    console.post(f"{here}/redeliver-dead")
    with running_worker(uow_factory, fast_settings(settings.database_url)):
        receiver.wait_for(lambda r: len(r.events_of("hook")) == 1)

    [event] = receiver.events_of("hook")
    assert (event["type"], event["resource"]["id"]) == ("user.created", user.user_id)
    assert receiver.refused == []
    page = console.get(f"{here}?state=delivered")
    assert _rows(page.text) == [1] and 'id="redeliver-dead"' not in page.text


# -- CSRF and tenants -------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "forged"])
def test_webhook_forms_without_the_sessions_csrf_token_are_refused(
    console: ConsoleClient, uow: UnitOfWork, token: str | None
) -> None:
    endpoint = webhooks.create_endpoint(uow, URL).endpoint
    here = f"{PAGE}/{endpoint.endpoint_id}"
    form = {} if token is None else {"csrf_token": token}

    answers = [
        console.post(f"{PAGE}/add", {**form, "url": "https://other.example.com/"}, csrf=False),
        console.post(f"{here}/pause", form, csrf=False),
        console.post(f"{here}/remove", {**form, "confirm": "yes"}, csrf=False),
        console.post(f"{here}/redeliver-dead", form, csrf=False),
    ]

    assert [a.status_code for a in answers] == [403] * 4
    assert [e.url for e in webhooks.list_endpoints(uow)] == [URL]
    assert webhooks.get_endpoint(uow, endpoint.endpoint_id).is_enabled


def test_webhook_pages_carry_the_sessions_csrf_token_in_every_form(
    console: ConsoleClient, uow: UnitOfWork, uow_factory: UowFactory
) -> None:
    endpoint = webhooks.create_endpoint(uow, URL).endpoint
    given_user(uow)
    settle_deliveries(uow_factory, ["dead"])

    for path in (PAGE, f"{PAGE}/{endpoint.endpoint_id}"):
        html = console.get(path).text
        forms = html.count('method="post"')
        assert forms >= 2
        assert html.count(f'name="csrf_token" value="{console.csrf}"') == forms


def test_another_tenants_endpoint_answers_404(
    console: ConsoleClient, uow_factory: UowFactory
) -> None:
    other = given_tenant(uow_factory())
    theirs_uow = uow_factory(other.tenant_id)
    theirs = webhooks.create_endpoint(theirs_uow, "https://theirs.example.com/hook").endpoint
    given_user(theirs_uow)
    settle_deliveries(uow_factory, ["dead"])
    there = f"{PAGE}/{theirs.endpoint_id}"

    answers = [
        console.get(there),
        console.get(f"{there}?state=dead"),
        console.post(f"{there}/pause"),
        console.post(f"{there}/enable"),
        console.post(f"{there}/remove"),
        console.post(f"{there}/remove", {"confirm": "yes"}),
        console.post(f"{there}/deliveries/1/redeliver"),
        console.post(f"{there}/redeliver-dead"),
    ]

    assert [a.status_code for a in answers] == [404] * len(answers)
    assert "theirs.example.com" not in console.get(PAGE).text
    kept = webhooks.get_endpoint(theirs_uow, theirs.endpoint_id)
    assert kept.is_enabled and kept.dead == 1


def test_webhook_pages_need_a_session(client: TestClient) -> None:
    page = client.get(PAGE, follow_redirects=False)
    post = client.post(f"{PAGE}/add", data={"url": URL}, follow_redirects=False)

    assert page.status_code == 303 and page.headers["location"].startswith("/console/sign-in")
    assert post.status_code == 401
