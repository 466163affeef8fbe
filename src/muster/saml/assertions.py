"""validate_response(SAMLResponse, sp, now) -> SsoIdentity, or SamlRefusal with a code.

SAML is where sign-in products get broken into, so the order is: cap the size, refuse DTDs,
insist on the one shape Okta sends (one Response, one Assertion, signatures only where the
profile puts them, SHA-256 or better), check the content we rely on, and let pysaml2 and
xmlsec1 verify the signature with the key from the IdP's metadata. Because the document may
hold exactly one Assertion, and the signature must cover it or the Response around it, the
values we read are the signed ones: wrapping attacks (XSW) have nowhere to hide a second copy.
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from muster.saml.refusals import Refusal, SamlRefusal
from muster.saml.service_provider import (
    BINDING_HTTP_POST,
    CLOCK_SKEW_SECONDS,
    ServiceProvider,
    client,
)

# pysaml2 logs refused documents, raw XML included, and we never log raw assertions: each
# refusal is recorded once, by code, in the sign-in log instead.
logging.getLogger("saml2").setLevel(logging.CRITICAL)

# Okta's responses are a few KiB; the cap is checked on the form field, before any decoding.
MAX_RESPONSE_BYTES = 256 * 1024
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
SKEW = timedelta(seconds=CLOCK_SKEW_SECONDS)
# The SAML signature profile: enveloped signature, exclusive canonicalisation, nothing else
# (an XSLT or XPath transform would run attacker-chosen code before the key is even checked).
ALLOWED_TRANSFORMS = frozenset(
    {
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
        "http://www.w3.org/2001/10/xml-exc-c14n#",
    }
)
ALLOWED_C14N = frozenset(
    {
        "http://www.w3.org/2001/10/xml-exc-c14n#",
        "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
    }
)
# SHA-1 collisions are practical: refused for the signature and for the digests.
ALLOWED_SIGNATURE_METHODS = frozenset(
    {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
    }
)
ALLOWED_DIGESTS = frozenset(
    {
        "http://www.w3.org/2001/04/xmlenc#sha256",
        "http://www.w3.org/2001/04/xmldsig-more#sha384",
        "http://www.w3.org/2001/04/xmlenc#sha512",
    }
)


@dataclass(frozen=True, slots=True)
class AttributeNames:
    """Which assertion attributes carry the person's names, email and groups."""

    given_name: str = "given_name"
    family_name: str = "family_name"
    email: str = "email"
    groups: str = "groups"


@dataclass(frozen=True, slots=True)
class SsoIdentity:
    """Who the IdP says signed in, read from the verified assertion only."""

    email: str
    given_name: str | None
    family_name: str | None
    groups: tuple[str, ...]
    assertion_id: str
    in_response_to: str | None  # None: IdP-initiated (the Okta dashboard tile)
    expires_at: datetime  # naive UTC: until then the assertion ID must stay remembered
    # The IdP's limit on the session it started (AuthnStatement SessionNotOnOrAfter), if any.
    session_not_on_or_after: datetime | None = None


def _refuse(code: Refusal, detail: str = "") -> SamlRefusal:
    return SamlRefusal(code, detail)


def _decode(encoded: str | bytes) -> bytes:
    if len(encoded) > MAX_RESPONSE_BYTES:
        raise _refuse(Refusal.RESPONSE_TOO_LARGE, f"over {MAX_RESPONSE_BYTES // 1024} KiB")
    try:
        data = base64.b64decode(encoded, validate=False)
    except (binascii.Error, ValueError) as error:
        raise _refuse(Refusal.MALFORMED_RESPONSE, "SAMLResponse is not base64") from error
    if not data.strip():
        raise _refuse(Refusal.MALFORMED_RESPONSE, "SAMLResponse is empty")
    return data


