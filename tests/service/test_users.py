"""services.users: uniqueness, identity, seats, deactivate and revive, tenant isolation."""

from __future__ import annotations

import dataclasses
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from muster.db.repositories import UserRepository
from muster.db.unit_of_work import UnitOfWork
from muster.errors import ScimError, ScimType
from muster.scim import resources
from muster.scim.listing import ListQuery, parse_filter
from muster.scim.records import StoredUser, TenantInfo
from muster.scim.resources import MAX_MULTI_VALUES
from muster.scim.schemas import USER_ATTRIBUTES
from muster.services import tenants, users
from tests.factories import (
    ENTERPRISE_URN,
    USER_URN,
    build_user,
    given_tenant,
    given_user,
    patch_op,
    suffix,
)

pytestmark = pytest.mark.service

UowFactory = Callable[..., UnitOfWork]


def _refused(call: Callable[..., Any], *args: Any, **kwargs: Any) -> ScimError:
    with pytest.raises(ScimError) as caught:
        call(*args, **kwargs)
    return caught.value


def _listed(
    uow: UnitOfWork, text: str | None = None, *, start: int = 1, count: int = 100
) -> tuple[int, list[StoredUser]]:
    return users.list_users(uow, ListQuery(parse_filter(text) if text else None, start, count))


def _seats_used(uow_factory: UowFactory, tenant: TenantInfo) -> int:
    return tenants.get_tenant(uow_factory(), tenant.slug).seats_used


def _small_tenant(uow_factory: UowFactory, seats: int) -> tuple[TenantInfo, UnitOfWork]:
    small = given_tenant(uow_factory(), seats=seats)
    return small, uow_factory(small.tenant_id)


def _deactivate(uow: UnitOfWork, user_id: str) -> StoredUser:
    return users.patch_user(
        uow, user_id, patch_op({"op": "replace", "value": {"active": False}}), if_match=None
    ).user


def _activate(uow: UnitOfWork, user_id: str) -> StoredUser:
    return users.patch_user(
        uow, user_id, patch_op({"op": "replace", "value": {"active": True}}), if_match=None
    ).user


def _put_body(user: StoredUser, **changes: Any) -> dict[str, Any]:
    """What Okta PUTs: the whole user as it read it, read-only attributes included."""
    body = {**user.document, "id": user.user_id, "meta": {"resourceType": "User"}, "groups": []}
    body.update(changes)
    return body


def _unchanged(uow: UnitOfWork, before: StoredUser) -> None:
    after = users.get_user(uow, before.user_id)
    assert after.document == before.document
    assert (after.active, after.version, after.last_modified) == (
        before.active,
        before.version,
        before.last_modified,
    )


# create_user


def test_create_user_stores_the_document_without_the_password(uow: UnitOfWork) -> None:
    body = build_user(email="ann.lee@example.com")

    outcome = users.create_user(uow, body)

    stored = users.get_user(uow, outcome.user.user_id)
    assert outcome.created is True
    assert stored.document["userName"] == "ann.lee@example.com"
    assert stored.document["name"] == body["name"]
    assert stored.active is True
    assert stored.version == 1
    assert "password" not in stored.document


