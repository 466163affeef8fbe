"""SAML sign-in end to end: the fake Okta posts to the real ACS endpoint, on both databases."""

from __future__ import annotations

import base64
import re
import zlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from muster.app import create_app
from muster.config import Settings
from muster.db.tables import SignInLogRow, SsoSessionRow, UserRow
from muster.db.unit_of_work import UnitOfWork
from muster.saml.refusals import Refusal
from muster.saml.service_provider import ServiceProvider, service_provider_for
from muster.scim.records import TenantInfo
from muster.services import groups, identity_providers, sign_in_log, tenants, users
from muster.services.clock import utcnow
from tests import saml_idp as idp
from tests.console_factories import ConsoleClient, given_admin
from tests.factories import given_user, patch_op
from tests.group_factories import given_group
from tests.saml_cases import REFUSALS, Case, signed, spec_for

pytestmark = pytest.mark.integration
UowFactory = Callable[..., UnitOfWork]
BASE = "http://muster.test"


@pytest.fixture
def sp(uow: UnitOfWork, tenant: TenantInfo) -> ServiceProvider:
    """The tenant's SP, with the fake Okta's metadata pasted as the console stores it."""
    identity_providers.save_saml_metadata(uow, idp.okta_metadata())
    return service_provider_for(
        BASE, tenant.slug, idp_metadata_xml=idp.okta_metadata(), idp_entity_id=idp.IDP_ENTITY_ID
    )


def post_acs(client: TestClient, sp: ServiceProvider, encoded: str) -> Any:
    return client.post(
        urlparse(sp.acs_url).path, data={"SAMLResponse": encoded}, follow_redirects=False
    )


def home(client: TestClient, tenant: TenantInfo) -> Any:
    return client.get(f"/sso/{tenant.slug}/")


def count(engine: Engine, table: Any, **where: Any) -> int:
    stmt = select(func.count()).select_from(table)
    for column, value in where.items():
        stmt = stmt.where(getattr(table.c, column) == value)
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def log_codes(engine: Engine) -> list[str | None]:
    log = SignInLogRow.__table__
    with engine.connect() as conn:
        return [row.code for row in conn.execute(select(log).order_by(log.c.id))]


def request_id_of(location: str) -> str:
    """The ID of the AuthnRequest inside an HTTP-Redirect URL (deflated, base64)."""
    encoded = parse_qs(urlparse(location).query)["SAMLRequest"][0]
    xml = zlib.decompress(base64.b64decode(encoded), -15).decode()
    found = re.search(r' ID="([^"]+)"', xml)
    assert found is not None
    return found.group(1)


# -- admitted ---------------------------------------------------------------------------------


def test_idp_initiated_sign_in_creates_the_person_just_in_time(
    client: TestClient, sp: ServiceProvider, tenant: TenantInfo, uow: UnitOfWork, engine: Engine
) -> None:
    response = post_acs(client, sp, idp.encode(signed(sp, email="New.Person@Example.com")))

    assert response.status_code == 303
    assert response.headers["location"] == f"/sso/{tenant.slug}/"
    cookie = response.headers["set-cookie"]
    assert "muster_sso=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = home(client, tenant)
    assert "Signed in as <strong>Ann Lee</strong>" in page.text
    assert "New.Person@Example.com" in page.text
    total, found = users.search_users(uow, source="sso"), None
    assert total.total == 1
    found = total.items[0]
    assert found.document["name"] == {"givenName": "Ann", "familyName": "Lee"}
    assert tenants.get_tenant(UnitOfWork(engine), tenant.slug).seats_used == 1
    assert log_codes(engine) == [None]


