"""A fake Okta for the tests: a key pair, Okta-shaped metadata, and signed SAML Responses.

Responses are built as text, then signed like Okta does (enveloped, exclusive c14n,
RSA-SHA256, the signature right after the Issuer): the Assertion first, then optionally the
Response. Attack helpers work on the signed bytes, so each test can break one thing at a time.
"""

from __future__ import annotations

import base64
import copy
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from xml.sax.saxutils import escape, quoteattr

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import XMLSigner, methods
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

IDP_ENTITY_ID = "http://www.okta.com/exk1muster"
IDP_SSO_URL = "https://acme.okta.com/app/muster/exk1muster/sso/saml"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
NS = {"samlp": SAMLP, "saml": SAML, "ds": DS}


@dataclass(frozen=True)
class KeyPair:
    """An RSA key and its self-signed certificate, both PEM."""

    key_pem: bytes
    cert_pem: bytes

    @property
    def cert_base64(self) -> str:
        body = b"".join(self.cert_pem.strip().splitlines()[1:-1]).decode()
        # Okta wraps the certificate at 76 characters in its metadata.
        return "\n".join(body[i : i + 76] for i in range(0, len(body), 76))


def make_key_pair(common_name: str = "acme.okta.com") -> KeyPair:
    """A fresh RSA-2048 key and a self-signed certificate with digitalSignature usage."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Okta"),
        ]
    )
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return KeyPair(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        certificate.public_bytes(serialization.Encoding.PEM),
    )


@cache
def okta_key() -> KeyPair:
    return make_key_pair()


@cache
def second_okta_key() -> KeyPair:
    """Okta's next certificate, listed next to the current one during a rotation."""
    return make_key_pair("acme-next.okta.com")


@cache
def attacker_key() -> KeyPair:
    return make_key_pair("evil.example")


def okta_metadata(*keys: KeyPair, entity_id: str = IDP_ENTITY_ID) -> str:
    """Okta-shaped IdP metadata listing these signing certificates."""
    descriptors = "".join(
        f"""
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo xmlns:ds="{DS}">
        <ds:X509Data><ds:X509Certificate>{k.cert_base64}</ds:X509Certificate></ds:X509Data>
      </ds:KeyInfo>
    </md:KeyDescriptor>"""
        for k in (keys or (okta_key(),))
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity_id}">
  <md:IDPSSODescriptor WantAuthnRequestsSigned="false"
      protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{descriptors}
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified</md:NameIDFormat>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
        Location="{IDP_SSO_URL}"/>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
        Location="{IDP_SSO_URL}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
