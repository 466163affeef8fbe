"""A person signs in through the fake Okta in headless Chromium: admitted, and refused.

The fake Okta is a Playwright route on Okta's SSO URL: it reads the AuthnRequest Muster sent,
signs a Response to it with the tests' key, and posts it to the ACS URL from an auto-submitting
form, the way Okta's own page does.
"""

from __future__ import annotations

import base64
import html
import re
import zlib
from collections.abc import Callable
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Page, Route, expect

from muster.db.unit_of_work import UnitOfWork
from muster.saml.service_provider import service_provider_for
from muster.scim.records import TenantInfo
from muster.services import identity_providers
from tests import saml_idp as idp
from tests.browser.conftest import keep_screenshot
from tests.group_factories import given_group

pytestmark = [pytest.mark.browser, pytest.mark.slow]
UowFactory = Callable[..., UnitOfWork]


def fake_okta(page: Page, live_url: str, slug: str, *, groups: list[str]) -> None:
    """Answer every AuthnRequest sent to Okta's SSO URL with a signed Response for Ann Lee."""
    sp = service_provider_for(live_url, slug)

    def answer(route: Route) -> None:
        encoded = parse_qs(urlparse(route.request.url).query)["SAMLRequest"][0]
        request_xml = zlib.decompress(base64.b64decode(encoded), -15).decode()
        found = re.search(r' ID="([^"]+)"', request_xml)
        assert found is not None
        spec = idp.ResponseSpec(
            acs_url=sp.acs_url, audience=sp.entity_id, in_response_to=found.group(1), groups=groups
        )
        response = idp.encode(idp.sign(idp.response_xml(spec)))
        route.fulfill(
            status=200,
            content_type="text/html",
            body=(
                f'<form id="f" method="post" action="{html.escape(sp.acs_url)}">'
                f'<input type="hidden" name="SAMLResponse" value="{response}"></form>'
                "<script>document.getElementById('f').submit()</script>"
            ),
        )

    page.route(re.compile(r"^https://acme\.okta\.com/.*"), answer)


def test_sign_in_with_okta_lands_on_the_signed_in_page(
    page: Page, live_url: str, uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    identity_providers.save_saml_metadata(uow_factory(tenant.tenant_id), idp.okta_metadata())
    fake_okta(page, live_url, tenant.slug, groups=[])

    page.goto(f"/sso/{tenant.slug}/")
    page.get_by_role("link", name="Sign in with Okta").click()

    expect(page.locator("#signed-in-as")).to_contain_text("Signed in as Ann Lee")
    expect(page).to_have_url(f"{live_url}/sso/{tenant.slug}/")
    keep_screenshot(page, "sso-signed-in")


def test_a_person_outside_the_access_groups_sees_what_the_admin_should_do(
    page: Page, live_url: str, uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    uow = uow_factory(tenant.tenant_id)
    identity_providers.save_saml_metadata(uow, idp.okta_metadata())
    given_group(uow, displayName="Engineering")
    identity_providers.add_access_group(uow, "Engineering")
    fake_okta(page, live_url, tenant.slug, groups=["Sales"])

    page.goto(f"/sso/{tenant.slug}/")
    page.get_by_role("link", name="Sign in with Okta").click()

    expect(page.locator("#refusal-code")).to_have_text("NOT_IN_ACCESS_GROUPS")
    expect(page.locator("#refusal-action")).to_contain_text("lock icon")
    keep_screenshot(page, "sso-not-in-access-groups")
