"""given_admin stores a console admin with a password; ConsoleClient signs in and posts forms."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from starlette.testclient import TestClient

from muster.db.unit_of_work import UnitOfWork
from muster.services import admins
from tests.factories import suffix

PASSWORD = "correct horse battery staple"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')
IDP = "/console/settings/identity-providers"


def cheap_password_hasher() -> PasswordHasher:
    """argon2id at its lowest cost: the production profile costs ~0.1-0.5 s per hash here, and
    every console test signs in (one test checks the production parameters themselves)."""
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def given_admin(platform_uow: UnitOfWork, slug: str, *, password: str = PASSWORD) -> str:
    """Store an admin of the tenant with this password; return their email."""
    email = f"admin.{suffix()}@example.com"
    link = admins.create_admin(platform_uow, slug, email)
    admins.set_password(platform_uow, link.token, password, password)
    return email


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


class ConsoleClient:
    """A browser-like client of the console: keeps cookies and the page's CSRF token."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    def sign_in(self, email: str, password: str = PASSWORD) -> Any:
        page = self.client.get("/console/sign-in")
        response = self.client.post(
            "/console/sign-in",
            data={"csrf_token": csrf_of(page.text), "email": email, "password": password},
            follow_redirects=False,
        )
        if response.status_code == 303:
            self.csrf = csrf_of(self.client.get(IDP).text)
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True) -> Any:
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf_token", self.csrf)
        return self.client.post(path, data=form, follow_redirects=False)


def idp_metadata(
    *,
    entity_id: str = "http://www.okta.com/exk1fake",
    sso_url: str = "https://acme.okta.com/app/muster/exk1fake/sso/saml",
    days: int = 365,
) -> tuple[str, x509.Certificate]:
    """Okta-shaped IdP metadata with a fresh self-signed signing certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acme.okta.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    der = certificate.public_bytes(Encoding.DER)
    body = base64.encodebytes(der).decode()
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity_id}">
  <md:IDPSSODescriptor WantAuthnRequestsSigned="false"
      protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
        <ds:X509Data><ds:X509Certificate>{body}</ds:X509Certificate></ds:X509Data>
      </ds:KeyInfo>
    </md:KeyDescriptor>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified</md:NameIDFormat>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
        Location="{sso_url}"/>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
        Location="{sso_url}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
"""
    return xml, certificate
