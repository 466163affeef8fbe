"""BulkRequest checks, bulkId references and the order operations run in (RFC 7644 §3.7)."""

from __future__ import annotations

from typing import Any

import pytest

from muster.errors import ScimError
from muster.scim.bulk import BULK_REQUEST_URN, parse_bulk_request, resolve, schedule
from muster.scim.nesting import MAX_DEPTH
from muster.scim.patching import MAX_COMPLEX_PATH_CHARACTERS, PATCH_OP_URN

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def _request(*operations: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"schemas": [BULK_REQUEST_URN], "Operations": list(operations), **extra}


def _post_user(bulk_id: str, **data: Any) -> dict[str, Any]:
    return {"method": "POST", "path": "/Users", "bulkId": bulk_id,
            "data": {"schemas": [USER], "userName": f"{bulk_id}@example.com", **data}}  # fmt: skip


def _post_group(bulk_id: str, *member_refs: str) -> dict[str, Any]:
    members = [{"value": f"bulkId:{ref}"} for ref in member_refs]
    return {"method": "POST", "path": "/Groups", "bulkId": bulk_id,
            "data": {"schemas": [GROUP], "displayName": bulk_id, "members": members}}  # fmt: skip


def _order(payload: dict[str, Any]) -> list[tuple[int, str | None]]:
    steps = schedule(parse_bulk_request(payload, max_operations=100).operations)
    return [(s.operation.index, s.error.scim_type if s.error else None) for s in steps]


def test_references_are_found_in_values_paths_and_patch_paths() -> None:
    patch = {"method": "PATCH", "path": "/Groups/bulkId:g", "data": {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": 'members[value eq "bulkId:u1"]'},
                       {"op": "add", "path": "members", "value": [{"value": "bulkId:u2"}]}],
    }}  # fmt: skip
    request = parse_bulk_request(
        _request(_post_user("u1"), _post_user("u2"), _post_group("g"), patch), max_operations=10
    )

    assert request.operations[3].references == {"g", "u1", "u2"}
    assert request.operations[0].references == frozenset()


def test_a_group_is_run_after_the_users_it_references_whatever_the_request_order() -> None:
    order = _order(_request(_post_group("g", "u1", "u2"), _post_user("u1"), _post_user("u2")))

    assert order == [(1, None), (2, None), (0, None)]


def test_operations_without_references_keep_request_order() -> None:
    order = _order(_request(_post_user("c"), _post_user("a"), _post_user("b")))

    assert [index for index, _ in order] == [0, 1, 2]


def test_a_chain_of_references_resolves_in_dependency_order() -> None:
    manager = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    chained = _request(
        _post_user("c", **{manager: {"manager": {"value": "bulkId:b"}}}),
        _post_user("b", **{manager: {"manager": {"value": "bulkId:a"}}}),
        _post_user("a"),
    )

    assert [index for index, _ in _order(chained)] == [2, 1, 0]


def test_circular_references_fail_with_409() -> None:
    manager = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    circular = _request(
        _post_user("a", **{manager: {"manager": {"value": "bulkId:b"}}}),
        _post_user("b", **{manager: {"manager": {"value": "bulkId:a"}}}),
        _post_user("free"),
    )

    steps = schedule(parse_bulk_request(circular, max_operations=10).operations)

    assert [s.operation.index for s in steps] == [2, 0, 1]
    assert steps[0].error is None
    for step in steps[1:]:
        assert step.error is not None and step.error.status == 409
        assert "circular" in step.error.detail


def test_a_reference_to_itself_is_circular() -> None:
    steps = schedule(
        parse_bulk_request(_request(_post_group("g", "g")), max_operations=10).operations
    )

    assert steps[0].error is not None and steps[0].error.status == 409


def test_a_reference_no_post_defines_fails_that_operation_only() -> None:
    order = _order(_request(_post_user("u"), _post_group("g", "missing")))

    assert order == [(0, None), (1, "invalidValue")]


def test_resolve_replaces_references_with_created_ids() -> None:
    request = parse_bulk_request(
        _request(_post_user("u"), {"method": "PUT", "path": "/Users/bulkId:u",
                                   "data": {"schemas": [USER], "userName": "x"}}),
        max_operations=10,
    )  # fmt: skip
    group = parse_bulk_request(_request(_post_group("g", "u")), max_operations=10).operations[0]

    path, _ = resolve(request.operations[1], {"u": "id-1"})
    _, data = resolve(group, {"u": "id-1"})

    assert path == "/Users/id-1"
    assert data["members"] == [{"value": "id-1"}]
    with pytest.raises(ScimError) as caught:
        resolve(group, {})
    assert caught.value.scim_type == "invalidValue" and "'u'" in caught.value.detail