def test_sp_initiated_sign_in_answers_our_request_once(
    client: TestClient, sp: ServiceProvider, tenant: TenantInfo, engine: Engine
) -> None:
    start = client.get(f"/sso/{tenant.slug}/login", follow_redirects=False)
    assert start.status_code == 302
    assert start.headers["location"].startswith(idp.IDP_SSO_URL + "?SAMLRequest=")
    request_id = request_id_of(start.headers["location"])

    admitted = post_acs(client, sp, idp.encode(signed(sp, in_response_to=request_id)))
    again = post_acs(client, sp, idp.encode(signed(sp, in_response_to=request_id)))

    assert admitted.status_code == 303
    assert again.status_code == 403 and Refusal.UNKNOWN_REQUEST in again.text
    assert count(engine, UserRow.__table__) == 1


def test_a_response_to_a_request_we_never_issued_is_refused(
    client: TestClient, sp: ServiceProvider, engine: Engine
) -> None:
    response = post_acs(client, sp, idp.encode(signed(sp, in_response_to="id-not-ours")))

    assert response.status_code == 403 and Refusal.UNKNOWN_REQUEST in response.text
    assert count(engine, UserRow.__table__) == 0


def test_a_known_user_is_matched_ignoring_case_and_gets_the_assertions_names(
    client: TestClient, sp: ServiceProvider, tenant: TenantInfo, uow: UnitOfWork, engine: Engine
) -> None:
    known = given_user(uow, email="Ann.Lee@Example.com")

    response = post_acs(
        client, sp, idp.encode(signed(sp, email="ann.lee@example.com", family_name="Lee-Smith"))
    )

    assert response.status_code == 303
    refreshed = users.get_user(uow, known.user_id)
    assert refreshed.document["name"]["familyName"] == "Lee-Smith"
    assert refreshed.document["name"]["givenName"] == "Ann"
    assert refreshed.source == "idp"
    assert count(engine, UserRow.__table__) == 1
    assert "Ann.Lee@Example.com" in home(client, tenant).text


def test_names_that_break_the_name_rules_are_not_stored_but_the_person_gets_in(
    client: TestClient, sp: ServiceProvider, uow: UnitOfWork
) -> None:
    known = given_user(uow, email="ann.lee@example.com")
    before = known.document["name"]

    response = post_acs(client, sp, idp.encode(signed(sp, given_name="<script>")))

    assert response.status_code == 303
    assert users.get_user(uow, known.user_id).document["name"] == before


def test_a_replayed_assertion_is_refused(
    client: TestClient, sp: ServiceProvider, engine: Engine
) -> None:
    document = idp.encode(signed(sp))

    first = post_acs(client, sp, document)
    second = post_acs(client, sp, document)

    assert first.status_code == 303
    assert second.status_code == 403 and Refusal.REPLAYED in second.text
    assert log_codes(engine) == [None, Refusal.REPLAYED]


def test_an_assertion_for_another_tenant_is_refused(
    client: TestClient, sp: ServiceProvider, uow_factory: UowFactory, engine: Engine
) -> None:
    other = tenants.create_tenant(uow_factory(), "other-co", plan="enterprise", seats=5)
    identity_providers.save_saml_metadata(uow_factory(other.tenant_id), idp.okta_metadata())
    other_sp = service_provider_for(
        BASE, other.slug, idp_metadata_xml=idp.okta_metadata(), idp_entity_id=idp.IDP_ENTITY_ID
    )

    # Even addressed to the other tenant's ACS, the audience still names the first tenant.
    document = signed(sp, recipient=other_sp.acs_url, destination=other_sp.acs_url)

    response = post_acs(client, other_sp, idp.encode(document))

    assert response.status_code == 403 and Refusal.WRONG_AUDIENCE in response.text
    assert count(engine, UserRow.__table__) == 0


# -- refused: the response ----------------------------------------------------------------------


@pytest.mark.parametrize("case", REFUSALS, ids=lambda case: case.name)
def test_each_bad_response_is_refused_with_nothing_created(
    client: TestClient, sp: ServiceProvider, engine: Engine, case: Case
) -> None:
    response = post_acs(client, sp, case.build(sp))

    assert 400 <= response.status_code < 500
    assert case.code in response.text
    assert "set-cookie" not in response.headers
    assert count(engine, UserRow.__table__) == 0
    assert count(engine, SsoSessionRow.__table__) == 0
    assert log_codes(engine) == [case.code]


