"""sign_in(identity) -> the person's user, or a refusal (NOT_IN_ACCESS_GROUPS, ...); JIT; sessions.

One decision for every sign-in path (SP-initiated, IdP-initiated): known and active → names
refreshed; unknown → created just in time if a seat is free; deactivated → refused; and, when
the tenant has access groups, membership by stored rows or by the assertion's group names.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from muster.db.unit_of_work import UnitOfWork
from muster.errors import ScimError
from muster.saml import assertions, service_provider
from muster.saml.assertions import AttributeNames, SsoIdentity
from muster.saml.refusals import Refusal, SamlRefusal
from muster.saml.service_provider import ServiceProvider
from muster.scim.resources import identity_email
from muster.scim.schemas import PATCH_OP_URN, USER_URN
from muster.services import sign_in_log, users
from muster.services.clock import utcnow
from muster.services.identity_providers import attribute_names
from muster.services.tenants import tenant_by_slug

REQUEST_LIFETIME = timedelta(minutes=10)  # an AuthnRequest must be answered within this
SESSION_LIFETIME = timedelta(hours=8)
MAX_SESSION_GROUPS = 200


@dataclass(frozen=True, slots=True)
class SsoTenant:
    """A tenant as its SAML endpoints see it."""

    tenant_id: str
    slug: str
    name: str
    sp: ServiceProvider
    attributes: AttributeNames = field(default_factory=AttributeNames)


@dataclass(frozen=True, slots=True)
class Admitted:
    """A sign-in that succeeded: `secret` goes into the cookie and is never stored."""

    secret: str
    user_id: str
    email: str
    is_new_user: bool


@dataclass(frozen=True, slots=True)
class Person:
    """The signed-in person on a later request."""

    user_id: str
    email: str
    display_name: str


def sso_tenant(platform_uow: UnitOfWork, slug: str, base_url: str) -> SsoTenant:
    """The tenant with this slug and its service provider (IdP metadata when configured)."""
    with platform_uow.reading():
        tenant = tenant_by_slug(platform_uow, slug)
        platform_uow.bind_tenant(tenant.tenant_id)
        saml = platform_uow.identity_providers.saml_settings()
    sp = service_provider.service_provider_for(
        base_url,
        tenant.slug,
        idp_metadata_xml=saml.metadata_xml if saml is not None else None,
        idp_entity_id=saml.idp_entity_id if saml is not None else None,
    )
    names = attribute_names(saml) if saml is not None else AttributeNames()
    return SsoTenant(tenant.tenant_id, tenant.slug, tenant.name, sp, names)


def start_sign_in(uow: UnitOfWork, sso: SsoTenant) -> str:
    """Issue an AuthnRequest, remember its ID, and return the IdP URL to redirect to."""
    if not sso.sp.idp_metadata_xml:
        raise SamlRefusal(Refusal.SAML_NOT_CONFIGURED)
    redirect = service_provider.authn_request(sso.sp)
    now = utcnow()
    with uow:
        uow.sso.add_request(redirect.request_id, now + REQUEST_LIFETIME)
        uow.commit()
    return redirect.url


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _use_once(uow: UnitOfWork, identity: SsoIdentity, now: datetime) -> None:
    """Consume the request answered and record the assertion ID, or refuse a replay."""
    with uow:
        # The request is used up here, so a second response to it is refused too.
        if identity.in_response_to is not None and not uow.sso.take_request(
            identity.in_response_to, now
        ):
            raise SamlRefusal(Refusal.UNKNOWN_REQUEST, "InResponseTo names no request we issued")
        # The replay check: the assertion ID's primary key holds across processes; kept until
        # the assertion expires, after which the time check refuses it anyway.
        if not uow.sso.remember_assertion(identity.assertion_id, identity.expires_at):
            raise SamlRefusal(Refusal.REPLAYED, "this assertion was already used")
        uow.sso.prune(now)
        uow.commit()


def _has_access(
    uow: UnitOfWork, user_id: str | None, group_names: Any, access: list[tuple[str, str]]
) -> bool:
    """Inside a transaction: no access groups, or a member by stored row or assertion name."""
    if not access:
        return True
    keys = {key for _, key in access}
    if any(str(name).lower() in keys for name in group_names):
        return True
    return user_id is not None and uow.sso.is_member_of_any(user_id, [gid for gid, _ in access])


def _jit_payload(identity: SsoIdentity, *, with_names: bool) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "schemas": [USER_URN],
        "userName": identity.email,
        "emails": [{"value": identity.email, "type": "work", "primary": True}],
        "active": True,
    }
    name = {
        k: v
        for k, v in (("givenName", identity.given_name), ("familyName", identity.family_name))
        if v
    }
    if with_names and name:
        payload["name"] = name
        payload["displayName"] = " ".join(name.values())
    return payload


def _create_just_in_time(uow: UnitOfWork, identity: SsoIdentity) -> tuple[str, str | None]:
    """Create the person (source sso), claiming a seat; returns (user id, note)."""
    note = None
    try:
        try:
            outcome = users.create_user(uow, _jit_payload(identity, with_names=True), source="sso")
        except ScimError as error:
            if error.status != 400:
                raise
            # The names break the name rules: the person still gets in, without them.
            note = f"names not stored: {error.detail}"
            outcome = users.create_user(uow, _jit_payload(identity, with_names=False), source="sso")
    except ScimError as error:
        if error.status == 403:
            raise SamlRefusal(Refusal.LICENSE_LIMIT, error.detail) from error
        if error.status == 409:
            raise SamlRefusal(Refusal.IDENTITY_CONFLICT, error.detail) from error
        raise SamlRefusal(Refusal.MISSING_EMAIL, error.detail) from error
    return outcome.user.user_id, note


def _refresh_names(
    uow: UnitOfWork, user_id: str, document: dict[str, Any], identity: SsoIdentity
) -> str | None:
    """Bring the stored names in line with the assertion, through the users service's rules."""
    current = document.get("name") or {}
    operations = [
        {"op": "replace", "path": f"name.{attribute}", "value": value}
        for attribute, value in (
            ("givenName", identity.given_name),
            ("familyName", identity.family_name),
        )
        if value and current.get(attribute) != value
    ]
    if not operations:
        return None
    try:
        users.patch_user(
            uow, user_id, {"schemas": [PATCH_OP_URN], "Operations": operations}, if_match=None
        )
    except ScimError as error:
        # Name rules apply: names that break them are not stored; the person still gets in.
        return f"names not refreshed: {error.detail}"
    return None