"""


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class ResponseSpec:
    """Every field of an Okta Response; tests change one to break one check."""

    acs_url: str
    audience: str | None  # None: no AudienceRestriction at all
    email: str = "ann.lee@example.com"
    name_id: str | None = None  # defaults to the email
    given_name: str | None = "Ann"
    family_name: str | None = "Lee"
    groups: list[str] = field(default_factory=list)
    in_response_to: str | None = None  # None: IdP-initiated (Okta dashboard tile)
    issuer: str = IDP_ENTITY_ID
    destination: str | None = None  # defaults to acs_url
    recipient: str | None = None  # defaults to acs_url
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    not_before: timedelta = timedelta(minutes=-5)
    not_on_or_after: timedelta = timedelta(minutes=5)
    session_not_on_or_after: timedelta | None = None  # AuthnStatement's, relative to now
    assertion_id: str = field(default_factory=lambda: f"id{uuid.uuid4().hex}")
    response_id: str = field(default_factory=lambda: f"id{uuid.uuid4().hex}")


def response_xml(spec: ResponseSpec) -> str:
    """The unsigned Response text."""
    now = spec.now
    irt = f" InResponseTo={quoteattr(spec.in_response_to)}" if spec.in_response_to else ""
    destination = spec.acs_url if spec.destination is None else spec.destination
    recipient = spec.acs_url if spec.recipient is None else spec.recipient
    name_id = spec.email if spec.name_id is None else spec.name_id
    audience = (
        f"<saml2:AudienceRestriction><saml2:Audience>{escape(spec.audience)}</saml2:Audience>"
        "</saml2:AudienceRestriction>"
        if spec.audience is not None
        else ""
    )
    session_limit = (
        f' SessionNotOnOrAfter="{_instant(now + spec.session_not_on_or_after)}"'
        if spec.session_not_on_or_after is not None
        else ""
    )
    attributes = []
    for name, values in (
        ("given_name", [spec.given_name] if spec.given_name is not None else []),
        ("family_name", [spec.family_name] if spec.family_name is not None else []),
        ("email", [spec.email]),
        ("groups", spec.groups),
    ):
        if not values and name != "groups":
            continue
        rendered = "".join(
            '<saml2:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">'
            f"{escape(v)}</saml2:AttributeValue>"
            for v in values
        )
        attributes.append(
            f'<saml2:Attribute Name="{name}" '
            'NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">'
            f"{rendered}</saml2:Attribute>"
        )
    return (
        f'<saml2p:Response xmlns:saml2p="{SAMLP}" Destination={quoteattr(destination)} '
        f'ID="{spec.response_id}"{irt} IssueInstant="{_instant(now)}" Version="2.0">'
        f'<saml2:Issuer xmlns:saml2="{SAML}" '
        'Format="urn:oasis:names:tc:SAML:2.0:nameid-format:entity">'
        f"{escape(spec.issuer)}</saml2:Issuer>"
        '<saml2p:Status><saml2p:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>'
        "</saml2p:Status>"
        f'<saml2:Assertion xmlns:saml2="{SAML}" ID="{spec.assertion_id}" '
        f'IssueInstant="{_instant(now)}" Version="2.0">'
        '<saml2:Issuer Format="urn:oasis:names:tc:SAML:2.0:nameid-format:entity">'
        f"{escape(spec.issuer)}</saml2:Issuer>"
        "<saml2:Subject>"
        '<saml2:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">'
        f"{name_id}</saml2:NameID>"
        '<saml2:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
        f"<saml2:SubjectConfirmationData{irt} "
        f'NotOnOrAfter="{_instant(now + spec.not_on_or_after)}" Recipient={quoteattr(recipient)}/>'
        "</saml2:SubjectConfirmation></saml2:Subject>"
        f'<saml2:Conditions NotBefore="{_instant(now + spec.not_before)}" '
        f'NotOnOrAfter="{_instant(now + spec.not_on_or_after)}">{audience}</saml2:Conditions>'
        f'<saml2:AuthnStatement AuthnInstant="{_instant(now)}"{session_limit} '
        f'SessionIndex="{spec.response_id}">'
        "<saml2:AuthnContext><saml2:AuthnContextClassRef>"
        "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
        "</saml2:AuthnContextClassRef></saml2:AuthnContext></saml2:AuthnStatement>"
        f"<saml2:AttributeStatement>{''.join(attributes)}</saml2:AttributeStatement>"
        "</saml2:Assertion></saml2p:Response>"
    )


class Sha1Signer(XMLSigner):
    """Signs with RSA-SHA1 / SHA-1, which signxml refuses by default (for the refusal test)."""

    def check_deprecated_methods(self) -> None:
        return None


def _signer(*, sha1: bool) -> XMLSigner:
    if sha1:
        return Sha1Signer(
            method=methods.enveloped,
            signature_algorithm=SignatureMethod.RSA_SHA1,
            digest_algorithm=DigestAlgorithm.SHA1,
            c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
        )
    return XMLSigner(
        method=methods.enveloped,
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )


def _sign_element(element: etree._Element, keys: KeyPair, *, sha1: bool) -> etree._Element:
    """Sign `element` in place of itself, the signature placed right after its Issuer."""
    placeholder = etree.Element(f"{{{DS}}}Signature", Id="placeholder", nsmap={"ds": DS})
    element.find("saml:Issuer", NS).addnext(placeholder)  # type: ignore[union-attr]
    standalone = etree.fromstring(etree.tostring(element))
    signed = _signer(sha1=sha1).sign(
        standalone, key=keys.key_pem, cert=keys.cert_pem.decode(), reference_uri=element.get("ID")
    )
    return signed  # type: ignore[no-any-return]


def sign(
    xml: str,
    keys: KeyPair | None = None,
    *,
    assertion: bool = True,
    response: bool = True,
    sha1: bool = False,
) -> bytes:
    """Sign the Assertion and/or the Response like Okta (both, by default)."""
    keys = keys or okta_key()
    root = etree.fromstring(xml.encode())
    if assertion:
        unsigned = root.find("saml:Assertion", NS)
        assert unsigned is not None
        root.replace(unsigned, _sign_element(unsigned, keys, sha1=sha1))
    if response:
        root = _sign_element(root, keys, sha1=sha1)
    return etree.tostring(root)


def encode(document: bytes | str) -> str:
    """The SAMLResponse form field: base64 of the XML."""
    data = document.encode() if isinstance(document, str) else document
    return base64.b64encode(data).decode()


# -- attacks on a signed document --------------------------------------------------------------


def tamper_text(document: bytes, old: str, new: str) -> bytes:
    """Change text after signing (for instance an attribute value)."""
    assert old.encode() in document
    return document.replace(old.encode(), new.encode(), 1)


def strip_signatures(document: bytes) -> bytes:
    root = etree.fromstring(document)
    for signature in root.findall(".//ds:Signature", NS):
        signature.getparent().remove(signature)  # type: ignore[union-attr]
    return etree.tostring(root)


def _evil_copy(assertion: etree._Element, email: str, *, new_id: bool) -> etree._Element:
    evil = copy.deepcopy(assertion)
    for signature in evil.findall("ds:Signature", NS):
        evil.remove(signature)
    if new_id:
        evil.set("ID", f"id{uuid.uuid4().hex}")
    evil.find("saml:Subject/saml:NameID", NS).text = email  # type: ignore[union-attr]
    for value in evil.findall(
        "saml:AttributeStatement/saml:Attribute[@Name='email']/saml:AttributeValue", NS
    ):
        value.text = email
    return evil


def xsw_evil_assertion_before(document: bytes, email: str, *, new_id: bool = True) -> bytes:
    """XSW3: an unsigned evil Assertion placed before the genuine signed one."""
    root = etree.fromstring(document)
    genuine = root.find("saml:Assertion", NS)
    assert genuine is not None
    genuine.addprevious(_evil_copy(genuine, email, new_id=new_id))
    return etree.tostring(root)


def xsw_evil_assertion_wrapping(document: bytes, email: str) -> bytes:
    """XSW4: the evil Assertion takes the genuine one's place and hides it inside itself."""
    root = etree.fromstring(document)
    genuine = root.find("saml:Assertion", NS)
    assert genuine is not None
    evil = _evil_copy(genuine, email, new_id=True)
    root.replace(genuine, evil)
    evil.append(genuine)
    return etree.tostring(root)


