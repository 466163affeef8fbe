"""parse_idp_metadata(xml) -> IdpMetadata: the IdP's entity ID, SSO URL and signing certificate.

The XML is what an admin pasted; the server never fetches metadata from a URL (no SSRF), and
defusedxml refuses DTDs, entities and external references (no XXE, no billion laughs).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from muster.errors import ScimError

MAX_METADATA_BYTES = 256 * 1024
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
# Okta's sign-in is a redirect; HTTP-POST is accepted when an IdP offers nothing else.
BINDINGS = (
    "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
    "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
)


@dataclass(frozen=True, slots=True)
class IdpMetadata:
    """What Muster keeps from an IdP's metadata."""

    entity_id: str
    sso_url: str
    certificate_pem: str
    certificate_sha256: str  # colon-separated upper-case hex, as Okta shows it
    certificate_not_after: datetime  # naive UTC


def _invalid(why: str) -> ScimError:
    return ScimError.invalid_value(f"the IdP metadata {why}")


def _tag(element: Element) -> str:
    return element.tag.rsplit("}", 1)[-1]


def certificate_details(der: bytes) -> tuple[str, str, datetime]:
    """Return (PEM, SHA-256 fingerprint, expiry) of a DER certificate."""
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError as error:
        raise _invalid("holds a signing certificate that cannot be read") from error
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    fingerprint = certificate.fingerprint(hashes.SHA256()).hex().upper()
    pairs = ":".join(fingerprint[i : i + 2] for i in range(0, len(fingerprint), 2))
    return pem, pairs, certificate.not_valid_after_utc.replace(tzinfo=None)


def _signing_certificate(descriptor: Element) -> bytes:
    for key in descriptor.findall(f"{{{MD}}}KeyDescriptor"):
        if key.get("use", "signing") != "signing":
            continue
        text = key.findtext(f".//{{{DS}}}X509Certificate")
        if text:
            try:
                return base64.b64decode(re.sub(r"\s+", "", text), validate=True)
            except (binascii.Error, ValueError) as error:
                raise _invalid("holds a certificate that is not valid base64") from error
    raise _invalid("has no signing certificate (KeyDescriptor with an X509Certificate)")


def parse_idp_metadata(xml: str | bytes) -> IdpMetadata:
    """Read an IdP's EntityDescriptor; ScimError(invalidValue) naming what is missing."""
    data = xml.encode() if isinstance(xml, str) else xml
    if len(data) > MAX_METADATA_BYTES:
        raise _invalid(f"is larger than {MAX_METADATA_BYTES // 1024} KiB")
    if not data.strip():
        raise _invalid("is empty: paste the XML from Okta (Sign On → SAML 2.0 → Metadata)")
    try:
        root: Any = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as error:
        raise _invalid("contains a DTD or entities, which are refused") from error
    except ParseError as error:
        raise _invalid(f"is not well-formed XML ({error})") from error
    if _tag(root) == "EntitiesDescriptor":
        found = root.find(f"{{{MD}}}EntityDescriptor")
        if found is None:
            raise _invalid("holds no EntityDescriptor")
        root = found
    if root.tag != f"{{{MD}}}EntityDescriptor":
        raise _invalid("is not SAML 2.0 metadata (no md:EntityDescriptor at its root)")
    entity_id = (root.get("entityID") or "").strip()
    if not entity_id:
        raise _invalid("has no entityID")
    descriptor = root.find(f"{{{MD}}}IDPSSODescriptor")
    if descriptor is None:
        raise _invalid("describes no identity provider (no IDPSSODescriptor)")
    services = {
        s.get("Binding"): (s.get("Location") or "").strip()
        for s in descriptor.findall(f"{{{MD}}}SingleSignOnService")
    }
    sso_url = next((services[b] for b in BINDINGS if services.get(b)), "")
    if not sso_url.startswith(("https://", "http://")):
        raise _invalid("has no SingleSignOnService URL for the HTTP-Redirect or HTTP-POST binding")
    pem, fingerprint, not_after = certificate_details(_signing_certificate(descriptor))
    return IdpMetadata(entity_id[:1024], sso_url[:2048], pem, fingerprint, not_after)
