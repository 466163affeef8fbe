"""parse_idp_metadata: what is kept from pasted IdP metadata, and what is refused."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes

from muster.errors import ScimError
from muster.saml.idp_metadata import MAX_METADATA_BYTES, parse_idp_metadata
from tests.console_factories import idp_metadata

pytestmark = pytest.mark.unit


def test_reads_entity_id_sso_url_and_the_certificate() -> None:
    xml, certificate = idp_metadata()

    parsed = parse_idp_metadata(xml)

    assert parsed.entity_id == "http://www.okta.com/exk1fake"
    assert parsed.sso_url == "https://acme.okta.com/app/muster/exk1fake/sso/saml"
    expected = certificate.fingerprint(hashes.SHA256()).hex().upper()
    assert parsed.certificate_sha256.replace(":", "") == expected
    assert len(parsed.certificate_sha256) == 95
    assert parsed.certificate_not_after == certificate.not_valid_after_utc.replace(tzinfo=None)
    assert parsed.certificate_pem.startswith("-----BEGIN CERTIFICATE-----")


def test_prefers_the_redirect_binding() -> None:
    xml, _ = idp_metadata()
    xml = xml.replace(
        'HTTP-Redirect"\n        Location="https://acme',
        'HTTP-Redirect"\n        Location="https://r.acme',
    )

    assert parse_idp_metadata(xml).sso_url.startswith("https://r.acme")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda x: x.replace('entityID="http://www.okta.com/exk1fake"', ""), "has no entityID"),
        (lambda x: x.replace("IDPSSODescriptor", "SPSSODescriptor"), "no IDPSSODescriptor"),
        (
            lambda x: x.replace("SingleSignOnService", "ArtifactResolutionService"),
            "no SingleSignOn",
        ),
        (lambda x: x.replace("X509Certificate>", "X509Thing>"), "no signing certificate"),
        (lambda x: x.replace("<ds:X509Certificate>", "<ds:X509Certificate>!!"), "not valid base64"),
        (lambda x: x.replace("<ds:X509Certificate>", "<ds:X509Certificate>AAAA"), "cannot be read"),
    ],
)
def test_refuses_metadata_missing_what_sign_in_needs(change: object, message: str) -> None:
    xml, _ = idp_metadata()

    with pytest.raises(ScimError, match=message) as refused:
        parse_idp_metadata(change(xml))  # type: ignore[operator]

    assert refused.value.status == 400


def test_refuses_entities_and_external_references() -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><md:EntityDescriptor '
        'xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&lol2;"/>'
    )
    external = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&e;"/>'
    )

    for xml in (bomb, external):
        with pytest.raises(ScimError, match="DTD or entities"):
            parse_idp_metadata(xml)


def test_refuses_metadata_over_the_size_cap() -> None:
    xml, _ = idp_metadata()
    padded = xml.replace(
        "<md:IDPSSODescriptor", "<!--" + "x" * MAX_METADATA_BYTES + "-->" + "<md:IDPSSODescriptor"
    )

    with pytest.raises(ScimError, match="larger than 256 KiB"):
        parse_idp_metadata(padded)


def test_accepts_an_entities_descriptor_wrapping_one_entity() -> None:
    xml, _ = idp_metadata()
    body = xml.split("?>", 1)[1]
    wrapped = (
        '<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">'
        f"{body}</md:EntitiesDescriptor>"
    )

    assert parse_idp_metadata(wrapped).entity_id == "http://www.okta.com/exk1fake"