def xsw_signed_assertion_in_extensions(document: bytes, email: str) -> bytes:
    """XSW7: the genuine Assertion hidden in samlp:Extensions, an evil one in its place."""
    root = etree.fromstring(document)
    genuine = root.find("saml:Assertion", NS)
    assert genuine is not None
    evil = _evil_copy(genuine, email, new_id=False)
    root.replace(genuine, evil)
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    extensions.append(genuine)
    root.find("saml:Issuer", NS).addnext(extensions)  # type: ignore[union-attr]
    return etree.tostring(root)


def xsw_signature_moved_to_evil_copy(document: bytes, email: str) -> bytes:
    """XSW8: the signature moved onto an evil copy; the genuine Assertion inside ds:Object."""
    root = etree.fromstring(document)
    genuine = root.find("saml:Assertion", NS)
    assert genuine is not None
    signature = genuine.find("ds:Signature", NS)
    assert signature is not None
    evil = _evil_copy(genuine, email, new_id=False)
    moved = copy.deepcopy(signature)
    evil.find("saml:Issuer", NS).addnext(moved)  # type: ignore[union-attr]
    root.replace(genuine, evil)
    genuine.remove(signature)
    etree.SubElement(moved, f"{{{DS}}}Object").append(genuine)
    return etree.tostring(root)


def xsw_response_wrapping(document: bytes, email: str) -> bytes:
    """XSW1: an evil unsigned Response wrapping the genuine signed one (in its Extensions)."""
    genuine = etree.fromstring(document)
    evil = copy.deepcopy(genuine)
    for signature in evil.findall("ds:Signature", NS):
        evil.remove(signature)
    evil.set("ID", f"id{uuid.uuid4().hex}")
    assertion = evil.find("saml:Assertion", NS)
    assert assertion is not None
    evil.replace(assertion, _evil_copy(assertion, email, new_id=True))
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    extensions.append(genuine)
    evil.find("saml:Issuer", NS).addnext(extensions)  # type: ignore[union-attr]
    return etree.tostring(evil)


def with_doctype(document: bytes) -> bytes:
    """A DOCTYPE with an internal entity in front of a signed document."""
    text = document.decode()
    if text.startswith("<?xml"):
        text = text.split("?>", 1)[1]
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY who "attacker@evil.example">]>\n' + text
    ).encode()


def xsw_signature_copied_onto_evil_assertion(document: bytes, email: str) -> bytes:
    """The genuine Assertion replaced by an evil one that keeps its ID and signature."""
    root = etree.fromstring(document)
    genuine = root.find("saml:Assertion", NS)
    assert genuine is not None
    evil = _evil_copy(genuine, email, new_id=False)
    signature = genuine.find("ds:Signature", NS)
    assert signature is not None
    evil.find("saml:Issuer", NS).addnext(copy.deepcopy(signature))  # type: ignore[union-attr]
    root.replace(genuine, evil)
    return etree.tostring(root)