def test_a_body_over_the_cap_is_refused_before_it_is_read(
    client: TestClient, sp: ServiceProvider, engine: Engine
) -> None:
    response = post_acs(client, sp, "A" * (3 * 256 * 1024))

    assert response.status_code == 413 and Refusal.RESPONSE_TOO_LARGE in response.text
    assert log_codes(engine) == [Refusal.RESPONSE_TOO_LARGE]


def test_a_tenant_without_saml_settings_refuses_sign_in(
    client: TestClient, tenant: TenantInfo
) -> None:
    response = client.get(f"/sso/{tenant.slug}/login", follow_redirects=False)

    assert response.status_code == 404 and Refusal.SAML_NOT_CONFIGURED in response.text


# -- refused: the decision ----------------------------------------------------------------------


def test_no_free_seat_refuses_a_new_person_with_license_limit(
    client: TestClient,
    sp: ServiceProvider,
    tenant: TenantInfo,
    uow: UnitOfWork,
    uow_factory: UowFactory,
    engine: Engine,
) -> None:
    given_user(uow)
    tenants.set_tenant(uow_factory(), tenant.slug, seats=1)

    response = post_acs(client, sp, idp.encode(signed(sp)))

    assert response.status_code == 403 and Refusal.LICENSE_LIMIT in response.text
    assert "No seat is free" in response.text
    assert count(engine, UserRow.__table__) == 1


def test_a_deactivated_user_is_refused(
    client: TestClient, sp: ServiceProvider, uow: UnitOfWork
) -> None:
    known = given_user(uow, email="ann.lee@example.com", active=False)

    response = post_acs(client, sp, idp.encode(signed(sp, family_name="Changed")))

    assert response.status_code == 403 and Refusal.USER_DEACTIVATED in response.text
    assert users.get_user(uow, known.user_id).version == known.version  # nothing changed


def test_access_groups_refuse_a_person_in_none_of_them(
    client: TestClient, sp: ServiceProvider, uow: UnitOfWork, engine: Engine
) -> None:
    given_group(uow, displayName="Engineering")
    identity_providers.add_access_group(uow, "Engineering")

    response = post_acs(client, sp, idp.encode(signed(sp, groups=["Sales"])))

    assert response.status_code == 403 and Refusal.NOT_IN_ACCESS_GROUPS in response.text
    assert "Identity Providers" in response.text and "lock icon" in response.text
    assert "clear the list" in response.text
    assert count(engine, UserRow.__table__) == 0


def test_access_groups_admit_by_the_assertions_group_names_ignoring_case(
    client: TestClient, sp: ServiceProvider, uow: UnitOfWork
) -> None:
    given_group(uow, displayName="Engineering")
    identity_providers.add_access_group(uow, "Engineering")

    response = post_acs(client, sp, idp.encode(signed(sp, groups=["Sales", "engineering"])))

    assert response.status_code == 303


def test_access_groups_admit_by_stored_membership(
    client: TestClient, sp: ServiceProvider, uow: UnitOfWork
) -> None:
    given_user(uow, email="ann.lee@example.com")
    given_group(uow, displayName="Engineering")
    groups.add_manual_member(uow, "Engineering", "ann.lee@example.com")
    identity_providers.add_access_group(uow, "Engineering")

    response = post_acs(client, sp, idp.encode(signed(sp, groups=[])))

    assert response.status_code == 303


# -- sessions -----------------------------------------------------------------------------------


def test_deactivation_through_scim_ends_the_session_at_once(
    okta: TestClient, sp: ServiceProvider, tenant: TenantInfo, uow: UnitOfWork, engine: Engine
) -> None:
    known = given_user(uow, email="ann.lee@example.com")
    assert post_acs(okta, sp, idp.encode(signed(sp))).status_code == 303
    assert "Signed in as" in home(okta, tenant).text

    patched = okta.patch(
        f"/scim/v2/Users/{known.user_id}",
        json=patch_op({"op": "replace", "value": {"active": False}}),
    )

    assert patched.status_code == 200
    page = home(okta, tenant)
    assert "Signed in as" not in page.text and "Sign in with Okta" in page.text
    assert count(engine, SsoSessionRow.__table__) == 0