def _parse(data: bytes) -> Element:
    # DTDs are refused outright: no entity expansion, no external fetches (XXE).
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise _refuse(Refusal.DOCTYPE_REFUSED, "the response contains a DOCTYPE")
    try:
        root: Element = fromstring(
            data, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as error:
        raise _refuse(Refusal.DOCTYPE_REFUSED, "the response contains a DTD or entities") from error
    except ParseError as error:
        raise _refuse(Refusal.MALFORMED_RESPONSE, "the response is not well-formed XML") from error
    return root


def _check_signature_profile(signature: Element, parent: Element) -> None:
    signed_info = signature.find(f"{{{DS}}}SignedInfo")
    if signed_info is None or signature.find(f".//{{{DS}}}Object") is not None:
        raise _refuse(Refusal.BAD_SIGNATURE, "the signature does not follow the SAML profile")
    method = signed_info.find(f"{{{DS}}}SignatureMethod")
    digests = signed_info.findall(f".//{{{DS}}}DigestMethod")
    algorithms = [method.get("Algorithm", "") if method is not None else ""]
    if any("sha1" in a.lower() for a in algorithms + [d.get("Algorithm", "") for d in digests]):
        raise _refuse(Refusal.WEAK_ALGORITHM, "RSA-SHA1 / SHA-1 signatures are refused")
    if (
        algorithms[0] not in ALLOWED_SIGNATURE_METHODS
        or not digests
        or any(d.get("Algorithm") not in ALLOWED_DIGESTS for d in digests)
    ):
        raise _refuse(Refusal.WEAK_ALGORITHM, "the signature uses an algorithm not allowed")
    c14n = signed_info.find(f"{{{DS}}}CanonicalizationMethod")
    references = signed_info.findall(f"{{{DS}}}Reference")
    if c14n is None or c14n.get("Algorithm") not in ALLOWED_C14N or len(references) != 1:
        raise _refuse(Refusal.BAD_SIGNATURE, "the signature does not follow the SAML profile")
    # The one Reference must point at the element that holds the signature: a signature over
    # some other element proves nothing about this one.
    if references[0].get("URI") != f"#{parent.get('ID', '')}" or not parent.get("ID"):
        raise _refuse(Refusal.BAD_SIGNATURE, "the signature does not cover its element")
    for transform in references[0].findall(f".//{{{DS}}}Transform"):
        if transform.get("Algorithm") not in ALLOWED_TRANSFORMS:
            raise _refuse(Refusal.BAD_SIGNATURE, "the signature uses a transform not allowed")


def _the_assertion(root: Element) -> Element:
    """The one Assertion of the one Response, with signatures only where the profile puts them."""
    if root.tag != f"{{{SAMLP}}}Response":
        raise _refuse(Refusal.MALFORMED_RESPONSE, "the document is not a SAML Response")
    assertions = list(root.iter(f"{{{SAML}}}Assertion"))
    if list(root.iter(f"{{{SAML}}}EncryptedAssertion")):
        raise _refuse(Refusal.MALFORMED_RESPONSE, "encrypted assertions are not supported")
    if list(root.iter(f"{{{SAMLP}}}Response"))[1:]:
        raise _refuse(Refusal.MALFORMED_RESPONSE, "the response holds another Response")
    if len(assertions) != 1 or root.find(f"{{{SAML}}}Assertion") is not assertions[0]:
        raise _refuse(Refusal.MALFORMED_RESPONSE, "the response must hold exactly one Assertion")
    assertion = assertions[0]
    signatures = list(root.iter(f"{{{DS}}}Signature"))
    placed = [s for s in root.findall(f"{{{DS}}}Signature")] + [
        s for s in assertion.findall(f"{{{DS}}}Signature")
    ]
    if not signatures:
        raise _refuse(Refusal.UNSIGNED, "neither the response nor the assertion is signed")
    if (
        len(signatures) != len(placed)
        or len(root.findall(f"{{{DS}}}Signature")) > 1
        or len(assertion.findall(f"{{{DS}}}Signature")) > 1
    ):
        raise _refuse(Refusal.BAD_SIGNATURE, "a signature sits where the SAML profile has none")
    for signature in root.findall(f"{{{DS}}}Signature"):
        _check_signature_profile(signature, root)
    for signature in assertion.findall(f"{{{DS}}}Signature"):
        _check_signature_profile(signature, assertion)
    return assertion


def _instant(value: str | None, what: str) -> datetime:
    if not value:
        raise _refuse(Refusal.MALFORMED_RESPONSE, f"{what} is missing")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as error:
        raise _refuse(Refusal.MALFORMED_RESPONSE, f"{what} is not a date-time") from error
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _check_content(
    root: Element, assertion: Element, sp: ServiceProvider, now: datetime
) -> datetime:
    """Issuer, audience, recipient, destination and time window; returns the expiry."""
    for holder in (root, assertion):
        issuer = holder.findtext(f"{{{SAML}}}Issuer")
        if (issuer is not None or holder is assertion) and (
            issuer or ""
        ).strip() != sp.idp_entity_id:
            raise _refuse(Refusal.WRONG_ISSUER, "the issuer is not the configured IdP")
    destination = root.get("Destination")
    if destination is not None and destination != sp.acs_url:
        raise _refuse(Refusal.WRONG_RECIPIENT, "Destination is not this ACS URL")
    conditions = assertion.find(f"{{{SAML}}}Conditions")
    if conditions is None:
        raise _refuse(Refusal.WRONG_AUDIENCE, "the assertion has no Conditions")
    # Required even though SAML makes it optional: without an audience, an assertion Okta
    # issued to some other application of the same org would sign people in here.
    restrictions = conditions.findall(f"{{{SAML}}}AudienceRestriction")
    if not restrictions:
        raise _refuse(Refusal.WRONG_AUDIENCE, "the assertion names no audience")
    for restriction in restrictions:
        audiences = [(a.text or "").strip() for a in restriction.findall(f"{{{SAML}}}Audience")]
        if sp.entity_id not in audiences:
            raise _refuse(Refusal.WRONG_AUDIENCE, "the audience is not this SP's entity ID")
    not_before = conditions.get("NotBefore")
    if not_before is not None and _instant(not_before, "NotBefore") - SKEW > now:
        raise _refuse(Refusal.NOT_YET_VALID, "the assertion is not valid yet")
    expiry_times = []
    not_on_or_after = conditions.get("NotOnOrAfter")
    if not_on_or_after is not None:
        expiry_times.append(_instant(not_on_or_after, "NotOnOrAfter"))
    bearers = [
        c
        for c in assertion.findall(f"{{{SAML}}}Subject/{{{SAML}}}SubjectConfirmation")
        if c.get("Method") == BEARER
    ]
    if not bearers:
        raise _refuse(Refusal.MALFORMED_RESPONSE, "the assertion has no bearer confirmation")
    for bearer in bearers:
        data = bearer.find(f"{{{SAML}}}SubjectConfirmationData")
        if data is None or data.get("Recipient") != sp.acs_url:
            raise _refuse(Refusal.WRONG_RECIPIENT, "Recipient is not this ACS URL")
        expiry_times.append(_instant(data.get("NotOnOrAfter"), "NotOnOrAfter"))
    if any(moment + SKEW <= now for moment in expiry_times):
        raise _refuse(Refusal.EXPIRED, "the assertion has expired")
    return max(expiry_times) + SKEW


def _session_not_on_or_after(assertion: Element) -> datetime | None:
    limits = [
        _instant(value, "SessionNotOnOrAfter")
        for statement in assertion.findall(f"{{{SAML}}}AuthnStatement")
        if (value := statement.get("SessionNotOnOrAfter"))
    ]
    return min(limits) if limits else None


def _in_response_to(root: Element, assertion: Element) -> str | None:
    values = {root.get("InResponseTo")} | {
        data.get("InResponseTo") for data in assertion.iter(f"{{{SAML}}}SubjectConfirmationData")
    }
    values.discard(None)
    if len(values) > 1:
        raise _refuse(Refusal.UNKNOWN_REQUEST, "InResponseTo differs inside the response")
    return values.pop() if values else None


def _verify_with_pysaml2(sp: ServiceProvider, data: bytes) -> Any:
    """Let pysaml2 and xmlsec1 check the signature against the IdP metadata's certificates."""
    from saml2.response import StatusError, UnsolicitedResponse
    from saml2.sigver import SignatureError
    from saml2.validate import ResponseLifetimeExceed, ToEarly

    saml_client = client(sp)
    encoded = base64.b64encode(data).decode()
    try:
        # A non-empty conv_info makes pysaml2 check Recipient as well (saml-sp-notes.md).
        response = saml_client.parse_authn_request_response(
            encoded, BINDING_HTTP_POST, outstanding={}, conv_info={"remote_addr": "0.0.0.0"}
        )
    except ResponseLifetimeExceed as error:
        raise _refuse(Refusal.EXPIRED, "the assertion has expired") from error
    except ToEarly as error:
        raise _refuse(Refusal.NOT_YET_VALID, "the assertion is not valid yet") from error
    except StatusError as error:
        raise _refuse(Refusal.IDP_ERROR, "the IdP reported a failed sign-in") from error
    except UnsolicitedResponse as error:
        raise _refuse(Refusal.UNKNOWN_REQUEST, "the response answers no request") from error
    except SignatureError as error:
        raise _refuse(
            Refusal.BAD_SIGNATURE, "the signature is not valid for the IdP's key"
        ) from error
    except Exception as error:  # pysaml2 raises many types; every failure is a refusal
        raise _refuse(
            Refusal.BAD_SIGNATURE, f"refused by the SAML library ({type(error).__name__})"
        ) from error
    # pysaml2 reports some failures (a wrong Destination) as a response without an assertion.
    if response is None or response.assertion is None:
        raise _refuse(Refusal.BAD_SIGNATURE, "the SAML library found no valid assertion")
    return response


def _single(values: Any) -> str | None:
    if isinstance(values, list) and values:
        text = str(values[0]).strip()
        return text or None
    return None


def validate_response(
    encoded: str | bytes,
    sp: ServiceProvider,
    *,
    now: datetime,
    attributes: AttributeNames = AttributeNames(),
) -> SsoIdentity:
    """Check a SAMLResponse form field strictly and return who signed in, or SamlRefusal."""
    if not sp.idp_metadata_xml or not sp.idp_entity_id:
        raise _refuse(Refusal.SAML_NOT_CONFIGURED, "no IdP metadata for this tenant")
    data = _decode(encoded)
    root = _parse(data)
    assertion = _the_assertion(root)
    expires_at = _check_content(root, assertion, sp, now)
    in_response_to = _in_response_to(root, assertion)
    response = _verify_with_pysaml2(sp, data)
    # The same one Assertion pysaml2 verified; checked so a future change cannot split them.
    if response.assertion.id != assertion.get("ID"):
        raise _refuse(Refusal.BAD_SIGNATURE, "the verified assertion is not the one read")
    ava: dict[str, Any] = response.ava or {}
    name_id = response.name_id.text.strip() if response.name_id is not None else ""
    email = _single(ava.get(attributes.email)) or name_id
    if "@" not in email:
        raise _refuse(Refusal.MISSING_EMAIL, "the assertion carries no email address")
    groups = tuple(str(g).strip() for g in ava.get(attributes.groups, []) if str(g).strip())
    return SsoIdentity(
        email=email,
        given_name=_single(ava.get(attributes.given_name)),
        family_name=_single(ava.get(attributes.family_name)),
        groups=groups,
        assertion_id=str(response.assertion.id),
        in_response_to=in_response_to,
        expires_at=expires_at,
        session_not_on_or_after=_session_not_on_or_after(assertion),
    )
