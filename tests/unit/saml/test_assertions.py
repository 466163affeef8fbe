"""validate_response against responses signed by the tests' fake Okta: admitted and refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from muster.saml.assertions import AttributeNames, validate_response
from muster.saml.refusals import Refusal, SamlRefusal
from muster.saml.service_provider import (
    ServiceProvider,
    authn_request,
    metadata_xml,
    service_provider_for,
)
from tests import saml_idp as idp
from tests.saml_cases import REFUSALS, Case, assertion_signed, signed, spec_for

pytestmark = pytest.mark.unit


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@pytest.fixture
def sp() -> ServiceProvider:
    return service_provider_for(
        "https://muster.example",
        "acme",
        idp_metadata_xml=idp.okta_metadata(),
        idp_entity_id=idp.IDP_ENTITY_ID,
    )


def test_okta_default_response_and_assertion_signed_is_admitted(sp: ServiceProvider) -> None:
    document = signed(sp, groups=["Engineering", "Ops"], in_response_to="id-req-1")

    identity = validate_response(idp.encode(document), sp, now=_now())

    assert identity.email == "ann.lee@example.com"
    assert (identity.given_name, identity.family_name) == ("Ann", "Lee")
    assert identity.groups == ("Engineering", "Ops")
    assert identity.in_response_to == "id-req-1"
    assert identity.expires_at > _now() + timedelta(minutes=5)


@pytest.mark.parametrize("which", ["assertion", "response"])
def test_a_signature_over_only_the_assertion_or_only_the_response_is_enough(
    sp: ServiceProvider, which: str
) -> None:
    xml = idp.response_xml(spec_for(sp))
    document = idp.sign(xml, assertion=which == "assertion", response=which == "response")

    assert validate_response(idp.encode(document), sp, now=_now()).email == "ann.lee@example.com"


def test_either_certificate_works_during_a_rotation() -> None:
    rotating = service_provider_for(
        "https://muster.example",
        "acme",
        idp_metadata_xml=idp.okta_metadata(idp.okta_key(), idp.second_okta_key()),
        idp_entity_id=idp.IDP_ENTITY_ID,
    )
    xml = idp.response_xml(spec_for(rotating))

    for keys in (idp.okta_key(), idp.second_okta_key()):
        document = idp.sign(xml, keys)
        assert validate_response(idp.encode(document), rotating, now=_now()).email


@pytest.mark.parametrize(
    "window",
    [
        {"not_before": timedelta(seconds=60)},
        {"not_before": timedelta(minutes=-5), "not_on_or_after": timedelta(seconds=-60)},
    ],
    ids=["issued 60 s ahead of our clock", "expired 60 s ago by our clock"],
)
def test_times_inside_the_two_minute_skew_are_admitted(
    sp: ServiceProvider, window: dict[str, timedelta]
) -> None:
    document = signed(sp, **window)

    assert validate_response(idp.encode(document), sp, now=_now()).email


def test_the_clock_passed_in_decides_expiry(sp: ServiceProvider) -> None:
    document = idp.encode(assertion_signed(sp))

    with pytest.raises(SamlRefusal) as refused:
        validate_response(document, sp, now=_now() + timedelta(minutes=8))

    assert refused.value.code is Refusal.EXPIRED


def test_comment_injection_in_the_name_id_yields_the_whole_value(sp: ServiceProvider) -> None:
    # An IdP user "eve@evil.com<!---->.example.com" must not become eve@evil.com.
    xml = idp.response_xml(spec_for(sp, email="eve@evil.com.example.com"))
    xml = xml.replace("eve@evil.com.example.com", "eve@evil.com<!---->.example.com")
    document = idp.sign(xml)

    identity = validate_response(idp.encode(document), sp, now=_now())

    assert identity.email == "eve@evil.com.example.com"


def test_attribute_names_can_be_configured(sp: ServiceProvider) -> None:
    xml = idp.response_xml(spec_for(sp)).replace('Name="given_name"', 'Name="firstName"')
    names = AttributeNames(given_name="firstName")

    identity = validate_response(idp.encode(idp.sign(xml)), sp, now=_now(), attributes=names)

    assert identity.given_name == "Ann"


@pytest.mark.parametrize("case", REFUSALS, ids=lambda case: case.name)
def test_each_bad_response_is_refused_with_its_code(sp: ServiceProvider, case: Case) -> None:
    with pytest.raises(SamlRefusal) as refused:
        validate_response(case.build(sp), sp, now=_now())

    assert refused.value.code is case.code


def test_no_idp_metadata_means_no_sign_in() -> None:
    bare = service_provider_for("https://muster.example", "acme")

    with pytest.raises(SamlRefusal) as refused:
        validate_response("PHg+", bare, now=_now())

    assert refused.value.code is Refusal.SAML_NOT_CONFIGURED


def test_sp_metadata_names_the_entity_id_and_acs_url() -> None:
    bare = service_provider_for("https://muster.example/", "acme")

    xml = metadata_xml(bare)

    assert 'entityID="https://muster.example/sso/acme/metadata"' in xml
    assert 'Location="https://muster.example/sso/acme/acs"' in xml
    assert "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" in xml


def test_authn_request_redirects_to_the_idp_with_a_fresh_id(sp: ServiceProvider) -> None:
    first, second = authn_request(sp), authn_request(sp)

    assert first.url.startswith(idp.IDP_SSO_URL + "?SAMLRequest=")
    assert first.request_id != second.request_id


def test_the_names_kept_to_import_pysaml2_late_are_pysaml2s() -> None:
    import saml2
    from saml2.saml import NAMEID_FORMAT_EMAILADDRESS

    from muster.saml import service_provider

    assert service_provider.BINDING_HTTP_POST == saml2.BINDING_HTTP_POST
    assert service_provider.BINDING_HTTP_REDIRECT == saml2.BINDING_HTTP_REDIRECT
    assert service_provider.NAMEID_FORMAT_EMAILADDRESS == NAMEID_FORMAT_EMAILADDRESS


def test_importing_the_app_does_not_import_pysaml2() -> None:
    import subprocess
    import sys

    probe = "import sys, muster.app; print('saml2' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)

    assert result.stdout.strip() == "False"


def test_okta_session_limit_is_read_from_the_signed_assertion(sp: ServiceProvider) -> None:
    document = signed(sp, session_not_on_or_after=timedelta(hours=2))

    identity = validate_response(idp.encode(document), sp, now=_now())

    assert identity.session_not_on_or_after is not None
    assert timedelta(minutes=119) < identity.session_not_on_or_after - _now() <= timedelta(hours=2)
