"""services.api_tokens: one live SCIM token per tenant, Enterprise only, stored as a hash."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, select

from muster.db.tables import ApiTokenRow
from muster.db.unit_of_work import UnitOfWork
from muster.errors import ScimError
from muster.scim.records import TenantInfo
from muster.services import api_tokens, tenants
from tests.factories import given_tenant

pytestmark = pytest.mark.service

UowFactory = Callable[..., UnitOfWork]


def _refused(uow_factory: UowFactory, token: str | None) -> ScimError:
    with pytest.raises(ScimError) as caught:
        api_tokens.authenticate_token(uow_factory(), token)
    return caught.value


def test_issue_scim_token_turns_scim_on_and_authenticates(
    uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    issued = api_tokens.issue_scim_token(uow_factory(), tenant.slug)

    principal = api_tokens.authenticate_token(uow_factory(), issued.secret)

    assert issued.secret.startswith("mst_")
    assert issued.tenant.scim_enabled is True
    assert tenants.get_tenant(uow_factory(), tenant.slug).scim_enabled is True
    assert principal.tenant_id == tenant.tenant_id


def test_issuing_a_new_token_revokes_the_old_one(
    uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    old = api_tokens.issue_scim_token(uow_factory(), tenant.slug).secret

    new = api_tokens.issue_scim_token(uow_factory(), tenant.slug).secret

    assert new != old
    assert _refused(uow_factory, old).status == 401
    assert api_tokens.authenticate_token(uow_factory(), new).tenant_id == tenant.tenant_id


@pytest.mark.parametrize("plan", ["free", "business"])
def test_a_tenant_below_enterprise_cannot_get_a_token(uow_factory: UowFactory, plan: str) -> None:
    small = given_tenant(uow_factory(), plan=plan)

    with pytest.raises(ScimError) as caught:
        api_tokens.issue_scim_token(uow_factory(), small.slug)

    assert caught.value.status == 403
    assert "Enterprise plan" in caught.value.detail
    assert tenants.get_tenant(uow_factory(), small.slug).scim_enabled is False
    assert api_tokens.current_token(uow_factory(small.tenant_id)) is None


def test_issue_scim_token_for_an_unknown_slug_is_not_found(uow_factory: UowFactory) -> None:
    with pytest.raises(ScimError) as caught:
        api_tokens.issue_scim_token(uow_factory(), "nobody")

    assert caught.value.status == 404


def test_a_known_token_is_refused_with_403_once_scim_is_off(
    uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    token = api_tokens.issue_scim_token(uow_factory(), tenant.slug).secret

    api_tokens.turn_scim_off(uow_factory(), tenant.slug)

    error = _refused(uow_factory, token)
    assert error.status == 403
    assert "turned off" in error.detail


def test_turn_scim_off_switches_the_tenant_off(uow_factory: UowFactory, tenant: TenantInfo) -> None:
    api_tokens.issue_scim_token(uow_factory(), tenant.slug)

    api_tokens.turn_scim_off(uow_factory(), tenant.slug)

    assert tenants.get_tenant(uow_factory(), tenant.slug).scim_enabled is False


def test_a_token_is_refused_with_403_after_a_downgrade_from_enterprise(
    uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    token = api_tokens.issue_scim_token(uow_factory(), tenant.slug).secret

    tenants.set_tenant(uow_factory(), tenant.slug, plan="business")

    error = _refused(uow_factory, token)
    assert error.status == 403
    assert "Enterprise plan" in error.detail


def test_turning_scim_on_again_issues_a_working_token(
    uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    api_tokens.issue_scim_token(uow_factory(), tenant.slug)
    api_tokens.turn_scim_off(uow_factory(), tenant.slug)

    token = api_tokens.issue_scim_token(uow_factory(), tenant.slug).secret

    assert api_tokens.authenticate_token(uow_factory(), token).tenant_id == tenant.tenant_id


@pytest.mark.parametrize(
    "token",
    [None, "", "non-token", "mst_", "mst_nothex_abc", "mst_" + "0" * 32 + "_abc", "Bearer mst_abc"],
)
def test_authenticate_token_refuses_garbage_with_401(
    uow_factory: UowFactory, tenant: TenantInfo, token: str | None
) -> None:
    api_tokens.issue_scim_token(uow_factory(), tenant.slug)

    assert _refused(uow_factory, token).status == 401


def test_authenticate_token_refuses_a_mistyped_secret(
    uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    token = api_tokens.issue_scim_token(uow_factory(), tenant.slug).secret
    mistyped = token[:-1] + ("A" if token[-1] != "A" else "B")

    assert _refused(uow_factory, mistyped).status == 401


def test_a_token_cannot_be_replayed_against_another_tenant(
    uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    other = given_tenant(uow_factory())
    api_tokens.issue_scim_token(uow_factory(), other.slug)
    token = api_tokens.issue_scim_token(uow_factory(), tenant.slug).secret
    # Keep the secret, but name the other tenant in the token.
    forged = f"mst_{other.tenant_id.replace('-', '')}_{token.split('_', 2)[2]}"

    assert _refused(uow_factory, forged).status == 401


def test_token_is_stored_only_as_its_hash(
    engine: Engine, uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    token = api_tokens.issue_scim_token(uow_factory(), tenant.slug).secret
    secret_part = token.split("_", 2)[2]

    with engine.connect() as conn:
        rows = conn.execute(select(ApiTokenRow.__table__)).mappings().all()

    assert len(rows) == 1
    for column, value in rows[0].items():
        assert token not in str(value), column
        assert secret_part not in str(value), column
    assert rows[0]["token_hash"] == hashlib.sha256(token.encode()).hexdigest()


def test_current_token_describes_the_live_token_without_its_secret(
    uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    issued = api_tokens.issue_scim_token(uow_factory(), tenant.slug)

    info = api_tokens.current_token(uow_factory(tenant.tenant_id))

    assert info is not None
    assert info.prefix == issued.prefix
    assert issued.secret.split("_", 2)[2] not in info.prefix


def test_authenticating_records_when_the_token_was_last_used(
    uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    token = api_tokens.issue_scim_token(uow_factory(), tenant.slug).secret
    assert api_tokens.current_token(uow_factory(tenant.tenant_id)).last_used is None  # type: ignore[union-attr]

    principal = api_tokens.authenticate_token(uow_factory(), token)
    assert principal.is_use_stale
    api_tokens.record_token_use(uow_factory(tenant.tenant_id), principal)

    info = api_tokens.current_token(uow_factory(tenant.tenant_id))
    assert info is not None and info.last_used is not None
    again = api_tokens.authenticate_token(uow_factory(), token)
    assert not again.is_use_stale  # written at most once a minute