def test_deleting_the_user_in_the_console_ends_the_session(
    client: TestClient, sp: ServiceProvider, tenant: TenantInfo, uow: UnitOfWork
) -> None:
    assert post_acs(client, sp, idp.encode(signed(sp))).status_code == 303
    person = users.search_users(uow, source="sso").items[0]

    users.delete_user(uow, person.user_id)

    assert "Sign in with Okta" in home(client, tenant).text


def test_leaving_every_access_group_ends_the_session(
    client: TestClient, sp: ServiceProvider, tenant: TenantInfo, uow: UnitOfWork
) -> None:
    given_user(uow, email="ann.lee@example.com")
    engineering = given_group(uow, displayName="Engineering")
    groups.add_manual_member(uow, "Engineering", "ann.lee@example.com")
    identity_providers.add_access_group(uow, "Engineering")
    assert post_acs(client, sp, idp.encode(signed(sp))).status_code == 303
    assert "Signed in as" in home(client, tenant).text

    groups.remove_manual_member(uow, "Engineering", "ann.lee@example.com")

    assert "Sign in with Okta" in home(client, tenant).text
    assert engineering.group_id


def test_sign_out_ends_the_session(
    client: TestClient, sp: ServiceProvider, tenant: TenantInfo, engine: Engine
) -> None:
    assert post_acs(client, sp, idp.encode(signed(sp))).status_code == 303

    response = client.post(f"/sso/{tenant.slug}/sign-out")

    assert response.status_code == 200
    assert count(engine, SsoSessionRow.__table__) == 0
    assert "Sign in with Okta" in home(client, tenant).text


def test_a_forged_session_cookie_opens_nothing(client: TestClient, tenant: TenantInfo) -> None:
    client.cookies.set("muster_sso", "forged-secret", path=f"/sso/{tenant.slug}")

    assert "Sign in with Okta" in home(client, tenant).text


# -- metadata and the console -------------------------------------------------------------------


def test_sp_metadata_is_served_before_any_idp_is_configured(
    client: TestClient, tenant: TenantInfo
) -> None:
    response = client.get(f"/sso/{tenant.slug}/metadata")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/samlmetadata+xml")
    assert f'entityID="{BASE}/sso/{tenant.slug}/metadata"' in response.text
    assert f'Location="{BASE}/sso/{tenant.slug}/acs"' in response.text


def test_an_unknown_tenant_has_no_sso_pages(client: TestClient) -> None:
    assert client.get("/sso/no-such-tenant/metadata").status_code == 404


def test_the_console_shows_the_sign_in_log(
    client: TestClient, sp: ServiceProvider, tenant: TenantInfo, uow_factory: UowFactory
) -> None:
    post_acs(client, sp, idp.encode(signed(sp, email="first@example.com")))
    post_acs(client, sp, idp.encode(signed(sp, audience=None)))
    console = ConsoleClient(client)
    assert console.sign_in(given_admin(uow_factory(), tenant.slug)).status_code == 303

    page = console.get("/console/sign-in-log")
    refused = console.get("/console/sign-in-log?refused=1")

    assert page.status_code == 200
    assert "first@example.com" in page.text and Refusal.WRONG_AUDIENCE in page.text
    assert "first@example.com" not in refused.text and Refusal.WRONG_AUDIENCE in refused.text