def sign_in(uow: UnitOfWork, identity: SsoIdentity) -> tuple[str, bool, str | None]:
    """Decide whether the person may sign in; returns (user id, created just now, note)."""
    email_key = identity.email.lower()
    with uow.reading():
        user_id = uow.users.id_by_email(email_key)
        user = uow.users.get(user_id) if user_id is not None else None
        access = uow.sso.access_groups()
        allowed = _has_access(uow, user.user_id if user else None, identity.groups, access)
    if user is not None and not user.active:
        raise SamlRefusal(Refusal.USER_DEACTIVATED)
    if not allowed:
        raise SamlRefusal(Refusal.NOT_IN_ACCESS_GROUPS)
    if user is None:
        try:
            created_id, note = _create_just_in_time(uow, identity)
        except SamlRefusal as refusal:
            if refusal.code is not Refusal.IDENTITY_CONFLICT:
                raise
            # Two first sign-ins of one person at once: the other just created them. Decide
            # again as for a known user (this pass cannot come back here: the user exists).
            with uow.reading():
                exists = uow.users.id_by_email(email_key) is not None
            if not exists:
                raise
            return sign_in(uow, identity)
        return created_id, True, note
    return user.user_id, False, _refresh_names(uow, user.user_id, user.document, identity)


def _open_session(uow: UnitOfWork, user_id: str, identity: SsoIdentity, now: datetime) -> str:
    secret = secrets.token_urlsafe(32)
    names = sorted({g.lower()[:255] for g in identity.groups})[:MAX_SESSION_GROUPS]
    expires_at = now + SESSION_LIFETIME
    if identity.session_not_on_or_after is not None:
        # Okta's own session limit for this sign-in, when it sets one, ends ours too.
        expires_at = min(expires_at, identity.session_not_on_or_after)
    with uow:
        uow.sso.add_session(
            {
                "id": _hash(secret),
                "user_id": user_id,
                "groups": names,
                "created_at": now,
                "expires_at": expires_at,
            }
        )
        uow.sso.prune_sessions(now)
        uow.commit()
    return secret


def sign_in_with_response(uow: UnitOfWork, sso: SsoTenant, saml_response: str) -> Admitted:
    """Validate a SAMLResponse, decide, open a session; every attempt goes to the sign-in log."""
    now = utcnow()
    email: str | None = None
    flow = "idp"
    try:
        identity = assertions.validate_response(
            saml_response, sso.sp, now=now, attributes=sso.attributes
        )
        email, flow = identity.email, "sp" if identity.in_response_to else "idp"
        _use_once(uow, identity, now)
        user_id, is_new, note = sign_in(uow, identity)
        secret = _open_session(uow, user_id, identity, now)
    except SamlRefusal as refusal:
        sign_in_log.record_attempt(
            uow, at=now, email=email, code=refusal.code, detail=refusal.detail, flow=flow
        )
        raise
    detail = "created just in time" if is_new else None
    sign_in_log.record_attempt(
        uow,
        at=now,
        email=email,
        code=None,
        detail="; ".join(d for d in (detail, note) if d) or None,
        flow=flow,
        user_id=user_id,
    )
    return Admitted(secret, user_id, identity.email, is_new)


def current_person(uow: UnitOfWork, secret: str | None) -> Person | None:
    """The person a session cookie names, checked again now: still there, active, allowed."""
    if not secret or len(secret) > 128:
        return None
    session_hash = _hash(secret)
    with uow.reading():
        row = uow.sso.session(session_hash, utcnow())
        if row is None:  # unknown, expired, signed out, or the user was deleted (cascade)
            return None
        allowed = bool(row.active) and _has_access(
            uow, row.user_id, row.groups or [], uow.sso.access_groups()
        )
    if not allowed:
        # Deactivated, or no longer in any access group: the session ends for good.
        sign_out(uow, secret)
        return None
    document: dict[str, Any] = row.document
    email = identity_email(document) or str(document.get("userName", ""))
    name = document.get("name") or {}
    full = " ".join(p for p in (name.get("givenName"), name.get("familyName")) if p)
    return Person(row.user_id, email, str(document.get("displayName") or full or email))


def sign_out(uow: UnitOfWork, secret: str) -> None:
    """End the session this cookie's secret opened."""
    with uow:
        uow.sso.remove_session(_hash(secret))
        uow.commit()