def test_more_operations_than_max_operations_is_413() -> None:
    with pytest.raises(ScimError) as caught:
        parse_bulk_request(_request(*[_post_user(f"u{i}") for i in range(3)]), max_operations=2)

    assert caught.value.status == 413
    assert "maxOperations" in caught.value.detail


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        ({"Operations": []}, "schemas"),
        (_request(failOnErrors=0), "failOnErrors"),
        (_request({"method": "GET", "path": "/Users"}), "method"),
        (_request({"method": "POST", "path": "/Users", "data": {}}), "bulkId"),
        (_request({"method": "POST", "path": "/Things", "bulkId": "x", "data": {}}), "path"),
        (_request({"method": "DELETE", "path": "/Users"}), "DELETE"),
        (_request({"method": "PATCH", "path": "/Users/1"}), "data"),
        (_request(_post_user("a"), _post_user("a")), "'a'"),
    ],
)
def test_a_malformed_bulk_request_is_refused_whole(payload: dict[str, Any], named: str) -> None:
    with pytest.raises(ScimError) as caught:
        parse_bulk_request(payload, max_operations=10)

    assert caught.value.status == 400
    assert named in caught.value.detail


def _nested(depth: int) -> Any:
    """A value `depth` arrays deep (one level per array)."""
    value: Any = "bulkId:u"
    for _ in range(depth):
        value = [value]
    return value


def test_bulk_refuses_data_nested_deeper_than_the_limit() -> None:
    # Issue 14: data nesting ~1,000 arrays deep hit a RecursionError (a 500).
    deep = _post_user("u", x=_nested(1000))

    with pytest.raises(ScimError) as caught:
        parse_bulk_request(_request(deep), max_operations=10)

    assert caught.value.status == 400
    assert caught.value.scim_type == "invalidValue"
    assert f"Operations[0].data nests deeper than {MAX_DEPTH} levels" in caught.value.detail


def test_bulk_accepts_data_nested_up_to_the_limit() -> None:
    # data is one level, and `x` adds its own arrays below it.
    deep = _post_user("d", x=_nested(MAX_DEPTH - 1))

    request = parse_bulk_request(_request(_post_user("u"), deep), max_operations=10)

    assert request.operations[1].references == {"u"}


def test_a_long_cycle_names_a_few_of_its_bulk_ids_in_each_error() -> None:
    # Every operation of a cycle carries the error: naming all of them made the answer
    # grow with the square of the cycle (18 MB for 1,000 operations).
    size = 200
    cycle = [_post_group(f"g{i}", f"g{(i + 1) % size}") for i in range(size)]

    steps = schedule(parse_bulk_request(_request(*cycle), max_operations=size).operations)

    for step in steps:
        assert step.error is not None and step.error.status == 409
        assert "'g0'" in step.error.detail and f"and {size - 10} more" in step.error.detail
        assert len(step.error.detail) < 300


def test_complex_patch_paths_share_one_budget_across_the_bulk_request() -> None:
    # Each PATCH keeps under MAX_COMPLEX_PATH_CHARACTERS alone; the full grammar reads ~4 µs a
    # character, so a megabyte of them would still cost seconds without a request-wide sum.
    terms = " or ".join(f'value eq "u{i}@example.com"' for i in range(40))
    patch = {"method": "PATCH", "path": "/Users/1", "data": {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": f"emails[{terms}]"}]}}  # fmt: skip
    count = MAX_COMPLEX_PATH_CHARACTERS // len(terms) + 1

    with pytest.raises(ScimError) as caught:
        parse_bulk_request(_request(*[patch] * count), max_operations=count)

    assert caught.value.scim_type == "invalidValue"
    assert str(MAX_COMPLEX_PATH_CHARACTERS) in caught.value.detail
    assert parse_bulk_request(_request(*[patch] * (count // 2)), max_operations=count)


def test_bulk_holds_its_patches_to_one_patchop_of_changes_together() -> None:
    replace = {"op": "replace", "path": "displayName", "value": "x"}
    patch = {"schemas": [PATCH_OP_URN], "Operations": [replace] * 600}
    operation = {"method": "PATCH", "path": "/Users/u1", "data": patch}
    body = {"schemas": [BULK_REQUEST_URN], "Operations": [operation, operation]}
    with pytest.raises(ScimError) as caught:
        parse_bulk_request(body, max_operations=100)
    assert caught.value.scim_type == "invalidValue"
    assert "1200 changes" in caught.value.detail and "1000" in caught.value.detail
    body["Operations"] = [operation]
    assert len(parse_bulk_request(body, max_operations=100).operations) == 1