def test_attribute_names_set_in_the_console_are_read_at_sign_in(
    client: TestClient, sp: ServiceProvider, tenant: TenantInfo, uow_factory: UowFactory
) -> None:
    console = ConsoleClient(client)
    assert console.sign_in(given_admin(uow_factory(), tenant.slug)).status_code == 303
    saml_page = "/console/settings/identity-providers/saml"

    bad = console.post(f"{saml_page}/attributes", {"given_name": "first name!"})
    saved = console.post(f"{saml_page}/attributes", {"given_name": "firstName", "groups": ""})
    xml = idp.response_xml(spec_for(sp, given_name="Anna")).replace(
        'Name="given_name"', 'Name="firstName"'
    )
    response = post_acs(client, sp, idp.encode(idp.sign(xml)))

    assert bad.status_code == 400 and "attribute name" in bad.text
    assert saved.status_code == 303
    assert 'value="firstName"' in console.get(saml_page).text
    assert response.status_code == 303
    assert "Signed in as <strong>Anna Lee</strong>" in home(client, tenant).text


def test_comment_injection_in_the_email_does_not_reach_another_user(
    client: TestClient, sp: ServiceProvider, tenant: TenantInfo, uow: UnitOfWork, engine: Engine
) -> None:
    given_user(uow, email="eve@evil.com")
    xml = idp.response_xml(spec_for(sp, email="eve@evil.com.example.com"))
    xml = xml.replace("eve@evil.com.example.com", "eve@evil.com<!---->.example.com")

    response = post_acs(client, sp, idp.encode(idp.sign(xml)))

    assert response.status_code == 303
    assert "eve@evil.com.example.com" in home(client, tenant).text
    assert count(engine, UserRow.__table__) == 2  # a new person, not eve@evil.com


def test_the_replay_check_holds_across_two_processes(
    settings: Settings, engine: Engine, sp: ServiceProvider
) -> None:
    # Two apps, each with its own engine and connections, like two instances behind a balancer.
    document = idp.encode(signed(sp))
    with (
        TestClient(create_app(settings, engine=engine), base_url=BASE) as first,
        TestClient(create_app(settings), base_url=BASE) as second,
    ):
        admitted = post_acs(first, sp, document)
        replayed = post_acs(second, sp, document)

    assert admitted.status_code == 303
    assert replayed.status_code == 403 and Refusal.REPLAYED in replayed.text


def test_the_sign_in_log_keeps_its_newest_entries_within_the_retention(
    uow: UnitOfWork, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sign_in_log, "MAX_ENTRIES", 3)
    monkeypatch.setattr(sign_in_log, "PRUNE_EVERY", 1)
    now = utcnow()
    sign_in_log.record_attempt(
        uow,
        at=now - timedelta(days=40),
        email="old@example.com",
        code="EXPIRED",
        detail=None,
        flow="idp",
    )
    for number in range(5):
        sign_in_log.record_attempt(
            uow, at=now, email=f"p{number}@example.com", code=None, detail=None, flow="sp"
        )

    emails = [a.email for a in sign_in_log.attempts_page(uow).items]
    assert emails == ["p4@example.com", "p3@example.com", "p2@example.com"]


def test_during_a_certificate_rotation_either_certificate_signs_people_in(
    client: TestClient, uow: UnitOfWork, tenant: TenantInfo
) -> None:
    rotating = idp.okta_metadata(idp.okta_key(), idp.second_okta_key())
    identity_providers.save_saml_metadata(uow, rotating)
    sp = service_provider_for(
        BASE, tenant.slug, idp_metadata_xml=rotating, idp_entity_id=idp.IDP_ENTITY_ID
    )
    xml = idp.response_xml(spec_for(sp))

    old = post_acs(client, sp, idp.encode(idp.sign(xml, idp.okta_key())))
    new = post_acs(
        client, sp, idp.encode(idp.sign(xml.replace('ID="id', 'ID="idnew'), idp.second_okta_key()))
    )

    assert old.status_code == 303 and new.status_code == 303


def test_okta_session_limit_ends_the_session_early(
    client: TestClient, sp: ServiceProvider, engine: Engine
) -> None:
    response = post_acs(
        client, sp, idp.encode(signed(sp, session_not_on_or_after=timedelta(hours=1)))
    )

    assert response.status_code == 303
    with engine.connect() as conn:
        expires_at = conn.execute(select(SsoSessionRow.__table__.c.expires_at)).scalar_one()
    assert expires_at <= utcnow() + timedelta(hours=1)
