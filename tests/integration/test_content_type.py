"""Content-Type of SCIM request bodies: JSON in any charset, or none; anything else is 415."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from tests.factories import build_user, patch_op

pytestmark = pytest.mark.integration

ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def _post_user(okta: TestClient, content_type: str | None) -> Any:
    headers = {} if content_type is None else {"Content-Type": content_type}
    if content_type is None:
        del okta.headers["Content-Type"]  # the Okta client's default
    return okta.post("/scim/v2/Users", content=orjson.dumps(build_user()), headers=headers)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/scim+json",
        "application/json",
        "application/scim+json; charset=utf-8",
        "application/json;charset=UTF-8",
        "application/json; charset=iso-8859-1",  # any charset: the body is read as UTF-8 JSON
        "Application/SCIM+JSON; charset=utf-8; profile=x",  # case and other parameters
        "",
        None,  # a JSON body with no Content-Type at all
    ],
)
def test_a_json_body_is_accepted_as_scim_json_or_json_in_any_charset(
    okta: TestClient, content_type: str | None
) -> None:
    response = _post_user(okta, content_type)

    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/xml",
        "text/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json-patch+json",
        "application/octet-stream",
    ],
)
def test_a_body_of_another_media_type_is_415_with_a_scim_error(
    okta: TestClient, content_type: str
) -> None:
    response = _post_user(okta, content_type)

    assert response.status_code == 415
    assert response.headers["content-type"].startswith("application/scim+json")
    body = response.json()
    assert body["schemas"] == [ERROR_URN]
    assert body["status"] == "415"
    media_type = content_type.split(";")[0]
    assert repr(media_type) in body["detail"]
    assert "application/scim+json" in body["detail"] and "application/json" in body["detail"]
    assert okta.get("/scim/v2/Users").json()["totalResults"] == 0  # nothing was created


def test_every_endpoint_that_reads_a_body_refuses_another_media_type(okta: TestClient) -> None:
    user = okta.post("/scim/v2/Users", json=build_user()).json()
    group = okta.post("/scim/v2/Groups", json={"schemas": [GROUP], "displayName": "G"}).json()
    rename = patch_op({"op": "replace", "path": "displayName", "value": "H"})
    deactivate = patch_op({"op": "replace", "path": "active", "value": False})
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/Users", build_user()),
        ("PUT", f"/Users/{user['id']}", {**build_user(), "userName": user["userName"]}),
        ("PATCH", f"/Users/{user['id']}", deactivate),
        ("POST", "/Groups", {"schemas": [GROUP], "displayName": "Other"}),
        ("PUT", f"/Groups/{group['id']}", {"schemas": [GROUP], "displayName": "H"}),
        ("PATCH", f"/Groups/{group['id']}", rename),
        ("POST", "/Users/.search", {"schemas": [SEARCH]}),
        ("POST", "/Groups/.search", {"schemas": [SEARCH]}),
        ("POST", "/.search", {"schemas": [SEARCH]}),
        ("POST", "/Bulk", {"schemas": [BULK], "Operations": []}),
    ]  # fmt: skip

    for method, path, body in requests:
        response = okta.request(
            method,
            f"/scim/v2{path}",
            content=orjson.dumps(body),
            headers={"Content-Type": "text/plain"},
        )
        assert response.status_code == 415, (method, path, response.text)
        assert response.json()["status"] == "415"

    after = okta.get(f"/scim/v2/Users/{user['id']}").json()
    assert after["active"] is True and after["meta"]["version"] == user["meta"]["version"]
    assert okta.get(f"/scim/v2/Groups/{group['id']}").json()["displayName"] == "G"
