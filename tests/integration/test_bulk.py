"""POST /Bulk (RFC 7644 §3.7): bulkId chains, failOnErrors, limits, per-operation errors."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine
from starlette.testclient import TestClient

from muster.app import create_app
from muster.config import Settings
from muster.scim.nesting import MAX_DEPTH
from muster.scim.records import TenantInfo
from muster.services import provisioning_log
from tests.factories import OKTA_HEADERS, build_user, suffix

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _bulk(okta: TestClient, *operations: dict[str, Any], **extra: Any) -> Any:
    return okta.post("/scim/v2/Bulk", json={"schemas": [BULK], "Operations": list(operations),
                                            **extra})  # fmt: skip


def _post_user(bulk_id: str, **overrides: Any) -> dict[str, Any]:
    return {"method": "POST", "path": "/Users", "bulkId": bulk_id, "data": build_user(**overrides)}


def test_a_group_references_users_created_in_the_same_request(okta: TestClient) -> None:
    # The group comes first in the request; it runs once the users it names exist.
    group = {"method": "POST", "path": "/Groups", "bulkId": "team", "data": {
        "schemas": [GROUP], "displayName": f"Team {suffix()}",
        "members": [{"value": "bulkId:ann"}, {"value": "bulkId:bob"}]}}  # fmt: skip
    rename = {"method": "PATCH", "path": "/Groups/bulkId:team", "data": {
        "schemas": [PATCH], "Operations": [
            {"op": "remove", "path": 'members[value eq "bulkId:bob"]'}]}}  # fmt: skip
    deactivate = {"method": "PUT", "path": "/Users/bulkId:bob",
                  "data": build_user(email="x@example.com")}  # fmt: skip

    response = _bulk(okta, group, _post_user("ann"), _post_user("bob"), rename)

    assert response.status_code == 200
    body = response.json()
    assert body["schemas"] == [BULK_RESPONSE]
    results = body["Operations"]
    assert [(r["method"], r.get("bulkId"), r["status"]) for r in results] == [
        ("POST", "ann", "201"), ("POST", "bob", "201"), ("POST", "team", "201"),
        ("PATCH", None, "200"),
    ]  # fmt: skip
    ann, bob, team = (okta.get(r["location"]).json() for r in results[:3])
    assert results[0]["version"] == ann["meta"]["version"]
    assert [m["value"] for m in team["members"]] == [ann["id"]]
    assert results[3]["location"] == team["meta"]["location"]
    assert bob["active"] is True

    # A PUT changing bob's identity email goes through replace_user's rules: refused.
    refused = _bulk(okta, {**deactivate, "path": f"/Users/{bob['id']}"}).json()["Operations"][0]
    assert refused["status"] == "400"
    assert refused["response"]["scimType"] == "mutability"


def test_each_operation_is_its_own_transaction(okta: TestClient) -> None:
    taken = build_user()
    okta.post("/scim/v2/Users", json=taken)

    results = _bulk(
        okta, _post_user("a"), _post_user("dup", userName=taken["userName"],
                                           emails=taken["emails"]), _post_user("c"),
    ).json()["Operations"]  # fmt: skip

    assert [r["status"] for r in results] == ["201", "409", "201"]
    failed = results[1]
    assert "location" not in failed
    assert failed["response"] == {
        "schemas": [ERROR], "status": "409", "scimType": "uniqueness",
        "detail": failed["response"]["detail"],
    }  # fmt: skip
    for created in (results[0], results[2]):
        assert okta.get(created["location"]).status_code == 200


def test_fail_on_errors_stops_after_that_many_errors(okta: TestClient) -> None:
    bad = {"method": "DELETE", "path": "/Users/00000000-0000-0000-0000-000000000000"}

    stopped = _bulk(okta, bad, _post_user("late"), failOnErrors=1).json()["Operations"]
    going_on = _bulk(okta, bad, bad, _post_user("on"), failOnErrors=3).json()["Operations"]

    assert [r["status"] for r in stopped] == ["404"]
    assert stopped[0]["response"]["status"] == "404"
    assert [r["status"] for r in going_on] == ["404", "404", "201"]


def test_operations_depending_on_a_failed_one_fail_too(okta: TestClient) -> None:
    group = {"method": "POST", "path": "/Groups", "bulkId": "g",
             "data": {"schemas": [GROUP], "displayName": f"T {suffix()}",
                      "members": [{"value": "bulkId:broken"}]}}  # fmt: skip
    broken = _post_user("broken", name={"givenName": "Bad#", "familyName": "X"})

    results = _bulk(okta, broken, group).json()
    statuses = [(r["bulkId"], r["status"]) for r in results["Operations"]]

    assert statuses[0] == ("broken", "400")
    assert statuses[1] == ("g", "400")
    assert "'broken'" in results["Operations"][1]["response"]["detail"]


def test_circular_references_fail_with_409_and_the_rest_runs(okta: TestClient) -> None:
    enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    a = _post_user("a", schemas=["urn:ietf:params:scim:schemas:core:2.0:User", enterprise],
                   **{enterprise: {"manager": {"value": "bulkId:b"}}})  # fmt: skip
    b = _post_user("b", schemas=["urn:ietf:params:scim:schemas:core:2.0:User", enterprise],
                   **{enterprise: {"manager": {"value": "bulkId:a"}}})  # fmt: skip

    results = _bulk(okta, a, b, _post_user("free")).json()["Operations"]

    assert [(r["bulkId"], r["status"]) for r in results] == [
        ("free", "201"), ("a", "409"), ("b", "409"),
    ]  # fmt: skip
    assert "circular" in results[1]["response"]["detail"]


def test_too_many_operations_or_too_large_a_body_is_413(
    settings: Settings, engine: Engine, scim_token: str
) -> None:
    small = settings.model_copy(update={"bulk_max_operations": 2, "max_body_bytes": 4096})
    with TestClient(create_app(small, engine=engine), base_url="http://muster.test") as client:
        client.headers.update({**OKTA_HEADERS, "Authorization": f"Bearer {scim_token}"})
        config = client.get("/scim/v2/ServiceProviderConfig").json()
        many = _bulk(client, *[_post_user(f"u{i}") for i in range(3)])
        large = _bulk(client, _post_user("big", displayName="x" * 5000))

    assert config["bulk"] == {"supported": True, "maxOperations": 2, "maxPayloadSize": 4096}
    for response in (many, large):
        assert response.status_code == 413
        assert response.json()["status"] == "413"
    assert "maxOperations" in many.json()["detail"]


def test_a_malformed_request_writes_nothing(okta: TestClient) -> None:
    response = _bulk(okta, _post_user("ok"), {"method": "POST", "path": "/Users", "data": {}})
    listed = okta.get("/scim/v2/Users").json()

    assert response.status_code == 400
    assert "Operations[1].bulkId" in response.json()["detail"]
    assert listed["totalResults"] == 0


def test_every_operation_is_in_the_provisioning_log(
    okta: TestClient, uow_factory: Any, tenant: TenantInfo
) -> None:
    results = _bulk(okta, _post_user("one"), {"method": "DELETE", "path": "/Groups/nope"}).json()

    entries = provisioning_log.list_entries(uow_factory(tenant.tenant_id), limit=10)
    lines = {(e.method, e.path.split("?")[0], e.status) for e in entries}
    user_id = results["Operations"][0]["location"].rsplit("/", 1)[1]
    assert ("POST", "/scim/v2/Bulk", 200) in lines
    assert ("POST", "/scim/v2/Users", 201) in lines
    assert ("DELETE", "/scim/v2/Groups/nope", 404) in lines
    bulk_entry = next(e for e in entries if e.path == "/scim/v2/Bulk")
    assert {e.request_id for e in entries if e.method != "GET"} == {bulk_entry.request_id}
    assert any(e.resource_id == user_id for e in entries)


def test_bulk_creates_obey_the_seat_limit_like_single_requests(okta: TestClient) -> None:
    # The tenant has 25 seats: the 26th create is refused with the single request's answer.
    results = _bulk(okta, *[_post_user(f"u{i}") for i in range(26)]).json()["Operations"]

    assert [r["status"] for r in results] == ["201"] * 25 + ["403"]
    assert "licence limit reached: 25 of 25" in results[25]["response"]["detail"]
    assert okta.get("/scim/v2/Users", params={"count": 0}).json()["totalResults"] == 25


def test_a_chain_of_managers_is_created_in_dependency_order(okta: TestClient) -> None:
    enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    schemas = ["urn:ietf:params:scim:schemas:core:2.0:User", enterprise]

    def reports_to(bulk_id: str, manager: str) -> dict[str, Any]:
        return _post_user(bulk_id, schemas=schemas,
                          **{enterprise: {"manager": {"value": f"bulkId:{manager}"}}})  # fmt: skip

    results = _bulk(okta, reports_to("c", "b"), reports_to("b", "a"), _post_user("a")).json()
    by_bulk_id = {r["bulkId"]: r for r in results["Operations"]}

    assert [r["bulkId"] for r in results["Operations"]] == ["a", "b", "c"]
    assert {r["status"] for r in results["Operations"]} == {"201"}
    a, b, c = (okta.get(by_bulk_id[x]["location"]).json() for x in "abc")
    assert b[enterprise]["manager"]["value"] == a["id"]
    assert c[enterprise]["manager"]["value"] == b["id"]


def test_an_operation_version_is_its_if_match(okta: TestClient) -> None:
    user = okta.post("/scim/v2/Users", json=build_user()).json()
    deactivate = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]}
    path = f"/Users/{user['id']}"

    stale = {"method": "PATCH", "path": path, "version": 'W/"999"', "data": deactivate}
    fresh = {"method": "PATCH", "path": path, "version": user["meta"]["version"],
             "data": deactivate}  # fmt: skip
    results = _bulk(okta, stale, fresh).json()["Operations"]

    assert [r["status"] for r in results] == ["412", "200"]
    assert results[1]["version"] != user["meta"]["version"]
    assert okta.get(f"/scim/v2{path}").json()["active"] is False


def test_data_nested_deeper_than_the_limit_is_400_and_writes_nothing(okta: TestClient) -> None:
    # Issue 14: ~1,000 nested arrays (orjson reads up to 1,024) hit a RecursionError: a 500.
    operation = _post_user("deep", nickName="@@")
    body = json.dumps({"schemas": [BULK], "Operations": [_post_user("ok"), operation]})
    raw = body.replace('"@@"', "[" * 1000 + '"x"' + "]" * 1000).encode()

    response = okta.post("/scim/v2/Bulk", content=raw)

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"
    assert f"Operations[1].data nests deeper than {MAX_DEPTH} levels" in response.json()["detail"]
    assert okta.get("/scim/v2/Users").json()["totalResults"] == 0
