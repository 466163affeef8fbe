"""services.groups: CRUD, uniqueness, membership rows, refusals, local and manual members."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine

from muster.db.repositories import GroupRepository
from muster.db.unit_of_work import UnitOfWork
from muster.errors import ScimError, ScimType
from muster.scim.listing import ListQuery, parse_filter
from muster.scim.records import StoredGroup
from muster.services import groups, users
from muster.services.groups import GroupOutcome
from tests.factories import given_tenant, given_user, patch_op
from tests.group_factories import (
    build_group,
    given_group,
    given_local_user,
    given_users,
    member_ids,
    members,
    membership_rows,
    rows_of_user,
    stored_group_row,
)

pytestmark = pytest.mark.service

UowFactory = Callable[..., UnitOfWork]


def _refused(call: Callable[..., Any], *args: Any, **kwargs: Any) -> ScimError:
    with pytest.raises(ScimError) as caught:
        call(*args, **kwargs)
    return caught.value


def _patch(uow: UnitOfWork, group_id: str, *operations: dict[str, Any]) -> GroupOutcome:
    return groups.patch_group(uow, group_id, patch_op(*operations), if_match=None)


def _refused_patch(uow: UnitOfWork, group_id: str, *operations: dict[str, Any]) -> ScimError:
    return _refused(groups.patch_group, uow, group_id, patch_op(*operations), if_match=None)


def _listed(
    uow: UnitOfWork,
    text: str | None = None,
    *,
    start: int = 1,
    count: int = 100,
    with_members: bool = False,
) -> tuple[int, list[StoredGroup], dict[str, list[tuple[str, str]]]]:
    query = ListQuery(parse_filter(text) if text else None, start, count)
    return groups.list_groups(uow, query, with_members=with_members)


def _names(page: list[StoredGroup]) -> list[str]:
    return [g.document["displayName"] for g in page]


def _add(*user_ids: str) -> dict[str, Any]:
    return {"op": "add", "path": "members", "value": members(*user_ids)}


def _assert_no_members_in_document(engine: Engine, group_id: str) -> None:
    document = stored_group_row(engine, group_id).document
    assert not any(key.lower() == "members" for key in document)


# create_group, get_group


def test_create_group_stores_name_external_id_and_member_rows(
    uow: UnitOfWork, engine: Engine
) -> None:
    ann, bob = given_users(uow, 2)

    outcome = groups.create_group(
        uow,
        build_group(
            displayName="Ops", externalId="ext-1", members=members(ann.user_id, bob.user_id)
        ),
    )

    group = groups.get_group(uow, outcome.group.group_id)
    assert group.document["displayName"] == "Ops"
    assert group.document["externalId"] == "ext-1"
    assert group.version == 1
    assert membership_rows(engine, group.group_id) == {ann.user_id: "idp", bob.user_id: "idp"}
    _assert_no_members_in_document(engine, group.group_id)


def test_create_group_with_empty_members_has_no_rows(uow: UnitOfWork, engine: Engine) -> None:
    group = given_group(uow, members=[])

    assert member_ids(engine, group.group_id) == set()


def test_create_group_refuses_a_display_name_taken_in_another_case(uow: UnitOfWork) -> None:
    given_group(uow, displayName="Engineering")

    error = _refused(groups.create_group, uow, build_group(displayName="ENGINEERING"))

    assert (error.status, error.scim_type) == (409, ScimType.UNIQUENESS)
    assert _listed(uow)[0] == 1


def test_create_group_allows_the_same_name_in_another_tenant(
    uow: UnitOfWork, uow_factory: UowFactory
) -> None:
    given_group(uow, displayName="Engineering")
    other = given_tenant(uow_factory())

    created = given_group(uow_factory(other.tenant_id), displayName="Engineering")

    assert created.document["displayName"] == "Engineering"


def test_create_group_refused_for_an_unknown_member_stores_nothing(uow: UnitOfWork) -> None:
    (ann,) = given_users(uow, 1)

    error = _refused(
        groups.create_group,
        uow,
        build_group(displayName="Ops", members=members(ann.user_id, "nope")),
    )

    assert (error.status, error.scim_type) == (400, ScimType.INVALID_VALUE)
    assert "nope" in error.detail
    assert _listed(uow, 'displayName eq "Ops"')[0] == 0


def test_get_group_of_another_tenant_is_not_found(uow: UnitOfWork, uow_factory: UowFactory) -> None:
    other = given_tenant(uow_factory())
    theirs = given_group(uow_factory(other.tenant_id))

    error = _refused(groups.get_group, uow, theirs.group_id)

    assert error.status == 404


# list_groups


def test_list_groups_filters_display_name_ignoring_case(uow: UnitOfWork) -> None:
    given_group(uow, displayName="Test SCIMv2")
    given_group(uow, displayName="Other")

    total, page, _ = _listed(uow, 'displayName eq "test scimv2"')

    assert total == 1
    assert _names(page) == ["Test SCIMv2"]


def test_list_groups_filters_external_id_and_id(uow: UnitOfWork) -> None:
    first = given_group(uow, externalId="8aa1a0c0")
    second = given_group(uow, externalId="9bb2")

    assert [g.group_id for g in _listed(uow, 'externalId eq "8aa1a0c0"')[1]] == [first.group_id]
    assert [g.group_id for g in _listed(uow, f'id eq "{second.group_id}"')[1]] == [second.group_id]


@pytest.mark.parametrize("form", ['members.value eq "{id}"', 'members[value eq "{id}"]'])
def test_list_groups_by_member_finds_that_users_groups(uow: UnitOfWork, form: str) -> None:
    ann, bob = given_users(uow, 2)
    ops = given_group(uow, displayName="Ops", members=members(ann.user_id))
    dev = given_group(uow, displayName="Dev", members=members(ann.user_id, bob.user_id))
    given_group(uow, displayName="Sales", members=members(bob.user_id))

    total, page, _ = _listed(uow, form.format(id=ann.user_id))

    assert total == 2
    assert {g.group_id for g in page} == {ops.group_id, dev.group_id}


def test_list_groups_pages_with_start_index_and_count(uow: UnitOfWork) -> None:
    created = [given_group(uow, displayName=f"G{n}").group_id for n in range(5)]

    total, first, _ = _listed(uow, start=1, count=2)
    _, second, _ = _listed(uow, start=3, count=2)
    _, third, _ = _listed(uow, start=5, count=2)
    _, beyond, _ = _listed(uow, start=6, count=2)

    assert total == 5
    assert [g.group_id for g in first + second + third] == created
    assert beyond == []


def test_list_groups_never_returns_other_tenants_groups(
    uow: UnitOfWork, uow_factory: UowFactory
) -> None:
    other = given_tenant(uow_factory())
    given_group(uow_factory(other.tenant_id), displayName="Theirs")
    given_group(uow, displayName="Ours")

    total, page, _ = _listed(uow)

    assert total == 1
    assert _names(page) == ["Ours"]


def test_list_groups_with_members_reads_them_from_the_rows(uow: UnitOfWork) -> None:
    ann, bob = given_users(uow, 2)
    full = given_group(uow, members=members(ann.user_id, bob.user_id))
    empty = given_group(uow)

    _, _, by_group = _listed(uow, with_members=True)

    assert {user_id for user_id, _ in by_group[full.group_id]} == {ann.user_id, bob.user_id}
    assert dict(by_group[full.group_id])[ann.user_id] == ann.document["userName"]
    assert by_group[empty.group_id] == []


# patch_group: the shapes Okta and Entra send


def test_add_members_stores_rows_and_adding_a_present_member_is_a_no_op(
    uow: UnitOfWork, engine: Engine
) -> None:
    ann, bob = given_users(uow, 2)
    group = given_group(uow, members=members(ann.user_id))

    _patch(uow, group.group_id, _add(ann.user_id, bob.user_id))
    _patch(uow, group.group_id, _add(ann.user_id))

    assert membership_rows(engine, group.group_id) == {ann.user_id: "idp", bob.user_id: "idp"}
    _assert_no_members_in_document(engine, group.group_id)


def test_okta_filtered_remove_removes_that_member_only(uow: UnitOfWork, engine: Engine) -> None:
    ann, bob, cat = given_users(uow, 3)
    group = given_group(uow, members=members(ann.user_id, bob.user_id, cat.user_id))

    _patch(uow, group.group_id, {"op": "remove", "path": f'members[value eq "{bob.user_id}"]'})

    assert member_ids(engine, group.group_id) == {ann.user_id, cat.user_id}


def test_entra_remove_with_value_list_removes_only_those(uow: UnitOfWork, engine: Engine) -> None:
    ann, bob, cat = given_users(uow, 3)
    group = given_group(uow, members=members(ann.user_id, bob.user_id, cat.user_id))

    _patch(
        uow,
        group.group_id,
        {
            "op": "Remove",
            "path": "members",
            "value": [{"value": ann.user_id}, {"value": cat.user_id}],
        },
    )

    assert member_ids(engine, group.group_id) == {bob.user_id}


def test_removing_an_absent_member_is_a_no_op(uow: UnitOfWork, engine: Engine) -> None:
    ann, bob = given_users(uow, 2)
    group = given_group(uow, members=members(ann.user_id))

    _patch(uow, group.group_id, {"op": "remove", "path": f'members[value eq "{bob.user_id}"]'})
    _patch(uow, group.group_id, {"op": "remove", "path": 'members[value eq "no-such-user"]'})
    _patch(
        uow, group.group_id, {"op": "Remove", "path": "members", "value": [{"value": bob.user_id}]}
    )

    assert member_ids(engine, group.group_id) == {ann.user_id}


def test_remove_members_without_value_empties_the_group(uow: UnitOfWork, engine: Engine) -> None:
    ann, bob = given_users(uow, 2)
    group = given_group(uow, members=members(ann.user_id, bob.user_id))

    _patch(uow, group.group_id, {"op": "remove", "path": "members"})

    assert member_ids(engine, group.group_id) == set()


def test_replace_members_sets_exactly_the_whole_list(uow: UnitOfWork, engine: Engine) -> None:
    ann, bob, cat, dan = given_users(uow, 4)
    group = given_group(uow, members=members(ann.user_id, bob.user_id))

    _patch(
        uow,
        group.group_id,
        {
            "op": "replace",
            "path": "members",
            "value": members(bob.user_id, cat.user_id, dan.user_id),
        },
    )

    assert member_ids(engine, group.group_id) == {bob.user_id, cat.user_id, dan.user_id}


def test_replace_members_with_an_empty_list_removes_everyone(
    uow: UnitOfWork, engine: Engine
) -> None:
    ann, bob = given_users(uow, 2)
    group = given_group(uow, members=members(ann.user_id, bob.user_id))

    _patch(uow, group.group_id, {"op": "replace", "path": "members", "value": []})

    assert member_ids(engine, group.group_id) == set()


def test_okta_rename_without_path_renames_and_keeps_members(
    uow: UnitOfWork, engine: Engine
) -> None:
    ann, bob = given_users(uow, 2)
    group = given_group(uow, displayName="Old", members=members(ann.user_id, bob.user_id))

    outcome = _patch(
        uow,
        group.group_id,
        {"op": "replace", "value": {"id": group.group_id, "displayName": "New"}},
    )

    assert outcome.group.document["displayName"] == "New"
    assert groups.get_group(uow, group.group_id).document["displayName"] == "New"
    assert stored_group_row(engine, group.group_id).display_name == "New"
    assert member_ids(engine, group.group_id) == {ann.user_id, bob.user_id}
    assert _listed(uow, 'displayName eq "new"')[0] == 1
    assert _listed(uow, 'displayName eq "Old"')[0] == 0


def test_rename_to_own_name_in_another_case_is_allowed(uow: UnitOfWork) -> None:
    group = given_group(uow, displayName="Ops")

    outcome = _patch(uow, group.group_id, {"op": "replace", "path": "displayName", "value": "OPS"})

    assert outcome.group.document["displayName"] == "OPS"


def test_okta_remove_and_add_in_one_patch_apply_in_order(uow: UnitOfWork, engine: Engine) -> None:
    ann, bob = given_users(uow, 2)
    group = given_group(uow, members=members(ann.user_id))

    _patch(
        uow,
        group.group_id,
        {
            "op": "replace",
            "value": {"id": group.group_id, "displayName": group.document["displayName"]},
        },
        {"op": "remove", "path": f'members[value eq "{ann.user_id}"]'},
        _add(bob.user_id),
    )

    assert member_ids(engine, group.group_id) == {bob.user_id}


def test_operations_on_the_same_member_apply_in_request_order(
    uow: UnitOfWork, engine: Engine
) -> None:
    ann, bob = given_users(uow, 2)
    group = given_group(uow, members=members(bob.user_id))

    _patch(
        uow,
        group.group_id,
        _add(ann.user_id),
        {"op": "remove", "path": f'members[value eq "{ann.user_id}"]'},
        {"op": "remove", "path": f'members[value eq "{bob.user_id}"]'},
        _add(bob.user_id),
    )

    assert member_ids(engine, group.group_id) == {bob.user_id}


def test_patch_bumps_the_version(uow: UnitOfWork) -> None:
    (ann,) = given_users(uow, 1)
    group = given_group(uow)

    outcome = _patch(uow, group.group_id, _add(ann.user_id))

    assert outcome.group.version == 2
    assert groups.get_group(uow, group.group_id).version == 2


def test_patch_with_a_stale_if_match_is_refused(uow: UnitOfWork, engine: Engine) -> None:
    (ann,) = given_users(uow, 1)
    group = given_group(uow)
    _patch(uow, group.group_id, {"op": "replace", "path": "displayName", "value": "Renamed"})

    error = _refused(
        groups.patch_group, uow, group.group_id, patch_op(_add(ann.user_id)), if_match='W/"1"'
    )

    assert error.status == 412
    assert member_ids(engine, group.group_id) == set()


def test_patch_of_an_unknown_group_is_not_found(uow: UnitOfWork) -> None:
    assert _refused_patch(uow, "no-such-group", _add("x")).status == 404


# patch_group: all or nothing


def test_failing_later_operation_leaves_earlier_ones_unapplied(
    uow: UnitOfWork, engine: Engine
) -> None:
    ann, bob, cat = given_users(uow, 3)
    group = given_group(uow, displayName="Ops", members=members(ann.user_id))

    error = _refused_patch(
        uow,
        group.group_id,
        {"op": "replace", "path": "displayName", "value": "Renamed"},
        {"op": "remove", "path": f'members[value eq "{ann.user_id}"]'},
        _add(bob.user_id),
        _add(cat.user_id, "no-such-user"),
    )

    assert (error.status, error.scim_type) == (400, ScimType.INVALID_VALUE)
    assert member_ids(engine, group.group_id) == {ann.user_id}
    after = groups.get_group(uow, group.group_id)
    assert after.document["displayName"] == "Ops"
    assert after.version == 1


def test_rename_to_a_taken_name_undoes_the_membership_steps(
    uow: UnitOfWork, engine: Engine
) -> None:
    ann, bob = given_users(uow, 2)
    given_group(uow, displayName="Taken")
    group = given_group(uow, displayName="Mine", members=members(ann.user_id))

    error = _refused_patch(
        uow,
        group.group_id,
        {"op": "remove", "path": f'members[value eq "{ann.user_id}"]'},
        _add(bob.user_id),
        {"op": "replace", "value": {"id": group.group_id, "displayName": "tAKEN"}},
    )

    assert (error.status, error.scim_type) == (409, ScimType.UNIQUENESS)
    assert member_ids(engine, group.group_id) == {ann.user_id}
    assert groups.get_group(uow, group.group_id).document["displayName"] == "Mine"


def test_malformed_later_operation_applies_nothing(uow: UnitOfWork, engine: Engine) -> None:
    (ann,) = given_users(uow, 1)
    group = given_group(uow)

    error = _refused_patch(
        uow, group.group_id, _add(ann.user_id), {"op": "replace", "path": "nonsense", "value": 1}
    )

    assert (error.status, error.scim_type) == (400, ScimType.INVALID_PATH)
    assert member_ids(engine, group.group_id) == set()


# patch_group: refused members


def test_a_group_as_member_is_refused_as_nested(uow: UnitOfWork, engine: Engine) -> None:
    (ann,) = given_users(uow, 1)
    inner = given_group(uow, displayName="Inner")
    group = given_group(uow, displayName="Outer")

    error = _refused_patch(uow, group.group_id, _add(ann.user_id, inner.group_id))

    assert (error.status, error.scim_type) == (400, ScimType.INVALID_VALUE)
    assert "nested" in error.detail.lower()
    assert inner.group_id in error.detail
    assert member_ids(engine, group.group_id) == set()


def test_a_group_as_member_is_refused_in_a_replace_too(uow: UnitOfWork, engine: Engine) -> None:
    (ann,) = given_users(uow, 1)
    inner = given_group(uow)
    group = given_group(uow, members=members(ann.user_id))

    error = _refused_patch(
        uow, group.group_id, {"op": "replace", "path": "members", "value": members(inner.group_id)}
    )

    assert "nested" in error.detail.lower()
    assert member_ids(engine, group.group_id) == {ann.user_id}


def test_an_unknown_member_id_is_refused_naming_it(uow: UnitOfWork, engine: Engine) -> None:
    ann, bob = given_users(uow, 2)
    group = given_group(uow)

    error = _refused_patch(uow, group.group_id, _add(ann.user_id, "0000-missing-user", bob.user_id))

    assert (error.status, error.scim_type) == (400, ScimType.INVALID_VALUE)
    assert "0000-missing-user" in error.detail
    assert member_ids(engine, group.group_id) == set()


def test_another_tenants_user_is_refused_as_unknown(
    uow: UnitOfWork, uow_factory: UowFactory, engine: Engine
) -> None:
    other = given_tenant(uow_factory())
    stranger = given_user(uow_factory(other.tenant_id))
    (ann,) = given_users(uow, 1)
    group = given_group(uow)

    error = _refused_patch(uow, group.group_id, _add(ann.user_id, stranger.user_id))

    assert (error.status, error.scim_type) == (400, ScimType.INVALID_VALUE)
    assert stranger.user_id in error.detail
    assert member_ids(engine, group.group_id) == set()
    assert rows_of_user(engine, stranger.user_id) == set()


# replace_group (PUT)


def test_replace_group_sets_name_external_id_and_the_full_member_list(
    uow: UnitOfWork, engine: Engine
) -> None:
    ann, bob, cat = given_users(uow, 3)
    group = given_group(uow, displayName="Old", members=members(ann.user_id, bob.user_id))

    outcome = groups.replace_group(
        uow,
        group.group_id,
        build_group(
            id=group.group_id,
            displayName="New",
            externalId="e-9",
            members=members(bob.user_id, cat.user_id),
        ),
        if_match=None,
    )

    assert outcome.group.document["displayName"] == "New"
    stored = groups.get_group(uow, group.group_id)
    assert (stored.document["displayName"], stored.document["externalId"]) == ("New", "e-9")
    assert member_ids(engine, group.group_id) == {bob.user_id, cat.user_id}
    _assert_no_members_in_document(engine, group.group_id)


def test_replace_group_refuses_another_groups_name(uow: UnitOfWork, engine: Engine) -> None:
    ann, bob = given_users(uow, 2)
    given_group(uow, displayName="Taken")
    group = given_group(uow, displayName="Mine", members=members(ann.user_id))

    error = _refused(
        groups.replace_group,
        uow,
        group.group_id,
        build_group(displayName="TAKEN", members=members(bob.user_id)),
        if_match=None,
    )

    assert (error.status, error.scim_type) == (409, ScimType.UNIQUENESS)
    assert groups.get_group(uow, group.group_id).document["displayName"] == "Mine"
    assert member_ids(engine, group.group_id) == {ann.user_id}


def test_replace_group_with_an_unknown_member_changes_nothing(
    uow: UnitOfWork, engine: Engine
) -> None:
    (ann,) = given_users(uow, 1)
    group = given_group(uow, displayName="Mine", members=members(ann.user_id))

    error = _refused(
        groups.replace_group,
        uow,
        group.group_id,
        build_group(displayName="Other", members=members("ghost")),
        if_match=None,
    )

    assert (error.status, error.scim_type) == (400, ScimType.INVALID_VALUE)
    assert "ghost" in error.detail
    assert groups.get_group(uow, group.group_id).document["displayName"] == "Mine"
    assert member_ids(engine, group.group_id) == {ann.user_id}


# delete_group


def test_delete_group_deletes_its_membership_rows(uow: UnitOfWork, engine: Engine) -> None:
    ann, bob = given_users(uow, 2)
    group = given_group(uow, members=members(ann.user_id, bob.user_id))

    groups.delete_group(uow, group.group_id)

    assert member_ids(engine, group.group_id) == set()
    assert _refused(groups.get_group, uow, group.group_id).status == 404
    assert users.get_user(uow, ann.user_id).groups == []


def test_delete_group_of_another_tenant_is_not_found(
    uow: UnitOfWork, uow_factory: UowFactory
) -> None:
    other = given_tenant(uow_factory())
    theirs = given_group(uow_factory(other.tenant_id))

    assert _refused(groups.delete_group, uow, theirs.group_id).status == 404
    assert (
        groups.get_group(uow_factory(other.tenant_id), theirs.group_id).group_id == theirs.group_id
    )


# local users and manual memberships


def test_idp_add_never_adds_a_local_user(uow: UnitOfWork, engine: Engine) -> None:
    (ann,) = given_users(uow, 1)
    local = given_local_user(uow)
    group = given_group(uow)

    _patch(uow, group.group_id, _add(ann.user_id, local.user_id))

    assert member_ids(engine, group.group_id) == {ann.user_id}


def test_idp_replace_create_and_put_never_add_a_local_user(uow: UnitOfWork, engine: Engine) -> None:
    (ann,) = given_users(uow, 1)
    local = given_local_user(uow)
    created = groups.create_group(uow, build_group(members=members(local.user_id))).group
    replaced = given_group(uow)
    put = given_group(uow)

    _patch(
        uow,
        replaced.group_id,
        {"op": "replace", "path": "members", "value": members(ann.user_id, local.user_id)},
    )
    groups.replace_group(
        uow,
        put.group_id,
        build_group(displayName=put.document["displayName"], members=members(local.user_id)),
        if_match=None,
    )

    assert member_ids(engine, created.group_id) == set()
    assert member_ids(engine, replaced.group_id) == {ann.user_id}
    assert member_ids(engine, put.group_id) == set()


def test_manual_membership_survives_idp_replace_put_and_remove(
    uow: UnitOfWork, engine: Engine
) -> None:
    ann, bob = given_users(uow, 2)
    local = given_local_user(uow)
    group = given_group(uow, displayName="Admins", members=members(ann.user_id))
    groups.add_manual_member(uow, "Admins", local.document["userName"])
    groups.add_manual_member(uow, "admins", bob.document["userName"].upper())

    _patch(uow, group.group_id, {"op": "replace", "path": "members", "value": members(ann.user_id)})
    after_replace = membership_rows(engine, group.group_id)
    groups.replace_group(
        uow, group.group_id, build_group(displayName="Admins", members=[]), if_match=None
    )
    after_put = membership_rows(engine, group.group_id)
    _patch(
        uow,
        group.group_id,
        {"op": "remove", "path": f'members[value eq "{bob.user_id}"]'},
        {"op": "Remove", "path": "members", "value": [{"value": local.user_id}]},
    )
    after_remove = membership_rows(engine, group.group_id)
    _patch(uow, group.group_id, {"op": "remove", "path": "members"})
    after_remove_all = membership_rows(engine, group.group_id)

    manual = {local.user_id: "manual", bob.user_id: "manual"}
    assert after_replace == {ann.user_id: "idp", **manual}
    assert after_put == manual
    assert after_remove == manual
    assert after_remove_all == manual


def test_remove_manual_member_removes_the_membership(uow: UnitOfWork, engine: Engine) -> None:
    local = given_local_user(uow)
    group = given_group(uow, displayName="Admins")
    groups.add_manual_member(uow, "Admins", local.document["userName"])

    groups.remove_manual_member(uow, "Admins", local.document["userName"])

    assert member_ids(engine, group.group_id) == set()


def test_add_manual_member_to_an_unknown_group_or_email_is_not_found(uow: UnitOfWork) -> None:
    local = given_local_user(uow)
    given_group(uow, displayName="Admins")

    assert _refused(groups.add_manual_member, uow, "Nope", local.document["userName"]).status == 404
    assert _refused(groups.add_manual_member, uow, "Admins", "nobody@example.com").status == 404


def test_remove_manual_member_who_is_not_a_member_is_not_found(uow: UnitOfWork) -> None:
    local = given_local_user(uow)
    given_group(uow, displayName="Admins")

    assert (
        _refused(groups.remove_manual_member, uow, "Admins", local.document["userName"]).status
        == 404
    )


# users' groups and lifecycle


def test_get_user_lists_groups_from_the_rows(uow: UnitOfWork) -> None:
    ann, bob = given_users(uow, 2)
    ops = given_group(uow, displayName="Ops", members=members(ann.user_id))
    dev = given_group(uow, displayName="Dev", members=members(ann.user_id))
    _patch(uow, ops.group_id, {"op": "replace", "path": "displayName", "value": "Operations"})

    ann_groups = users.get_user(uow, ann.user_id).groups

    assert sorted(ann_groups or []) == sorted(
        [(ops.group_id, "Operations"), (dev.group_id, dev.document["displayName"])]
    )
    assert users.get_user(uow, bob.user_id).groups == []


def test_deactivating_a_user_keeps_their_memberships(uow: UnitOfWork, engine: Engine) -> None:
    ann, bob = given_users(uow, 2)
    group = given_group(uow, members=members(ann.user_id, bob.user_id))

    users.patch_user(
        uow, ann.user_id, patch_op({"op": "replace", "value": {"active": False}}), if_match=None
    )

    assert member_ids(engine, group.group_id) == {ann.user_id, bob.user_id}
    assert users.get_user(uow, ann.user_id).groups == [
        (group.group_id, group.document["displayName"])
    ]


def test_deleting_a_user_deletes_their_membership_rows(uow: UnitOfWork, engine: Engine) -> None:
    ann, bob = given_users(uow, 2)
    first = given_group(uow, members=members(ann.user_id, bob.user_id))
    second = given_group(uow, members=members(ann.user_id))

    users.delete_user(uow, ann.user_id)

    assert rows_of_user(engine, ann.user_id) == set()
    assert member_ids(engine, first.group_id) == {bob.user_id}
    assert member_ids(engine, second.group_id) == set()


def test_no_path_replace_with_members_replaces_them_outside_the_document(
    uow: UnitOfWork, engine: Engine
) -> None:
    ann, bob = given_users(uow, 2)
    group = given_group(uow, displayName="Ops", members=members(ann.user_id))

    _patch(
        uow,
        group.group_id,
        {
            "op": "replace",
            "value": {
                "id": group.group_id,
                "displayName": "Ops 2",
                "members": members(bob.user_id),
            },
        },
    )

    assert member_ids(engine, group.group_id) == {bob.user_id}
    assert stored_group_row(engine, group.group_id).display_name == "Ops 2"
    _assert_no_members_in_document(engine, group.group_id)


def test_a_group_cannot_be_its_own_member(uow: UnitOfWork, engine: Engine) -> None:
    group = given_group(uow)

    error = _refused_patch(uow, group.group_id, _add(group.group_id))

    assert "nested" in error.detail.lower()
    assert member_ids(engine, group.group_id) == set()


def test_another_tenants_group_as_member_is_unknown_not_nested(
    uow: UnitOfWork, uow_factory: UowFactory
) -> None:
    # Saying "nested" would confirm that the id is a group somewhere else.
    other = given_tenant(uow_factory())
    theirs = given_group(uow_factory(other.tenant_id))
    group = given_group(uow)

    error = _refused_patch(uow, group.group_id, _add(theirs.group_id))

    assert (error.status, error.scim_type) == (400, ScimType.INVALID_VALUE)
    assert theirs.group_id in error.detail
    assert "nested" not in error.detail.lower()


def test_a_deleted_groups_name_can_be_used_again(uow: UnitOfWork) -> None:
    first = given_group(uow, displayName="Ops")
    groups.delete_group(uow, first.group_id)

    second = given_group(uow, displayName="OPS")

    assert second.group_id != first.group_id
    assert _names(_listed(uow, 'displayName eq "ops"')[1]) == ["OPS"]


def test_idp_add_of_a_manual_member_leaves_it_manual(uow: UnitOfWork, engine: Engine) -> None:
    (ann,) = given_users(uow, 1)
    group = given_group(uow, displayName="Admins")
    groups.add_manual_member(uow, "Admins", ann.document["userName"])

    _patch(uow, group.group_id, _add(ann.user_id))
    _patch(uow, group.group_id, {"op": "remove", "path": f'members[value eq "{ann.user_id}"]'})

    assert membership_rows(engine, group.group_id) == {ann.user_id: "manual"}


@pytest.mark.parametrize("write", ["rename", "delete"])
def test_a_group_write_checks_the_version_in_the_statement_that_writes(
    uow: UnitOfWork, monkeypatch: pytest.MonkeyPatch, write: str
) -> None:
    group = given_group(uow)
    read = GroupRepository.get

    def stale(self: Any, group_id: str, *, for_update: bool = False) -> Any:
        found = read(self, group_id, for_update=for_update)  # as read before another commit
        return dataclasses.replace(found, version=found.version - 1) if found else None

    monkeypatch.setattr(GroupRepository, "get", stale)
    if write == "rename":
        rename = patch_op({"op": "replace", "path": "displayName", "value": "Renamed"})
        error = _refused(groups.patch_group, uow, group.group_id, rename, if_match=None)
    else:
        error = _refused(groups.delete_group, uow, group.group_id, if_match=None)
    assert error.status == 412 and "changed by another request" in error.detail
    monkeypatch.undo()
    after = groups.get_group(uow, group.group_id)
    assert (after.document, after.version) == (group.document, group.version)


def test_many_one_member_remove_operations_remove_each_member_once(
    uow: UnitOfWork, engine: Engine
) -> None:
    # Okta's one-remove-per-member PatchOp runs as one set-based step (scim/groups.py).
    people = given_users(uow, 20)  # the tenant has 25 seats
    group = given_group(uow, members=members(*(p.user_id for p in people)))
    removes = [{"op": "remove", "path": f'members[value eq "{p.user_id}"]'} for p in people[:15]]

    _patch(uow, group.group_id, *removes, removes[0])

    assert member_ids(engine, group.group_id) == {p.user_id for p in people[15:]}
    with uow.reading():
        removed = [e.data["userId"] for e in uow.events.after(0, 1000)
                   if e.type == "group.member_removed"]  # fmt: skip
    assert sorted(removed) == sorted(p.user_id for p in people[:15])


# every string has a maximum length (issue 14)


def test_create_replace_and_patch_refuse_a_950_kb_display_name(uow: UnitOfWork) -> None:
    group = given_group(uow)
    huge = "x" * 950_000

    refusals = [
        _refused(groups.create_group, uow, build_group(displayName=huge)),
        _refused(
            groups.replace_group, uow, group.group_id, build_group(displayName=huge), if_match=None
        ),
        _refused_patch(
            uow, group.group_id, {"op": "replace", "path": "displayName", "value": huge}
        ),
        _refused_patch(uow, group.group_id, {"op": "replace", "value": {"displayName": huge}}),
    ]

    for error in refusals:
        assert (error.status, error.scim_type) == (400, ScimType.INVALID_VALUE)
        assert error.detail == "displayName is 950000 characters long; at most 255 are accepted"
    assert _listed(uow)[0] == 1


def test_create_group_refuses_a_long_external_id(uow: UnitOfWork) -> None:
    error = _refused(groups.create_group, uow, build_group(externalId="e" * 256))

    assert error.detail == "externalId is 256 characters long; at most 255 are accepted"
