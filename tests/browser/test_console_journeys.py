"""Admin journeys through the console in headless Chromium, as the Okta guide walks them."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from muster.db.unit_of_work import UnitOfWork
from muster.scim.records import TenantInfo
from muster.services import users
from tests.browser.conftest import keep_screenshot
from tests.console_factories import PASSWORD, given_admin
from tests.factories import OKTA_HEADERS, build_user, given_user, patch_op
from tests.group_factories import given_group
from tests.webhook_fixtures import settle_deliveries

pytestmark = [pytest.mark.browser, pytest.mark.slow]
UowFactory = Callable[..., UnitOfWork]


def okta_post(url: str, token: str, body: dict[str, object]) -> int:
    """POST as Okta's provisioning client does; return the status."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={**OKTA_HEADERS, "Authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def sign_in(page: Page, email: str) -> None:
    page.goto("/console/")
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next="))
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Identity Providers")).to_be_visible()


def test_turn_scim_on_generate_a_token_and_provision_like_okta(
    page: Page, live_url: str, uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    sign_in(page, given_admin(uow_factory(), tenant.slug))

    # Settings → Identity Providers → SCIM Integration → Turn On → Settings → Generate Token
    page.get_by_role("button", name="Turn On").click()
    expect(page.get_by_role("status")).to_contain_text("SCIM provisioning is on")
    page.locator("#scim").get_by_role("link", name="Settings").click()
    page.get_by_role("button", name="Generate Token").click()
    dialog = page.get_by_role("dialog", name="Your SCIM token")
    expect(dialog).to_contain_text("cannot be shown again")
    keep_screenshot(page, "identity-providers-token-dialog")
    token = page.locator("#token-value").input_value()
    dialog.get_by_role("button", name="Copy Token").click()
    expect(dialog.get_by_role("status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == token

    dialog.get_by_role("link", name="Close").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert token not in page.content()
    expect(page.locator("#token-prefix")).to_contain_text("mst_…")

    # Okta provisions with the copied token: two people, and one refused for a '#' in a name.
    for email in ("ann.lee@example.com", "bo.kim@example.com"):
        assert okta_post(f"{live_url}/scim/v2/Users", token, build_user(email=email)) == 201
    refused = build_user(name={"givenName": "Jo#", "familyName": "Ray"})
    assert okta_post(f"{live_url}/scim/v2/Users", token, refused) == 400

    page.get_by_role("link", name="Users").click()
    expect(page.get_by_text("2 of 25 seats used")).to_be_visible()
    expect(page.get_by_role("cell", name="ann.lee@example.com")).to_be_visible()
    keep_screenshot(page, "users")

    page.get_by_role("link", name="Provisioning log").click()
    page.get_by_role("link", name="Failed only").click()
    failed = page.locator(".log-entry.failed").first
    expect(failed).to_contain_text("name.givenName contains '#'")
    expect(failed.locator(".hint")).to_contain_text("Correct the name in Okta")
    keep_screenshot(page, "provisioning-log")


def test_set_an_access_group_with_the_lock_icon(
    page: Page, uow_factory: UowFactory, tenant: TenantInfo, uow: UnitOfWork
) -> None:
    given_group(uow, displayName="Engineering")
    given_group(uow, displayName="Sales")
    sign_in(page, given_admin(uow_factory(), tenant.slug))

    page.get_by_role("link", name="Access groups").click()
    expect(page.get_by_text("everyone in this account may sign in")).to_be_visible()
    page.get_by_label("Group name").fill("Engineering")
    page.get_by_role("button", name="Add access group").click()

    expect(page.get_by_role("status")).to_contain_text("Access group added")
    expect(page.locator(".chip")).to_contain_text("Engineering")
    page.get_by_role("link", name="Groups").click()
    row = page.get_by_role("row").filter(has_text="Engineering")
    expect(row.get_by_role("img", name="Access group")).to_be_visible()
    keep_screenshot(page, "groups")
    page.get_by_role("link", name="Identity Providers").click()
    expect(page.get_by_role("link", name="Access groups")).to_contain_text("1 access group")
    keep_screenshot(page, "identity-providers")


def test_create_a_local_user(page: Page, uow_factory: UowFactory, tenant: TenantInfo) -> None:
    sign_in(page, given_admin(uow_factory(), tenant.slug))

    page.get_by_role("link", name="Users").click()
    page.get_by_role("link", name="Create local user").click()
    page.get_by_label("Email address").fill("lou.local@example.com")
    page.get_by_label("First name").fill("Lou")
    page.get_by_label("Last name").fill("Local")
    page.get_by_role("button", name="Create user").click()

    expect(page.get_by_role("status")).to_contain_text("Local user created")
    expect(page.get_by_role("heading", name="Lou Local")).to_be_visible()
    expect(page.get_by_text("Local (made in Muster)")).to_be_visible()


def events_get(url: str, key: str) -> tuple[int, dict[str, object]]:
    """GET the events API with the key, as the platform's own consumer would."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), json.loads(error.read())


def test_generate_an_events_key_read_events_then_revoke_it(
    page: Page, live_url: str, uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    sign_in(page, given_admin(uow_factory(), tenant.slug))

    page.get_by_role("link", name="Events API").click()
    card = page.locator("#events-api")
    expect(card.get_by_role("heading", name="Platform events API")).to_be_visible()
    expect(page.locator("#events-key-prefix")).to_have_text("none yet")
    page.get_by_role("button", name="Generate Key").click()
    dialog = page.get_by_role("dialog", name="Your events API key")
    expect(dialog).to_contain_text("cannot be shown again")
    key = page.locator("#events-key-value").input_value()
    dialog.get_by_role("button", name="Copy Key").click()
    assert page.evaluate("navigator.clipboard.readText()") == key
    dialog.get_by_role("link", name="Close").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert key not in page.content()

    status, body = events_get(f"{live_url}/api/v1/events", key)
    assert status == 200 and body["nextCursor"] == "1"
    page.reload()
    expect(page.locator("#events-key-prefix")).to_contain_text("mev_…")
    expect(page.locator("#events-key-last-used")).not_to_have_text("never")
    keep_screenshot(page, "events-api")

    page.get_by_role("button", name="Revoke Key").click()
    expect(page.get_by_role("status")).to_contain_text("events API key is revoked")
    assert events_get(f"{live_url}/api/v1/events", key)[0] == 401


def test_add_a_webhook_endpoint_copy_its_secret_then_pause_it(
    page: Page, uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    sign_in(page, given_admin(uow_factory(), tenant.slug))
    url = "https://hooks.example.com/muster"

    page.get_by_role("link", name="Webhooks").click()
    expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()
    page.get_by_label("Endpoint URL").fill(url)
    page.get_by_label("Description").fill("Access sync for the HR system")
    page.get_by_label("user.created").check()
    page.get_by_label("user.deactivated").check()
    page.get_by_role("button", name="Add endpoint").click()
    dialog = page.get_by_role("dialog", name="Your endpoint's signing secret")
    expect(dialog).to_contain_text("cannot be shown again")
    expect(dialog).to_contain_text("Muster-Signature")
    secret = page.locator("#webhook-secret-value").input_value()
    dialog.get_by_role("button", name="Copy Secret").click()
    expect(dialog.get_by_role("status")).to_have_text("Copied to the clipboard.")
    assert secret.startswith("whsec_")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    dialog.get_by_role("link", name="Close").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.get_by_role("status")).to_contain_text("signing secret is hidden for good")
    assert secret not in page.content()
    row = page.locator("#endpoints tbody tr", has_text=url)
    expect(row).to_contain_text("user.created, user.deactivated")
    expect(row).to_contain_text("Enabled")

    # Some traffic, as the worker would leave it: delivered, dead, and waiting to be retried.
    uow = uow_factory(tenant.tenant_id)
    people = [given_user(uow) for _ in range(4)]
    for person in people[:2]:
        deactivate = patch_op({"op": "replace", "path": "active", "value": False})
        users.patch_user(uow, person.user_id, deactivate, if_match=None)
    settle_deliveries(uow_factory, ["delivered", "delivered", "dead", "delivered"])
    settle_deliveries(uow_factory, ["pending"])  # the deactivations waited behind them

    row.get_by_role("link", name=url).click()
    expect(page.get_by_role("heading", name="Delivery log")).to_be_visible()
    log = page.locator("#delivery-log tbody tr")
    expect(log).to_have_count(6)
    expect(log.first).to_contain_text("user.deactivated")
    expect(page.get_by_role("button", name="Redeliver all dead (1)")).to_be_visible()
    keep_screenshot(page, "webhook-endpoint", full_page=True)

    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("status")).to_contain_text("Endpoint paused")
    expect(page.locator("#endpoint-status")).to_have_text("Paused")
    expect(page.get_by_role("button", name="Enable")).to_be_visible()
