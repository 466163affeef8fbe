"""services.tenants: customer accounts, plans and seat limits."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from muster.db.unit_of_work import UnitOfWork
from muster.errors import ScimError, ScimType
from muster.services import tenants
from tests.factories import given_tenant, suffix

pytestmark = pytest.mark.service

UowFactory = Callable[..., UnitOfWork]


def test_create_tenant_starts_free_with_scim_off(uow_factory: UowFactory) -> None:
    slug = f"acme-{suffix()}"

    created = tenants.create_tenant(uow_factory(), slug)

    assert (created.slug, created.name, created.plan) == (slug, slug, "free")
    assert (created.seat_limit, created.seats_used) == (tenants.DEFAULT_SEATS, 0)
    assert created.scim_enabled is False
    assert tenants.get_tenant(uow_factory(), slug) == created


def test_create_tenant_keeps_name_plan_and_seats(uow_factory: UowFactory) -> None:
    created = tenants.create_tenant(
        uow_factory(), f"acme-{suffix()}", name="Acme Corp", plan="enterprise", seats=3
    )

    assert (created.name, created.plan, created.seat_limit) == ("Acme Corp", "enterprise", 3)


@pytest.mark.parametrize("slug", ["acme_corp", "Acme", "-acme", "acme-", "", "a" * 64, "ac me"])
def test_create_tenant_rejects_a_slug_that_cannot_be_a_url_part(
    uow_factory: UowFactory, slug: str
) -> None:
    with pytest.raises(ScimError) as caught:
        tenants.create_tenant(uow_factory(), slug)

    assert caught.value.scim_type == ScimType.INVALID_VALUE
    assert tenants.list_tenants(uow_factory()) == []


def test_create_tenant_rejects_a_taken_slug(uow_factory: UowFactory) -> None:
    existing = given_tenant(uow_factory())

    with pytest.raises(ScimError) as caught:
        tenants.create_tenant(uow_factory(), existing.slug)

    assert caught.value.status == 409
    assert existing.slug in caught.value.detail


def test_create_tenant_rejects_an_unknown_plan(uow_factory: UowFactory) -> None:
    with pytest.raises(ScimError) as caught:
        tenants.create_tenant(uow_factory(), f"acme-{suffix()}", plan="platinum")

    assert caught.value.scim_type == ScimType.INVALID_VALUE
    assert "platinum" in caught.value.detail


def test_create_tenant_rejects_negative_seats(uow_factory: UowFactory) -> None:
    with pytest.raises(ScimError) as caught:
        tenants.create_tenant(uow_factory(), f"acme-{suffix()}", seats=-1)

    assert caught.value.scim_type == ScimType.INVALID_VALUE


def test_list_tenants_orders_by_slug(uow_factory: UowFactory) -> None:
    for slug in ("zeta", "alpha", "mid"):
        tenants.create_tenant(uow_factory(), slug)

    assert [t.slug for t in tenants.list_tenants(uow_factory())] == ["alpha", "mid", "zeta"]


def test_get_tenant_of_an_unknown_slug_is_not_found(uow_factory: UowFactory) -> None:
    with pytest.raises(ScimError) as caught:
        tenants.get_tenant(uow_factory(), "nobody")

    assert caught.value.status == 404


def test_set_tenant_changes_plan_and_seats(uow_factory: UowFactory) -> None:
    existing = given_tenant(uow_factory(), plan="free", seats=5)

    changed = tenants.set_tenant(uow_factory(), existing.slug, plan="business", seats=9)

    assert (changed.plan, changed.seat_limit) == ("business", 9)
    assert tenants.get_tenant(uow_factory(), existing.slug) == changed


def test_set_tenant_leaves_what_it_is_not_given(uow_factory: UowFactory) -> None:
    existing = given_tenant(uow_factory(), plan="enterprise", seats=5)

    changed = tenants.set_tenant(uow_factory(), existing.slug, seats=7)

    assert (changed.plan, changed.seat_limit) == ("enterprise", 7)


def test_set_tenant_of_an_unknown_slug_is_not_found(uow_factory: UowFactory) -> None:
    with pytest.raises(ScimError) as caught:
        tenants.set_tenant(uow_factory(), "nobody", seats=3)

    assert caught.value.status == 404


def test_set_tenant_rejects_an_unknown_plan_and_changes_nothing(uow_factory: UowFactory) -> None:
    existing = given_tenant(uow_factory(), plan="free")

    with pytest.raises(ScimError):
        tenants.set_tenant(uow_factory(), existing.slug, plan="platinum", seats=3)

    assert tenants.get_tenant(uow_factory(), existing.slug) == existing


def test_is_empty_until_the_first_tenant(uow_factory: UowFactory) -> None:
    assert tenants.is_empty(uow_factory()) is True

    given_tenant(uow_factory())

    assert tenants.is_empty(uow_factory()) is False