def test_create_user_takes_a_seat(
    uow: UnitOfWork, uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    given_user(uow)

    assert _seats_used(uow_factory, tenant) == 1


def test_create_user_inactive_takes_no_seat(
    uow: UnitOfWork, uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    stored = given_user(uow, active=False)

    assert stored.active is False
    assert _seats_used(uow_factory, tenant) == 0


def test_create_user_rejects_a_user_name_differing_only_in_case(uow: UnitOfWork) -> None:
    given_user(
        uow, userName="Ann.Lee@example.com", emails=[{"value": "ann@one.example", "primary": True}]
    )

    error = _refused(
        users.create_user,
        uow,
        build_user(
            userName="ANN.LEE@EXAMPLE.COM", emails=[{"value": "ann@two.example", "primary": True}]
        ),
    )

    assert (error.status, error.scim_type) == (409, ScimType.UNIQUENESS)
    assert "userName" in error.detail


def test_create_user_rejects_an_email_held_by_another_user_ignoring_case(
    uow: UnitOfWork,
) -> None:
    given_user(uow, userName="ann", emails=[{"value": "Ann.Lee@Example.com", "primary": True}])

    error = _refused(
        users.create_user,
        uow,
        build_user(userName="annie", emails=[{"value": "ann.lee@EXAMPLE.com", "primary": True}]),
    )

    assert (error.status, error.scim_type) == (409, ScimType.UNIQUENESS)
    assert "email" in error.detail


def test_create_user_refused_as_duplicate_stores_nothing(
    uow: UnitOfWork, uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    first = given_user(uow)

    _refused(users.create_user, uow, build_user(email=first.document["userName"].upper()))

    assert _listed(uow)[0] == 1
    assert _seats_used(uow_factory, tenant) == 1


def test_create_user_allows_the_same_user_name_in_another_tenant(
    uow: UnitOfWork, uow_factory: UowFactory
) -> None:
    body = build_user()
    users.create_user(uow, body)
    other = given_tenant(uow_factory())

    outcome = users.create_user(uow_factory(other.tenant_id), body)

    assert outcome.created is True


def test_create_user_rejects_an_invalid_body(uow: UnitOfWork) -> None:
    error = _refused(users.create_user, uow, build_user(active="yes"))

    assert (error.status, error.scim_type) == (400, ScimType.INVALID_VALUE)
    assert _listed(uow)[0] == 0


def test_create_user_keeps_the_enterprise_extension(uow: UnitOfWork) -> None:
    extension = {"employeeNumber": "701984", "manager": {"value": "m-1"}}
    created = given_user(uow, schemas=[USER_URN, ENTERPRISE_URN], **{ENTERPRISE_URN: extension})

    assert users.get_user(uow, created.user_id).document[ENTERPRISE_URN] == extension


# identity: email and userName cannot change


def _assert_identity_refusal(error: ScimError) -> None:
    assert (error.status, error.scim_type) == (400, ScimType.MUTABILITY)
    detail = error.detail.lower()
    assert "delete the user" in detail
    assert "sign in with the new address" in detail


def test_replace_user_rejects_email_change(uow: UnitOfWork) -> None:
    user = given_user(uow, userName="ann", emails=[{"value": "ann@old.example", "primary": True}])

    error = _refused(
        users.replace_user,
        uow,
        user.user_id,
        _put_body(user, emails=[{"value": "ann@new.example", "primary": True}]),
        if_match=None,
    )

    _assert_identity_refusal(error)
    assert "email" in error.detail


def test_replace_user_rejects_user_name_change(uow: UnitOfWork) -> None:
    user = given_user(uow, userName="ann", emails=[{"value": "ann@old.example", "primary": True}])

    error = _refused(
        users.replace_user, uow, user.user_id, _put_body(user, userName="annie"), if_match=None
    )

    _assert_identity_refusal(error)
    assert "userName" in error.detail


def test_replace_user_rejects_a_new_identity_through_another_primary_email(
    uow: UnitOfWork,
) -> None:
    user = given_user(uow, userName="ann", emails=[{"value": "ann@old.example", "primary": True}])
    emails = [{"value": "ann@old.example"}, {"value": "ann@new.example", "primary": True}]

    error = _refused(
        users.replace_user, uow, user.user_id, _put_body(user, emails=emails), if_match=None
    )

    _assert_identity_refusal(error)


def test_patch_user_rejects_email_change_through_a_filtered_path(uow: UnitOfWork) -> None:
    user = given_user(uow, email="ann@old.example")  # primary work email

    error = _refused(
        users.patch_user,
        uow,
        user.user_id,
        patch_op(
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "ann@new.example"}
        ),
        if_match=None,
    )

    _assert_identity_refusal(error)


def test_patch_user_rejects_email_change_without_path(uow: UnitOfWork) -> None:
    user = given_user(uow, userName="ann", emails=[{"value": "ann@old.example", "primary": True}])

    error = _refused(
        users.patch_user,
        uow,
        user.user_id,
        patch_op(
            {"op": "replace", "value": {"emails": [{"value": "ann@new.example", "primary": True}]}}
        ),
        if_match=None,
    )

    _assert_identity_refusal(error)


def test_patch_user_rejects_user_name_change(uow: UnitOfWork) -> None:
    user = given_user(uow, userName="ann", emails=[{"value": "ann@old.example", "primary": True}])

    error = _refused(
        users.patch_user,
        uow,
        user.user_id,
        patch_op({"op": "replace", "path": "userName", "value": "annie"}),
        if_match=None,
    )

    _assert_identity_refusal(error)


def test_replace_user_accepts_a_case_only_change(uow: UnitOfWork) -> None:
    user = given_user(uow, email="ann.lee@example.com")

    outcome = users.replace_user(
        uow,
        user.user_id,
        _put_body(
            user,
            userName="Ann.Lee@Example.com",
            emails=[{"value": "ANN.LEE@example.com", "primary": True, "type": "work"}],
        ),
        if_match=None,
    )

    stored = users.get_user(uow, user.user_id)
    assert outcome.user.document["userName"] == "Ann.Lee@Example.com"
    assert stored.document["userName"] == "Ann.Lee@Example.com"
    assert stored.document["emails"][0]["value"] == "ANN.LEE@example.com"


def test_patch_user_accepts_a_case_only_user_name_change(uow: UnitOfWork) -> None:
    user = given_user(uow, email="ann.lee@example.com")

    users.patch_user(
        uow,
        user.user_id,
        patch_op({"op": "replace", "path": "userName", "value": "ANN.LEE@example.com"}),
        if_match=None,
    )

    assert users.get_user(uow, user.user_id).document["userName"] == "ANN.LEE@example.com"


def test_refused_replace_changes_nothing(
    uow: UnitOfWork, uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    user = given_user(uow, userName="ann", emails=[{"value": "ann@old.example", "primary": True}])
    before = users.get_user(uow, user.user_id)

    _refused(
        users.replace_user,
        uow,
        user.user_id,
        _put_body(
            user,
            active=False,
            displayName="Someone Else",
            emails=[{"value": "ann@new.example", "primary": True}],
        ),
        if_match=None,
    )

    _unchanged(uow, before)
    assert _seats_used(uow_factory, tenant) == 1


def test_refused_patch_changes_nothing(
    uow: UnitOfWork, uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    user = given_user(uow)
    before = users.get_user(uow, user.user_id)

    _refused(
        users.patch_user,
        uow,
        user.user_id,
        patch_op(
            {"op": "replace", "value": {"active": False}},
            {"op": "replace", "path": "displayName", "value": "Someone Else"},
            {"op": "replace", "path": "userName", "value": "someone.else@example.com"},
        ),
        if_match=None,
    )

    _unchanged(uow, before)
    assert _seats_used(uow_factory, tenant) == 1


def test_patch_failing_on_a_later_operation_changes_nothing(uow: UnitOfWork) -> None:
    user = given_user(uow)
    before = users.get_user(uow, user.user_id)

    error = _refused(
        users.patch_user,
        uow,
        user.user_id,
        patch_op(
            {"op": "replace", "path": "displayName", "value": "Changed"},
            {"op": "replace", "path": "meta.version", "value": 'W/"9"'},
        ),
        if_match=None,
    )

    assert error.scim_type == ScimType.MUTABILITY
    _unchanged(uow, before)


# replace and patch


def test_replace_user_ignores_read_only_attributes_echoed_by_okta(uow: UnitOfWork) -> None:
    user = given_user(uow)
    body = _put_body(
        user,
        id="not-the-id",
        displayName="Ann L.",
        name={"givenName": "Ann", "familyName": "Lee", "middleName": ""},
    )

    outcome = users.replace_user(uow, user.user_id, body, if_match=None)

    assert outcome.user.user_id == user.user_id
    assert outcome.user.version == user.version + 1
    stored = users.get_user(uow, user.user_id)
    assert stored.document["displayName"] == "Ann L."
    assert "id" not in stored.document
    assert "groups" not in stored.document


def test_replace_user_without_active_keeps_the_current_state(uow: UnitOfWork) -> None:
    user = given_user(uow)
    _deactivate(uow, user.user_id)
    body = _put_body(user)
    del body["active"]

    outcome = users.replace_user(uow, user.user_id, body, if_match=None)

    assert outcome.user.active is False
    assert users.get_user(uow, user.user_id).active is False


def test_replace_user_refuses_a_stale_if_match(uow: UnitOfWork) -> None:
    user = given_user(uow)
    before = users.get_user(uow, user.user_id)

    error = _refused(
        users.replace_user, uow, user.user_id, _put_body(user, displayName="X"), if_match='W/"0"'
    )

    assert error.status == 412
    _unchanged(uow, before)


def test_replace_user_accepts_the_current_if_match(uow: UnitOfWork) -> None:
    user = given_user(uow)

    outcome = users.replace_user(
        uow, user.user_id, _put_body(user, displayName="X"), if_match=f'W/"{user.version}"'
    )

    assert outcome.user.document["displayName"] == "X"


def test_patch_user_deactivates_with_an_entra_string_boolean(uow: UnitOfWork) -> None:
    user = given_user(uow)

    outcome = users.patch_user(
        uow,
        user.user_id,
        patch_op({"op": "Replace", "path": "active", "value": "False"}),
        if_match=None,
    )

    assert outcome.user.active is False
    assert users.get_user(uow, user.user_id).document["active"] is False
    assert "entra_capitalised_op" in outcome.quirks
    assert "entra_string_boolean" in outcome.quirks


def test_patch_user_adds_a_work_email_and_finds_the_user_by_it(uow: UnitOfWork) -> None:
    user = given_user(
        uow, userName="ann", emails=[{"value": "ann@home.example", "type": "home", "primary": True}]
    )

    users.patch_user(
        uow,
        user.user_id,
        patch_op(
            {"op": "Add", "path": 'emails[type eq "work"].value', "value": "ann@work.example"}
        ),
        if_match=None,
    )

    total, found = _listed(uow, 'emails.value eq "ANN@work.example"')
    assert (total, [u.user_id for u in found]) == (1, [user.user_id])


def test_patch_user_sets_a_password_without_keeping_it(uow: UnitOfWork) -> None:
    user = given_user(uow)

    users.patch_user(
        uow,
        user.user_id,
        patch_op({"op": "replace", "value": {"password": "s3cret-Pa55"}}),
        if_match=None,
    )

    assert "s3cret-Pa55" not in repr(users.get_user(uow, user.user_id).document)


def test_patch_user_rejects_a_name_with_symbols(uow: UnitOfWork) -> None:
    user = given_user(uow)

    error = _refused(
        users.patch_user,
        uow,
        user.user_id,
        patch_op({"op": "replace", "path": "name.familyName", "value": "Lee!"}),
        if_match=None,
    )

    assert (error.status, error.scim_type) == (400, ScimType.INVALID_VALUE)
    assert "name.familyName" in error.detail


# seats


def test_create_user_beyond_the_seat_limit_is_refused(uow_factory: UowFactory) -> None:
    small, uow = _small_tenant(uow_factory, seats=2)
    given_user(uow)
    given_user(uow)

    error = _refused(users.create_user, uow, build_user())

    assert error.status == 403
    assert "licence limit reached: 2 of 2 seats in use" in error.detail
    assert _listed(uow)[0] == 2
    assert _seats_used(uow_factory, small) == 2


def test_deactivation_frees_a_seat(uow_factory: UowFactory) -> None:
    small, uow = _small_tenant(uow_factory, seats=1)
    first = given_user(uow)

    _deactivate(uow, first.user_id)

    assert _seats_used(uow_factory, small) == 0
    assert users.create_user(uow, build_user()).user.active is True


def test_deactivating_twice_frees_only_one_seat(uow_factory: UowFactory) -> None:
    small, uow = _small_tenant(uow_factory, seats=2)
    first = given_user(uow)
    given_user(uow)

    _deactivate(uow, first.user_id)
    _deactivate(uow, first.user_id)

    assert _seats_used(uow_factory, small) == 1


def test_reactivation_needs_a_free_seat(uow_factory: UowFactory) -> None:
    small, uow = _small_tenant(uow_factory, seats=1)
    first = given_user(uow)
    _deactivate(uow, first.user_id)
    given_user(uow)
    before = users.get_user(uow, first.user_id)

    error = _refused(_activate, uow, first.user_id)

    assert error.status == 403
    assert "licence limit reached: 1 of 1 seats in use" in error.detail
    _unchanged(uow, before)
    assert _seats_used(uow_factory, small) == 1


def test_reactivation_through_put_needs_a_free_seat(uow_factory: UowFactory) -> None:
    _, uow = _small_tenant(uow_factory, seats=1)
    first = given_user(uow)
    _deactivate(uow, first.user_id)
    given_user(uow)
    current = users.get_user(uow, first.user_id)

    error = _refused(
        users.replace_user, uow, first.user_id, _put_body(current, active=True), if_match=None
    )

    assert error.status == 403
    _unchanged(uow, current)


def test_reactivation_takes_the_seat_back(uow_factory: UowFactory) -> None:
    small, uow = _small_tenant(uow_factory, seats=1)
    first = given_user(uow)
    _deactivate(uow, first.user_id)

    assert _activate(uow, first.user_id).active is True
    assert _seats_used(uow_factory, small) == 1
    assert _refused(users.create_user, uow, build_user()).status == 403


def test_delete_user_frees_the_seat(uow_factory: UowFactory) -> None:
    small, uow = _small_tenant(uow_factory, seats=1)
    first = given_user(uow)

    users.delete_user(uow, first.user_id)

    assert _seats_used(uow_factory, small) == 0
    assert _refused(users.get_user, uow, first.user_id).status == 404
    assert users.create_user(uow, build_user()).user.active is True


def test_deleting_a_deactivated_user_frees_no_other_seat(uow_factory: UowFactory) -> None:
    small, uow = _small_tenant(uow_factory, seats=2)
    first = given_user(uow)
    given_user(uow)
    _deactivate(uow, first.user_id)

    users.delete_user(uow, first.user_id)

    assert _seats_used(uow_factory, small) == 1


def test_lowering_the_seat_limit_below_use_admits_nobody_new(uow_factory: UowFactory) -> None:
    small, uow = _small_tenant(uow_factory, seats=2)
    given_user(uow)
    given_user(uow)

    tenants.set_tenant(uow_factory(), small.slug, seats=1)

    error = _refused(users.create_user, uow, build_user())
    assert "licence limit reached: 2 of 1 seats in use" in error.detail
    assert [u.active for u in _listed(uow)[1]] == [True, True]


# the deactivate / revive lifecycle


def test_deactivated_user_is_still_found_by_user_name(uow: UnitOfWork) -> None:
    user = given_user(uow, email="Ann.Lee@example.com")
    _deactivate(uow, user.user_id)

    total, found = _listed(uow, 'userName eq "ANN.LEE@EXAMPLE.COM"')

    assert total == 1
    assert found[0].user_id == user.user_id
    assert found[0].active is False


def test_create_user_revives_the_deactivated_user_with_the_same_id(
    uow: UnitOfWork, uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    body = build_user()
    user = users.create_user(uow, body).user
    _deactivate(uow, user.user_id)

    outcome = users.create_user(uow, {**body, "displayName": "Ann Again"})

    assert outcome.created is True
    assert outcome.user.user_id == user.user_id
    assert outcome.user.active is True
    assert outcome.user.created == user.created
    assert outcome.user.version > user.version
    stored = users.get_user(uow, user.user_id)
    assert (stored.active, stored.document["displayName"]) == (True, "Ann Again")
    assert _listed(uow)[0] == 1
    assert _seats_used(uow_factory, tenant) == 1


def test_create_user_revives_a_deactivated_user_matched_ignoring_case(uow: UnitOfWork) -> None:
    user = given_user(uow, email="ann.lee@example.com")
    _deactivate(uow, user.user_id)

    outcome = users.create_user(uow, build_user(email="ANN.LEE@example.com"))

    assert outcome.user.user_id == user.user_id


def test_reviving_a_user_needs_a_free_seat(uow_factory: UowFactory) -> None:
    _, uow = _small_tenant(uow_factory, seats=1)
    body = build_user()
    user = users.create_user(uow, body).user
    _deactivate(uow, user.user_id)
    given_user(uow)

    error = _refused(users.create_user, uow, body)

    assert error.status == 403
    assert users.get_user(uow, user.user_id).active is False


def test_create_user_still_refuses_a_duplicate_of_an_active_user(uow: UnitOfWork) -> None:
    body = build_user()
    users.create_user(uow, body)

    error = _refused(users.create_user, uow, body)

    assert (error.status, error.scim_type) == (409, ScimType.UNIQUENESS)


# tenant isolation


@pytest.fixture
def foreign_user(uow_factory: UowFactory) -> StoredUser:
    """A user of another tenant."""
    other = given_tenant(uow_factory())
    return given_user(uow_factory(other.tenant_id))


def _assert_not_found(error: ScimError) -> None:
    assert error.status == 404
    assert error.scim_type is None


def test_get_user_of_another_tenant_is_not_found(uow: UnitOfWork, foreign_user: StoredUser) -> None:
    _assert_not_found(_refused(users.get_user, uow, foreign_user.user_id))


def test_replace_user_of_another_tenant_is_not_found(
    uow: UnitOfWork, foreign_user: StoredUser
) -> None:
    _assert_not_found(
        _refused(
            users.replace_user,
            uow,
            foreign_user.user_id,
            _put_body(foreign_user, displayName="Hijacked"),
            if_match=None,
        )
    )


def test_patch_user_of_another_tenant_is_not_found(
    uow: UnitOfWork, foreign_user: StoredUser
) -> None:
    _assert_not_found(
        _refused(
            users.patch_user,
            uow,
            foreign_user.user_id,
            patch_op({"op": "replace", "value": {"active": False}}),
            if_match=None,
        )
    )


def test_delete_user_of_another_tenant_is_not_found(
    uow: UnitOfWork, uow_factory: UowFactory, foreign_user: StoredUser
) -> None:
    _assert_not_found(_refused(users.delete_user, uow, foreign_user.user_id))

    assert _owner_view(uow_factory, foreign_user).user_id == foreign_user.user_id


def test_other_tenants_user_survives_every_refused_write(
    uow: UnitOfWork, uow_factory: UowFactory, foreign_user: StoredUser
) -> None:
    for call, args in [
        (users.replace_user, (_put_body(foreign_user, displayName="Hijacked"),)),
        (users.patch_user, (patch_op({"op": "replace", "value": {"active": False}}),)),
        (users.delete_user, ()),
    ]:
        _refused(call, uow, foreign_user.user_id, *args, if_match=None)

    found = _owner_view(uow_factory, foreign_user)
    assert found.document == foreign_user.document
    assert found.active is True


def _owner_view(uow_factory: UowFactory, user: StoredUser) -> StoredUser:
    for candidate in tenants.list_tenants(uow_factory()):
        try:
            return users.get_user(uow_factory(candidate.tenant_id), user.user_id)
        except ScimError:
            continue
    raise AssertionError("the user vanished from every tenant")


def test_list_users_never_returns_other_tenants_users(
    uow: UnitOfWork, foreign_user: StoredUser
) -> None:
    mine = given_user(uow)

    total, found = _listed(uow)
    assert (total, [u.user_id for u in found]) == (1, [mine.user_id])
    by_name = _listed(uow, f'userName eq "{foreign_user.document["userName"]}"')
    assert by_name == (0, [])
    by_id = _listed(uow, f'id eq "{foreign_user.user_id}"')
    assert by_id == (0, [])


def test_create_user_ignores_other_tenants_users_for_uniqueness_and_revival(
    uow: UnitOfWork, uow_factory: UowFactory, foreign_user: StoredUser
) -> None:
    owner = _owner_view(uow_factory, foreign_user)

    outcome = users.create_user(uow, build_user(email=foreign_user.document["userName"]))

    assert outcome.user.user_id != foreign_user.user_id
    assert _owner_view(uow_factory, foreign_user).document == owner.document


# listing


def test_list_users_pages_in_a_stable_order(uow: UnitOfWork) -> None:
    created = [given_user(uow).user_id for _ in range(5)]

    first_total, first = _listed(uow, start=1, count=2)
    _, second = _listed(uow, start=3, count=2)
    _, third = _listed(uow, start=5, count=2)
    _, everything = _listed(uow)

    paged = [u.user_id for u in first + second + third]
    assert first_total == 5
    assert sorted(paged) == sorted(created)
    assert paged == [u.user_id for u in everything]


def test_list_users_past_the_end_is_an_empty_page(uow: UnitOfWork) -> None:
    given_user(uow)

    assert _listed(uow, start=10) == (1, [])


def test_list_users_count_zero_gives_only_the_total(uow: UnitOfWork) -> None:
    given_user(uow)
    given_user(uow)

    assert _listed(uow, count=0) == (2, [])


def test_list_users_by_user_name_with_count_zero_gives_the_total(uow: UnitOfWork) -> None:
    user = given_user(uow, email="ann.lee@example.com")
    _deactivate(uow, user.user_id)

    assert _listed(uow, 'userName eq "Ann.Lee@example.com"', count=0) == (1, [])


def test_list_users_by_user_name_past_the_match_still_totals_it(uow: UnitOfWork) -> None:
    given_user(uow, email="ann.lee@example.com")

    assert _listed(uow, 'userName eq "ann.lee@example.com"', start=2) == (1, [])


def test_list_users_by_user_name_with_another_operator_is_not_an_equality(uow: UnitOfWork) -> None:
    ann = given_user(uow, email="ann.lee@example.com")
    bob = given_user(uow, email="bob@example.com")

    total, found = _listed(uow, 'userName ne "ANN.LEE@example.com"')

    assert (total, [u.user_id for u in found]) == (1, [bob.user_id])
    assert _listed(uow, 'userName sw "ANN"')[1][0].user_id == ann.user_id


# concurrency: the unique indexes and the seat count are the last word


def _race(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls at once; return each one's result or the ScimError it raised."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        barrier.wait()
        try:
            return call()
        except ScimError as error:
            return error

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_concurrent_creates_of_one_user_make_one_and_refuse_the_rest_with_409(
    uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    body = build_user()

    results = _race(
        [lambda: users.create_user(uow_factory(tenant.tenant_id), body) for _ in range(6)]
    )

    errors = [r for r in results if isinstance(r, ScimError)]
    assert len(errors) == 5, results
    assert {(e.status, e.scim_type) for e in errors} == {(409, ScimType.UNIQUENESS)}
    assert _listed(uow_factory(tenant.tenant_id))[0] == 1
    assert _seats_used(uow_factory, tenant) == 1


def test_concurrent_creates_never_oversubscribe_the_seats(uow_factory: UowFactory) -> None:
    small = given_tenant(uow_factory(), seats=3)

    results = _race(
        [lambda: users.create_user(uow_factory(small.tenant_id), build_user()) for _ in range(8)]
    )

    refused = [r for r in results if isinstance(r, ScimError)]
    assert [r.status for r in refused] == [403] * 5, results
    assert _listed(uow_factory(small.tenant_id))[0] == 3
    assert _seats_used(uow_factory, small) == 3


def test_patch_user_deactivates_with_entra_add_op_and_string_false(
    uow: UnitOfWork, uow_factory: UowFactory, tenant: TenantInfo
) -> None:
    # Entra has been seen deprovisioning with op "Add" (rancher#54025).
    user = given_user(uow)

    outcome = users.patch_user(
        uow,
        user.user_id,
        patch_op({"op": "Add", "path": "active", "value": "False"}),
        if_match=None,
    )

    assert outcome.user.active is False
    assert _seats_used(uow_factory, tenant) == 0


def test_patch_user_resending_the_current_email_is_not_a_change_of_identity(
    uow: UnitOfWork,
) -> None:
    user = given_user(uow, email="ann.lee@example.com")

    outcome = users.patch_user(
        uow,
        user.user_id,
        patch_op(
            {
                "op": "Replace",
                "path": 'emails[type eq "work"].value',
                "value": "Ann.Lee@Example.com",
            },
            {"op": "Replace", "path": "name.givenName", "value": "Annabel"},
        ),
        if_match=None,
    )

    assert outcome.user.document["name"]["givenName"] == "Annabel"
    assert outcome.user.document["emails"][0]["value"] == "Ann.Lee@Example.com"


def test_profile_updates_of_active_users_need_no_free_seat(uow_factory: UowFactory) -> None:
    _, uow = _small_tenant(uow_factory, seats=1)
    user = given_user(uow)

    replaced = users.replace_user(
        uow, user.user_id, _put_body(user, displayName="Ann L."), if_match=None
    )
    patched = users.patch_user(
        uow,
        user.user_id,
        patch_op({"op": "replace", "value": {"active": True, "title": "Guide"}}),
        if_match=None,
    )

    assert replaced.user.active is True
    assert patched.user.document["title"] == "Guide"


def test_create_user_refuses_to_revive_a_deactivated_user_under_another_email(
    uow: UnitOfWork,
) -> None:
    # Reviving keeps the id; it must not let a POST rewrite a deactivated person's identity.
    old = given_user(uow, email="ann@example.com")
    users.patch_user(
        uow, old.user_id, patch_op({"op": "replace", "value": {"active": False}}), if_match=None
    )
    body = build_user(email="ann.new@example.com")
    body["userName"] = "ann@example.com"

    with pytest.raises(ScimError) as refused:
        users.create_user(uow, body)

    assert refused.value.status == 409
    assert refused.value.scim_type == ScimType.UNIQUENESS
    assert "delete" in refused.value.detail
    kept = users.get_user(uow, old.user_id)
    assert kept.active is False
    assert kept.document["emails"][0]["value"] == "ann@example.com"


def _reads_a_stale_version(monkeypatch: pytest.MonkeyPatch, repository: type) -> None:
    """Make `get` answer what a reader saw just before another writer's commit."""
    read = repository.get

    def stale(self: Any, resource_id: str, *, for_update: bool = False) -> Any:
        found = read(self, resource_id, for_update=for_update)
        return dataclasses.replace(found, version=found.version - 1) if found else None

    monkeypatch.setattr(repository, "get", stale)


@pytest.mark.parametrize("write", ["put", "patch", "delete"])
def test_a_write_checks_the_version_in_the_statement_that_writes(
    uow: UnitOfWork, monkeypatch: pytest.MonkeyPatch, write: str
) -> None:
    user = _deactivate(uow, given_user(uow).user_id)  # version 2, so the stale read says 1
    _reads_a_stale_version(monkeypatch, UserRepository)
    if_match = 'W/"1"'  # matches what was read, not what is stored
    calls: dict[str, Callable[[], Any]] = {
        "put": lambda: users.replace_user(uow, user.user_id, _put_body(user), if_match=if_match),
        "patch": lambda: users.patch_user(
            uow,
            user.user_id,
            patch_op({"op": "replace", "path": "title", "value": "X"}),
            if_match=if_match,
        ),
        "delete": lambda: users.delete_user(uow, user.user_id, if_match=if_match),
    }
    error = _refused(calls[write])
    assert error.status == 412 and "changed by another request" in error.detail
    monkeypatch.undo()
    _unchanged(uow, user)


# bounded cost (issue 13)


def test_patch_user_refuses_more_emails_than_the_limit(uow: UnitOfWork) -> None:
    # Issue 13: a PATCH adding ~90,000 distinct values to emails (615 KiB) ran 36 s in a
    # quadratic duplicate check. It is refused for its size now, and changes nothing.
    user = given_user(uow)
    values = [f"e{i}" for i in range(90_000)]

    error = _refused(
        users.patch_user,
        uow,
        user.user_id,
        patch_op({"op": "add", "path": "emails", "value": values}),
        if_match=None,
    )

    assert (error.status, error.scim_type) == (400, ScimType.INVALID_VALUE)
    assert f"emails has 90000 values; at most {MAX_MULTI_VALUES}" in error.detail
    assert users.get_user(uow, user.user_id).document == user.document


def test_patch_user_adds_emails_up_to_the_limit_and_finds_the_user_by_the_last(
    uow: UnitOfWork,
) -> None:
    user = given_user(uow)
    values = [{"value": f"alias{i}@example.com", "type": "other"} for i in range(99)]

    users.patch_user(
        uow, user.user_id, patch_op({"op": "add", "path": "emails", "value": values}), if_match=None
    )

    assert len(users.get_user(uow, user.user_id).document["emails"]) == MAX_MULTI_VALUES
    assert _listed(uow, 'emails.value eq "alias98@example.com"')[0] == 1


def test_create_user_refuses_more_phone_numbers_than_the_limit(uow: UnitOfWork) -> None:
    phones = [{"value": f"+1 555 {i:07d}"} for i in range(MAX_MULTI_VALUES + 1)]

    error = _refused(users.create_user, uow, build_user(phoneNumbers=phones))

    assert error.scim_type == ScimType.INVALID_VALUE and "phoneNumbers" in error.detail
    assert _listed(uow)[0] == 0


def test_a_user_stored_with_more_values_than_the_limit_can_still_be_deactivated(
    uow: UnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    phones = [{"value": f"+1 555 {i:07d}"} for i in range(MAX_MULTI_VALUES + 5)]
    with monkeypatch.context() as before_the_limit:
        before_the_limit.setattr(resources, "MAX_MULTI_VALUES", 1000)
        user = given_user(uow, phoneNumbers=phones)

    deactivated = _deactivate(uow, user.user_id)

    assert deactivated.active is False
    assert deactivated.document["phoneNumbers"] == phones


# one identity per person (issue 14): keys after NFKC and case folding


def _conflict(uow: UnitOfWork, body: dict[str, Any]) -> ScimError:
    error = _refused(users.create_user, uow, body)
    assert (error.status, error.scim_type) == (409, ScimType.UNIQUENESS), error
    return error


def _invalid(uow: UnitOfWork, body: dict[str, Any]) -> ScimError:
    error = _refused(users.create_user, uow, body)
    assert (error.status, error.scim_type) == (400, ScimType.INVALID_VALUE), error
    return error


def test_create_user_refuses_the_nfd_spelling_of_an_nfc_user(uow: UnitOfWork) -> None:
    given_user(uow, email=unicodedata.normalize("NFC", "rené@x.com"))

    _conflict(uow, build_user(email=unicodedata.normalize("NFD", "rené@x.com")))

    assert _listed(uow)[0] == 1


@pytest.mark.parametrize(
    "look_alike",
    [
        "\uff42\uff4f\uff42@x.com",  # fullwidth letters
        "bob@x\uff0ecom",  # a fullwidth full stop
        "BOB@X.COM",
    ],
)
def test_create_user_refuses_a_compatibility_spelling_of_an_address(
    uow: UnitOfWork, look_alike: str
) -> None:
    given_user(uow, email="bob@x.com")

    _conflict(uow, build_user(email=look_alike))

    assert _listed(uow)[0] == 1


@pytest.mark.parametrize(
    ("email", "named"),
    [
        ("bob\u200b@x.com", "U+200B ZERO WIDTH SPACE"),
        ("\u202emoc.x@bob", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("bob@x.com\u202e", "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ],
)
def test_create_user_refuses_an_address_with_an_invisible_character(
    uow: UnitOfWork, email: str, named: str
) -> None:
    given_user(uow, email="bob@x.com")

    error = _invalid(uow, build_user(email=email))

    assert error.detail.startswith(f"userName contains {named}")
    assert _listed(uow)[0] == 1


def test_create_user_refuses_a_domain_that_mixes_scripts(uow: UnitOfWork) -> None:
    error = _invalid(uow, build_user(email="bob@p\u0430ypal.com"))  # a Cyrillic а

    assert "'p\u0430ypal'" in error.detail and "CYRILLIC and LATIN" in error.detail


def test_create_user_accepts_a_domain_in_one_non_latin_script(uow: UnitOfWork) -> None:
    user = given_user(uow, email="иван@пример.рф")

    assert _listed(uow, 'emails.value eq "ИВАН@ПРИМЕР.РФ"')[1][0].user_id == user.user_id


def test_a_user_is_found_by_any_spelling_of_its_address(uow: UnitOfWork) -> None:
    user = given_user(uow, email="bob@x.com")

    for text in (
        'userName eq "\uff22\uff2f\uff22@x.com"',
        'emails.value eq "bob@x\uff0ecom"',
        'emails eq "BOB@X.COM"',
        'userName sw "\uff42o"',
    ):
        total, found = _listed(uow, text)
        assert (total, [u.user_id for u in found]) == (1, [user.user_id]), text


def test_replace_user_accepts_a_spelling_of_the_same_identity(uow: UnitOfWork) -> None:
    nfc = unicodedata.normalize("NFC", "rené@x.com")
    nfd = unicodedata.normalize("NFD", "rené@x.com")
    user = given_user(uow, email=nfc)

    replaced = users.replace_user(
        uow,
        user.user_id,
        _put_body(user, userName=nfd, emails=[{"value": nfd, "primary": True}]),
        if_match=None,
    ).user

    assert replaced.document["userName"] == nfd  # stored as sent
    assert _listed(uow, f'userName eq "{nfc}"')[0] == 1


def test_replace_user_still_refuses_a_new_identity(uow: UnitOfWork) -> None:
    user = given_user(uow, email="bob@x.com")

    error = _refused(
        users.replace_user,
        uow,
        user.user_id,
        _put_body(user, userName="rob@x.com", emails=[{"value": "rob@x.com", "primary": True}]),
        if_match=None,
    )

    assert error.scim_type == ScimType.MUTABILITY


# an email belongs to one user, primary or secondary


def _with_secondary(email: str, secondary: str) -> dict[str, Any]:
    return build_user(
        email=email,
        emails=[
            {"value": email, "type": "work", "primary": True},
            {"value": secondary, "type": "home"},
        ],
    )


def test_create_user_refuses_another_users_primary_email_as_a_secondary(uow: UnitOfWork) -> None:
    given_user(uow, email="bob@x.com")

    error = _conflict(uow, _with_secondary("carol@x.com", "Bob@X.com"))

    assert error.detail.startswith("email address 'Bob@X.com' is already in use")


def test_create_user_refuses_another_users_secondary_email_as_its_identity(
    uow: UnitOfWork,
) -> None:
    users.create_user(uow, _with_secondary("carol@x.com", "bob@x.com"))

    error = _conflict(uow, build_user(email="bob@x.com"))

    assert "bob@x.com" in error.detail


def test_create_user_refuses_an_email_a_deactivated_user_lists(uow: UnitOfWork) -> None:
    carol = users.create_user(uow, _with_secondary("carol@x.com", "bob@x.com")).user
    _deactivate(uow, carol.user_id)

    _conflict(uow, build_user(email="bob@x.com"))


def test_replace_user_refuses_to_add_another_users_email(uow: UnitOfWork) -> None:
    given_user(uow, email="bob@x.com")
    carol = given_user(uow, email="carol@x.com")

    error = _refused(
        users.replace_user,
        uow,
        carol.user_id,
        _put_body(
            carol,
            emails=[*carol.document["emails"], {"value": "\uff42ob@x.com", "type": "home"}],
        ),
        if_match=None,
    )

    assert (error.status, error.scim_type) == (409, ScimType.UNIQUENESS)
    _unchanged(uow, carol)


def test_patch_user_refuses_to_add_another_users_email(uow: UnitOfWork) -> None:
    given_user(uow, email="bob@x.com")
    carol = given_user(uow, email="carol@x.com")

    error = _refused(
        users.patch_user,
        uow,
        carol.user_id,
        patch_op({"op": "add", "path": "emails", "value": [{"value": "bob@x.com"}]}),
        if_match=None,
    )

    assert (error.status, error.scim_type) == (409, ScimType.UNIQUENESS)
    _unchanged(uow, carol)


def test_emails_value_eq_finds_the_one_user_holding_an_email(uow: UnitOfWork) -> None:
    bob = given_user(uow, email="bob@x.com")
    for look_alike in ("\uff42\uff4f\uff42@x.com", "bob@x\uff0ecom"):
        _conflict(uow, _with_secondary(f"{suffix()}@x.com", look_alike))

    total, found = _listed(uow, 'emails.value eq "bob@x.com"')

    assert (total, [u.user_id for u in found]) == (1, [bob.user_id])


def test_a_user_may_list_its_own_email_twice(uow: UnitOfWork) -> None:
    body = build_user(
        email="bob@x.com",
        emails=[
            {"value": "bob@x.com", "type": "work", "primary": True},
            {"value": "BOB@x.com", "type": "home"},
        ],
    )

    user = users.create_user(uow, body).user
    again = users.replace_user(uow, user.user_id, _put_body(user), if_match=None).user

    assert len(again.document["emails"]) == 2
    assert _listed(uow, 'emails.value eq "bob@x.com"')[0] == 1


def test_a_user_may_keep_and_drop_its_secondary_emails(uow: UnitOfWork) -> None:
    user = users.create_user(uow, _with_secondary("bob@x.com", "bobby@x.com")).user

    users.replace_user(
        uow, user.user_id, _put_body(user, emails=user.document["emails"][:1]), if_match=None
    )

    assert _listed(uow, 'emails.value eq "bobby@x.com"')[0] == 0
    assert users.create_user(uow, build_user(email="bobby@x.com")).created


def test_reviving_a_user_keeps_its_secondary_emails(uow: UnitOfWork) -> None:
    body = _with_secondary("bob@x.com", "bobby@x.com")
    user = users.create_user(uow, body).user
    _deactivate(uow, user.user_id)

    revived = users.create_user(uow, body).user

    assert revived.user_id == user.user_id and revived.active
    assert _listed(uow, 'emails.value eq "bobby@x.com"')[1][0].user_id == user.user_id


def test_the_email_index_refuses_what_slips_past_the_check(
    uow: UnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two writers racing past the check: the unique index is the last word, a 409 not a 500.
    users.create_user(uow, _with_secondary("carol@x.com", "bob@x.com"))
    monkeypatch.setattr(UserRepository, "email_holders", lambda *_, **__: [])

    error = _conflict(uow, build_user(email="bob@x.com"))

    assert "email" in error.detail
    assert _listed(uow)[0] == 1


# every string has a maximum length


def test_create_user_refuses_a_950_kb_display_name(uow: UnitOfWork) -> None:
    error = _invalid(uow, build_user(displayName="x" * 950_000))

    assert error.detail == "displayName is 950000 characters long; at most 255 are accepted"
    assert _listed(uow)[0] == 0


def test_replace_and_patch_refuse_a_950_kb_display_name(uow: UnitOfWork) -> None:
    user = given_user(uow)
    huge = "x" * 950_000

    replaced = _refused(
        users.replace_user, uow, user.user_id, _put_body(user, displayName=huge), if_match=None
    )
    patched = _refused(
        users.patch_user,
        uow,
        user.user_id,
        patch_op({"op": "replace", "path": "displayName", "value": huge}),
        if_match=None,
    )

    assert replaced.detail.startswith("displayName is 950000 characters long")
    assert patched.detail.startswith("displayName is 950000 characters long")
    _unchanged(uow, user)


def test_create_user_refuses_a_document_over_64_kib(uow: UnitOfWork) -> None:
    roles = [{"value": "r" * 1000} for _ in range(70)]

    error = _invalid(uow, build_user(roles=roles))

    assert "at most 65536 (64 KiB)" in error.detail


def test_a_user_stored_over_the_length_limits_can_still_be_deactivated(
    uow: UnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    huge = "x" * 950_000
    with monkeypatch.context() as before_the_limits:
        unbounded = dataclasses.replace(USER_ATTRIBUTES["displayname"], max_length=None)
        before_the_limits.setitem(USER_ATTRIBUTES, "displayname", unbounded)
        before_the_limits.setattr(resources, "MAX_USER_DOCUMENT_BYTES", 10**7)
        user = given_user(uow, displayName=huge)

    deactivated = _deactivate(uow, user.user_id)
    replaced = users.replace_user(uow, user.user_id, _put_body(deactivated), if_match=None).user

    assert (replaced.active, replaced.document["displayName"]) == (False, huge)
    error = _refused(
        users.patch_user,
        uow,
        user.user_id,
        patch_op({"op": "replace", "path": "displayName", "value": huge + "y"}),
        if_match=None,
    )
    assert error.detail.startswith("displayName is 950001 characters long")


def test_a_user_stored_with_a_hidden_character_can_still_be_deactivated(
    uow: UnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as before_the_rule:
        before_the_rule.setattr(resources, "check_identity_text", lambda *_: None)
        user = given_user(uow, email="bob\u200b@x.com")

    assert _deactivate(uow, user.user_id).active is False


def test_find_shared_identities_finds_none_in_a_tenant_that_keeps_the_rule(
    uow: UnitOfWork,
) -> None:
    given_user(uow, email="bob@x.com")
    users.create_user(uow, _with_secondary("carol@x.com", "carol.b@x.com"))

    assert users.find_shared_identities(uow) == []
