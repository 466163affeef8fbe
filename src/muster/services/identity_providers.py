"""Settings → Identity Providers: SCIM status and token, access groups, SAML IdP settings."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from muster.db.unit_of_work import UnitOfWork
from muster.errors import ScimError
from muster.saml.assertions import AttributeNames
from muster.saml.idp_metadata import parse_idp_metadata
from muster.scim.records import TenantInfo
from muster.services.api_tokens import TokenInfo, current_token
from muster.services.clock import utcnow

MAX_GROUP_CHOICES = 500
# A SAML attribute Name as Okta lets admins type it (basic names and URIs).
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_.:/#-]{1,255}$")


@dataclass(frozen=True, slots=True)
class SamlSettings:
    """The tenant's SAML identity provider as stored."""

    idp_entity_id: str
    sso_url: str
    certificate_sha256: str
    certificate_not_after: datetime
    updated: datetime
    attributes: AttributeNames = field(default_factory=AttributeNames)

    @property
    def certificate_has_expired(self) -> bool:
        return self.certificate_not_after <= utcnow()


@dataclass(frozen=True, slots=True)
class IdentityProviderSettings:
    """Everything the Identity Providers page shows."""

    tenant: TenantInfo
    token: TokenInfo | None
    access_groups: list[tuple[str, str]]  # (group id, displayName)
    group_choices: list[str]  # displayNames to pick from (the first MAX_GROUP_CHOICES)
    saml: SamlSettings | None


def _saml(row: Any) -> SamlSettings | None:
    if row is None:
        return None
    return SamlSettings(
        idp_entity_id=row.idp_entity_id,
        sso_url=row.sso_url,
        certificate_sha256=row.certificate_sha256,
        certificate_not_after=row.certificate_not_after,
        updated=row.updated_at,
        attributes=attribute_names(row),
    )


def attribute_names(row: Any) -> AttributeNames:
    """The stored attribute names of a saml_settings row, defaults where none is set."""
    default = AttributeNames()
    return AttributeNames(
        given_name=row.attribute_given_name or default.given_name,
        family_name=row.attribute_family_name or default.family_name,
        email=row.attribute_email or default.email,
        groups=row.attribute_groups or default.groups,
    )


def identity_provider_settings(uow: UnitOfWork) -> IdentityProviderSettings:
    """Read the tenant's SCIM switch, live token, access groups and SAML settings."""
    token = current_token(uow)
    with uow.reading():
        assert uow.tenant_id is not None
        tenant = uow.tenants.get(uow.tenant_id)
        assert tenant is not None
        access = uow.identity_providers.access_groups()
        choices = uow.console.group_names(MAX_GROUP_CHOICES)
        saml = _saml(uow.identity_providers.saml_settings())
    return IdentityProviderSettings(tenant, token, access, choices, saml)


def add_access_group(uow: UnitOfWork, display_name: str) -> str:
    """Allow the members of a group (by displayName) to sign in; return its displayName."""
    with uow:
        group_id = uow.groups.holder_of_name(display_name.strip().lower())
        group = uow.groups.get(group_id) if group_id else None
        if group is None:
            raise ScimError(404, f"no group named {display_name.strip()!r}")
        uow.identity_providers.add_access_group(group.group_id, utcnow())
        uow.commit()
    return str(group.document["displayName"])


def remove_access_group(uow: UnitOfWork, group_id: str) -> None:
    """Stop using a group as an access group (its members keep access only through others)."""
    with uow:
        if not uow.identity_providers.remove_access_group(group_id):
            raise ScimError(404, "that group is not an access group")
        uow.commit()


def clear_access_groups(uow: UnitOfWork) -> None:
    """Remove every access group: everyone in the account may sign in again."""
    with uow:
        uow.identity_providers.clear_access_groups()
        uow.commit()


def save_saml_metadata(uow: UnitOfWork, xml: str) -> SamlSettings:
    """Parse pasted IdP metadata and store the IdP's entity ID, SSO URL and certificate."""
    metadata = parse_idp_metadata(xml)
    now = utcnow()
    with uow:
        uow.identity_providers.save_saml_settings(
            {
                "idp_entity_id": metadata.entity_id,
                "sso_url": metadata.sso_url,
                "certificate_pem": metadata.certificate_pem,
                "certificate_sha256": metadata.certificate_sha256,
                "certificate_not_after": metadata.certificate_not_after,
                "metadata_xml": xml,
                "updated_at": now,
            }
        )
        uow.commit()
    return SamlSettings(
        metadata.entity_id,
        metadata.sso_url,
        metadata.certificate_sha256,
        metadata.certificate_not_after,
        now,
    )


def remove_saml_settings(uow: UnitOfWork) -> None:
    """Forget the tenant's SAML identity provider."""
    with uow:
        uow.identity_providers.remove_saml_settings()
        uow.commit()


def save_attribute_names(
    uow: UnitOfWork, *, given_name: str, family_name: str, email: str, groups: str
) -> AttributeNames:
    """Set which assertion attributes carry the names, email and groups (blank: the default)."""
    values: dict[str, str | None] = {}
    for column, label, value in (
        ("attribute_given_name", "given name", given_name),
        ("attribute_family_name", "family name", family_name),
        ("attribute_email", "email", email),
        ("attribute_groups", "groups", groups),
    ):
        value = value.strip()
        if value and not ATTRIBUTE_NAME.match(value):
            raise ScimError.invalid_value(
                f"the {label} attribute name may hold letters, digits and _ . : / # - only"
            )
        values[column] = value or None
    with uow:
        row = uow.identity_providers.saml_settings()
        if row is None:
            raise ScimError(404, "paste the IdP metadata first")
        uow.identity_providers.save_saml_settings(values)
        saved = attribute_names(uow.identity_providers.saml_settings())
        uow.commit()
    return saved
