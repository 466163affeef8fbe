"""sign_in(identity): the one decision every SAML sign-in path takes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from muster.db.unit_of_work import UnitOfWork
from muster.saml.assertions import SsoIdentity
from muster.saml.refusals import Refusal, SamlRefusal
from muster.scim.records import TenantInfo
from muster.services import groups, identity_providers, sign_in, tenants, users
from muster.services.clock import utcnow
from tests.factories import given_user, suffix
from tests.group_factories import given_group

pytestmark = pytest.mark.service
UowFactory = Callable[..., UnitOfWork]


def identity(email: str = "ann.lee@example.com", **overrides: Any) -> SsoIdentity:
    values: dict[str, Any] = {
        "email": email,
        "given_name": "Ann",
        "family_name": "Lee",
        "groups": (),
        "assertion_id": f"id{suffix()}",
        "in_response_to": None,
        "expires_at": utcnow() + timedelta(minutes=5),
    }
    values.update(overrides)
    return SsoIdentity(**values)


def refusal_of(uow: UnitOfWork, who: SsoIdentity) -> Refusal:
    with pytest.raises(SamlRefusal) as refused:
        sign_in.sign_in(uow, who)
    return refused.value.code


def test_an_unknown_person_is_created_just_in_time_with_source_sso(uow: UnitOfWork) -> None:
    user_id, is_new, note = sign_in.sign_in(uow, identity("New@Example.com"))

    created = users.get_user(uow, user_id)
    assert is_new and note is None
    assert created.source == "sso" and created.active
    assert created.document["userName"] == "New@Example.com"


def test_a_known_person_is_found_ignoring_case(uow: UnitOfWork) -> None:
    known = given_user(uow, email="Ann.Lee@Example.COM")

    user_id, is_new, _ = sign_in.sign_in(uow, identity("ann.lee@example.com"))

    assert (user_id, is_new) == (known.user_id, False)


def test_a_deactivated_user_is_refused_even_inside_an_access_group(uow: UnitOfWork) -> None:
    given_user(uow, email="ann.lee@example.com", active=False)
    given_group(uow, displayName="Staff")
    identity_providers.add_access_group(uow, "Staff")

    assert refusal_of(uow, identity(groups=("Staff",))) is Refusal.USER_DEACTIVATED


def test_access_groups_are_checked_before_a_seat_is_taken(
    uow: UnitOfWork, uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    given_group(uow, displayName="Staff")
    identity_providers.add_access_group(uow, "Staff")

    assert refusal_of(uow, identity(groups=("Guests",))) is Refusal.NOT_IN_ACCESS_GROUPS
    assert tenants.get_tenant(uow_factory(), tenant.slug).seats_used == 0


def test_a_full_account_refuses_new_people_but_admits_known_ones(
    uow: UnitOfWork, uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    given_user(uow, email="ann.lee@example.com")
    tenants.set_tenant(uow_factory(), tenant.slug, seats=1)

    assert refusal_of(uow, identity("bob@example.com")) is Refusal.LICENSE_LIMIT
    assert sign_in.sign_in(uow, identity("ann.lee@example.com"))[1] is False


def test_stored_membership_in_any_access_group_admits(uow: UnitOfWork) -> None:
    given_user(uow, email="ann.lee@example.com")
    given_group(uow, displayName="Staff")
    given_group(uow, displayName="Contractors")
    groups.add_manual_member(uow, "Contractors", "ann.lee@example.com")
    identity_providers.add_access_group(uow, "Staff")
    identity_providers.add_access_group(uow, "Contractors")

    assert sign_in.sign_in(uow, identity())[1] is False


def test_two_first_sign_ins_at_once_both_get_the_one_user(
    uow: UnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_create = sign_in._create_just_in_time

    def another_process_won(uow: UnitOfWork, who: SsoIdentity) -> tuple[str, str | None]:
        real_create(uow, who)  # the other sign-in creates the person first...
        raise SamlRefusal(Refusal.IDENTITY_CONFLICT, "userName is already in use")

    monkeypatch.setattr(sign_in, "_create_just_in_time", another_process_won)

    user_id, is_new, _ = sign_in.sign_in(uow, identity())

    assert is_new is False
    assert users.get_user(uow, user_id).document["userName"] == "ann.lee@example.com"
