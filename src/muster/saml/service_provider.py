"""SP settings per tenant, AuthnRequest (HTTP-Redirect binding) and SP metadata XML, on pysaml2.

pysaml2 verifies XML signatures by running Debian's `xmlsec1` binary; it is looked up once per
process. Each tenant is its own service provider: its entity ID and ACS URL name its slug.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from muster.saml.refusals import Refusal, SamlRefusal

if TYPE_CHECKING:
    from saml2.client import Saml2Client
    from saml2.config import SPConfig

# pysaml2 (with xmlschema under it) takes one to three seconds to import: it is imported by the
# functions below on the first sign-in, not by every server worker and CLI call at start-up.
NAMEID_FORMAT_EMAILADDRESS = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
BINDING_HTTP_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
BINDING_HTTP_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"

# Okta and Muster clocks may differ; the issue allows at most 2 minutes either way.
CLOCK_SKEW_SECONDS = 120


@dataclass(frozen=True, slots=True)
class ServiceProvider:
    """One tenant's SAML service provider and the IdP it trusts (None until metadata is pasted)."""

    entity_id: str
    acs_url: str
    idp_metadata_xml: str | None = None
    idp_entity_id: str | None = None


def service_provider_for(
    base_url: str,
    slug: str,
    *,
    idp_metadata_xml: str | None = None,
    idp_entity_id: str | None = None,
) -> ServiceProvider:
    """Name a tenant's SP: the entity ID is its metadata URL, the ACS its POST endpoint."""
    base = base_url.rstrip("/")
    return ServiceProvider(
        entity_id=f"{base}/sso/{slug}/metadata",
        acs_url=f"{base}/sso/{slug}/acs",
        idp_metadata_xml=idp_metadata_xml,
        idp_entity_id=idp_entity_id,
    )


@cache
def xmlsec_binary() -> str:
    """The path of Debian's xmlsec1, which pysaml2 runs to check signatures."""
    found = shutil.which("xmlsec1")
    if found is None:
        raise RuntimeError(
            "SAML sign-in needs the xmlsec1 program: apt-get install xmlsec1 "
            "(scripts/bootstrap.sh installs it)"
        )
    return found


def _config(sp: ServiceProvider, *, with_idp: bool) -> SPConfig:
    from saml2.config import SPConfig

    settings: dict[str, Any] = {
        "entityid": sp.entity_id,
        "xmlsec_binary": xmlsec_binary(),
        # Okta's attribute names (given_name, ...) are not in pysaml2's converters; without this
        # they silently come back as {} (saml-sp-notes.md).
        "allow_unknown_attributes": True,
        "accepted_time_diff": CLOCK_SKEW_SECONDS,
        # Trust only the certificates of the pasted metadata, never one a document carries.
        "only_use_keys_in_metadata": True,
        "service": {
            "sp": {
                "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                "endpoints": {"assertion_consumer_service": [(sp.acs_url, BINDING_HTTP_POST)]},
                # A signature over the Response or over the Assertion, from the IdP's key in
                # its metadata (never from the KeyInfo the document carries).
                "want_assertions_or_response_signed": True,
                "want_assertions_signed": False,
                "want_response_signed": False,
                "authn_requests_signed": False,
                # IdP-initiated sign-in (the Okta dashboard tile) has no InResponseTo. When a
                # response has one, services/sign_in.py requires a request we issued and
                # consumes it; the assertion-ID replay table guards both kinds.
                "allow_unsolicited": True,
            }
        },
    }
    if with_idp:
        if not sp.idp_metadata_xml:
            raise SamlRefusal(Refusal.SAML_NOT_CONFIGURED)
        settings["metadata"] = {"inline": [sp.idp_metadata_xml]}
    config = SPConfig()
    config.load(settings)
    return config


def client(sp: ServiceProvider) -> Saml2Client:
    """A pysaml2 client trusting only the tenant's IdP metadata."""
    from saml2.client import Saml2Client

    return Saml2Client(config=_config(sp, with_idp=True))


def metadata_xml(sp: ServiceProvider) -> str:
    """Return the SP metadata XML Okta (or any IdP) can read: entity ID, ACS, NameID format."""
    from saml2.metadata import entity_descriptor

    descriptor = entity_descriptor(_config(sp, with_idp=False))
    return str(descriptor)


@dataclass(frozen=True, slots=True)
class AuthnRedirect:
    """An SP-initiated sign-in: the request's ID (to remember) and where to send the browser."""

    request_id: str
    url: str


def authn_request(sp: ServiceProvider, *, relay_state: str = "") -> AuthnRedirect:
    """Build an AuthnRequest for the tenant's IdP, sent with the HTTP-Redirect binding."""
    saml_client = client(sp)
    request_id, info = saml_client.prepare_for_authenticate(
        entityid=sp.idp_entity_id,
        relay_state=relay_state,
        binding=BINDING_HTTP_REDIRECT,
        nameid_format=NAMEID_FORMAT_EMAILADDRESS,
    )
    location = dict(info["headers"])["Location"]
    return AuthnRedirect(str(request_id), str(location))
