"""services.api_tokens: the events API key lives apart from the SCIM token, of any plan."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, select

from muster.db.tables import ApiTokenRow
from muster.db.unit_of_work import UnitOfWork
from muster.errors import ScimError
from muster.scim.records import TenantInfo
from muster.services import api_tokens, events
from tests.factories import given_tenant

pytestmark = pytest.mark.service

UowFactory = Callable[..., UnitOfWork]


def _refused(authenticate: Callable[..., object], uow_factory: UowFactory, key: str) -> ScimError:
    with pytest.raises(ScimError) as caught:
        authenticate(uow_factory(), key)
    return caught.value


def test_an_issued_events_key_authenticates_to_its_tenant(
    uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    issued = api_tokens.issue_events_key(uow_factory(), tenant.slug)

    principal = api_tokens.authenticate_events_key(uow_factory(), issued.secret)

    assert issued.secret.startswith(f"mev_{tenant.tenant_id.replace('-', '')}_")
    assert issued.prefix.startswith("mev_…") and issued.replaced is None
    assert (principal.tenant_id, principal.kind) == (tenant.tenant_id, "events")


@pytest.mark.parametrize("plan", ["free", "business"])
def test_any_plan_may_have_an_events_key(uow_factory: UowFactory, plan: str) -> None:
    small = given_tenant(uow_factory(), plan=plan)

    issued = api_tokens.issue_events_key(uow_factory(), small.slug)

    assert api_tokens.authenticate_events_key(uow_factory(), issued.secret).tenant_id == (
        small.tenant_id
    )


def test_issuing_again_replaces_the_previous_key_at_once(
    uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    first = api_tokens.issue_events_key(uow_factory(), tenant.slug)
    second = api_tokens.issue_events_key(uow_factory(), tenant.slug)

    refusal = _refused(api_tokens.authenticate_events_key, uow_factory, first.secret)
    assert refusal.status == 401
    assert second.replaced == first.prefix
    assert api_tokens.authenticate_events_key(uow_factory(), second.secret).tenant_id == (
        tenant.tenant_id
    )
    with uow_factory(tenant.tenant_id).reading() as uow:
        types = [(e.type, (e.data or {}).get("prefix")) for e in uow.events.after(0, 100)]
    assert types == [
        (events.EVENTS_KEY_ISSUED, first.prefix),
        (events.EVENTS_KEY_REVOKED, first.prefix),
        (events.EVENTS_KEY_ISSUED, second.prefix),
    ]


def test_revoking_stops_the_key_and_says_which(uow_factory: UowFactory, tenant: TenantInfo) -> None:
    issued = api_tokens.issue_events_key(uow_factory(), tenant.slug)

    revoked = api_tokens.revoke_events_key(uow_factory(), tenant.slug)
    again = api_tokens.revoke_events_key(uow_factory(), tenant.slug)

    assert revoked == issued.prefix and again is None
    assert _refused(api_tokens.authenticate_events_key, uow_factory, issued.secret).status == 401
    assert api_tokens.current_events_key(uow_factory(tenant.tenant_id)) is None


def test_a_scim_token_is_never_an_events_key_nor_the_other_way_round(
    uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    scim = api_tokens.issue_scim_token(uow_factory(), tenant.slug).secret
    key = api_tokens.issue_events_key(uow_factory(), tenant.slug).secret

    assert _refused(api_tokens.authenticate_events_key, uow_factory, scim).status == 401
    assert _refused(api_tokens.authenticate_token, uow_factory, key).status == 401
    # The statements themselves filter by kind, not only the mst_/mev_ prefixes: a unit of
    # work already bound to the tenant skips the prefix and still finds no row of the other kind.
    assert _refused(api_tokens.authenticate_token, lambda: uow_factory(tenant.tenant_id), key)
    with uow_factory(tenant.tenant_id).reading() as uow:
        assert uow.tokens.find_active(hashlib.sha256(key.encode()).hexdigest()) is None
        assert uow.events_keys.find_active(hashlib.sha256(scim.encode()).hexdigest()) is None


def test_issuing_or_revoking_one_kind_never_touches_the_other(
    uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    scim = api_tokens.issue_scim_token(uow_factory(), tenant.slug)
    key = api_tokens.issue_events_key(uow_factory(), tenant.slug)

    api_tokens.issue_scim_token(uow_factory(), tenant.slug)  # replaces the SCIM token only
    assert api_tokens.authenticate_events_key(uow_factory(), key.secret).kind == "events"
    newer = api_tokens.issue_events_key(uow_factory(), tenant.slug)  # replaces the key only
    scim_now = api_tokens.issue_scim_token(uow_factory(), tenant.slug)
    api_tokens.revoke_events_key(uow_factory(), tenant.slug)

    assert api_tokens.authenticate_token(uow_factory(), scim_now.secret).kind == "scim"
    assert _refused(api_tokens.authenticate_token, uow_factory, scim.secret).status == 401
    assert _refused(api_tokens.authenticate_events_key, uow_factory, newer.secret).status == 401
    current = api_tokens.current_token(uow_factory(tenant.tenant_id))
    assert current is not None and current.prefix == scim_now.prefix
    assert api_tokens.current_events_key(uow_factory(tenant.tenant_id)) is None


def test_the_key_is_stored_only_as_its_hash_with_kind_events(
    uow_factory: UowFactory, tenant: TenantInfo, engine: Engine
) -> None:
    key = api_tokens.issue_events_key(uow_factory(), tenant.slug).secret

    with engine.connect() as conn:
        rows = conn.execute(select(ApiTokenRow.__table__)).mappings().all()

    assert [row["kind"] for row in rows] == ["events"]
    assert rows[0]["token_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert all(key.split("_", 2)[2] not in str(value) for value in rows[0].values())


def test_a_key_of_another_tenant_or_mistyped_is_refused(
    uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    other = given_tenant(uow_factory())
    key = api_tokens.issue_events_key(uow_factory(), tenant.slug).secret
    theirs_hex = other.tenant_id.replace("-", "")
    forged = f"mev_{theirs_hex}_{key.split('_', 2)[2]}"  # our secret, their tenant

    for bad in (forged, key[:-1] + ("A" if key[-1] != "A" else "B"), "mev_", "nonsense"):
        assert _refused(api_tokens.authenticate_events_key, uow_factory, bad).status == 401


def test_use_is_recorded_at_most_once_a_minute(uow_factory: UowFactory, tenant: TenantInfo) -> None:
    issued = api_tokens.issue_events_key(uow_factory(), tenant.slug)
    principal = api_tokens.authenticate_events_key(uow_factory(), issued.secret)
    assert principal.is_use_stale

    api_tokens.record_token_use(uow_factory(tenant.tenant_id), principal)

    info = api_tokens.current_events_key(uow_factory(tenant.tenant_id))
    assert info is not None and info.last_used is not None and info.prefix == issued.prefix
    assert not api_tokens.authenticate_events_key(uow_factory(), issued.secret).is_use_stale
    assert api_tokens.current_token(uow_factory(tenant.tenant_id)) is None  # no SCIM row touched
