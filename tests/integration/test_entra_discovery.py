"""Discovery over HTTP: what /ServiceProviderConfig, /ResourceTypes and /Schemas say is true.

Entra reads /Schemas when a gallery app's provisioning is saved (TUTORIAL, "/Schemas"), and
conformance checkers read all three; RFC 7644 §4 and RFC 7643 §5-§7 define them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from scim2_models import ResourceType, Schema, ServiceProviderConfig
from starlette.testclient import TestClient

from muster.config import Settings
from muster.db.unit_of_work import UnitOfWork
from muster.services import provisioning_log
from tests.factories import ENTERPRISE_URN, USER_URN, build_user, patch_op
from tests.group_factories import GROUP_URN, LIST_RESPONSE_URN, post_group, scim_error
from tests.integration.entra_replay import ENTRA_HEADERS

pytestmark = pytest.mark.integration

BASE = "/scim/v2"
SPC_URN = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
DISCOVERY_PATHS = [
    "/ServiceProviderConfig",
    "/ResourceTypes",
    "/ResourceTypes/User",
    "/ResourceTypes/Group",
    "/Schemas",
    f"/Schemas/{USER_URN}",
    f"/Schemas/{ENTERPRISE_URN}",
    f"/Schemas/{GROUP_URN}",
]


@pytest.fixture
def entra(client: TestClient, scim_token: str) -> Iterator[TestClient]:
    client.headers.update({**ENTRA_HEADERS, "Authorization": f"Bearer {scim_token}"})
    yield client


def _get(entra: TestClient, path: str) -> dict[str, Any]:
    response = entra.get(BASE + path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/scim+json")
    body: dict[str, Any] = response.json()
    return body


def _nulls(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [k for k, v in value.items() if v is None] + [
            n for v in value.values() for n in _nulls(v)
        ]
    if isinstance(value, list):
        return [n for v in value for n in _nulls(v)]
    return []


@pytest.mark.parametrize("path", DISCOVERY_PATHS)
def test_discovery_documents_carry_no_null_values(entra: TestClient, path: str) -> None:
    # TUTORIAL, "/Schemas": "If a value isn't present, don't send null values."
    assert _nulls(_get(entra, path)) == []


# ServiceProviderConfig


def test_service_provider_config_is_a_valid_rfc_7643_document(entra: TestClient) -> None:
    body = _get(entra, "/ServiceProviderConfig")

    ServiceProviderConfig.model_validate(body)
    assert body["schemas"] == [SPC_URN]
    for feature in ("patch", "bulk", "filter", "changePassword", "sort", "etag"):
        assert isinstance(body[feature]["supported"], bool), feature
    assert body["meta"]["location"] == f"http://muster.test{BASE}/ServiceProviderConfig"


def test_service_provider_config_patch_and_sort_are_true(entra: TestClient) -> None:
    body = _get(entra, "/ServiceProviderConfig")
    user = entra.post(f"{BASE}/Users", json=build_user()).json()
    entra.post(f"{BASE}/Users", json=build_user())

    patched = entra.patch(
        f"{BASE}/Users/{user['id']}",
        json=patch_op({"op": "replace", "path": "displayName", "value": "Zed"}),
    )
    ordered = entra.get(
        f"{BASE}/Users", params={"sortBy": "userName", "sortOrder": "descending"}
    ).json()

    assert body["patch"] == {"supported": True}
    assert patched.status_code == 200
    assert body["sort"] == {"supported": True}
    names = [u["userName"] for u in ordered["Resources"]]
    assert names == sorted(names, key=str.lower, reverse=True)


def test_service_provider_config_etag_is_true(entra: TestClient) -> None:
    body = _get(entra, "/ServiceProviderConfig")
    user = entra.post(f"{BASE}/Users", json=build_user())

    again = entra.get(
        f"{BASE}/Users/{user.json()['id']}", headers={"If-None-Match": user.headers["ETag"]}
    )

    assert body["etag"] == {"supported": True}
    assert again.status_code == 304


def test_service_provider_config_change_password_is_false(entra: TestClient) -> None:
    body = _get(entra, "/ServiceProviderConfig")

    created = entra.post(f"{BASE}/Users", json=build_user(password="s3cret-Pa55"))

    # Muster signs people in through SAML only: a password is accepted and never kept.
    assert body["changePassword"] == {"supported": False}
    assert "password" not in created.json()
    assert "s3cret" not in created.text


def test_service_provider_config_filter_max_results_is_the_page_limit(
    entra: TestClient, settings: Settings
) -> None:
    body = _get(entra, "/ServiceProviderConfig")

    assert body["filter"] == {"supported": True, "maxResults": settings.max_page_size}


def test_service_provider_config_names_the_bearer_token(entra: TestClient) -> None:
    (scheme,) = _get(entra, "/ServiceProviderConfig")["authenticationSchemes"]

    assert scheme["type"] == "oauthbearertoken"
    assert scheme["primary"] is True


# ResourceTypes


def test_resource_types_list_user_and_group(entra: TestClient) -> None:
    body = _get(entra, "/ResourceTypes")

    assert body["schemas"] == [LIST_RESPONSE_URN]
    assert (body["totalResults"], body["itemsPerPage"], body["startIndex"]) == (2, 2, 1)
    by_id = {r["id"]: r for r in body["Resources"]}
    assert set(by_id) == {"User", "Group"}
    assert by_id["User"]["schemaExtensions"] == [{"schema": ENTERPRISE_URN, "required": False}]
    assert by_id["Group"]["schema"] == GROUP_URN
    for resource in body["Resources"]:
        ResourceType.model_validate(resource)
        assert resource["meta"]["location"].endswith(f"/ResourceTypes/{resource['id']}")


@pytest.mark.parametrize("resource_type", ["User", "Group"])
def test_each_resource_type_points_at_a_served_endpoint_and_schema(
    entra: TestClient, resource_type: str
) -> None:
    document = _get(entra, f"/ResourceTypes/{resource_type}")

    assert document["id"] == resource_type
    assert _get(entra, document["endpoint"])["schemas"] == [LIST_RESPONSE_URN]
    schema_ids = [document["schema"]] + [e["schema"] for e in document.get("schemaExtensions", [])]
    for schema_id in schema_ids:
        assert _get(entra, f"/Schemas/{schema_id}")["id"] == schema_id


@pytest.mark.parametrize("unknown", ["Nope", "user", "Users"])
def test_an_unknown_resource_type_is_a_404_scim_error(entra: TestClient, unknown: str) -> None:
    error = scim_error(entra.get(f"{BASE}/ResourceTypes/{unknown}"), 404, None)

    assert unknown in error["detail"]


# Schemas


def test_schemas_list_user_enterprise_and_group(entra: TestClient) -> None:
    body = _get(entra, "/Schemas")

    assert body["schemas"] == [LIST_RESPONSE_URN]
    assert [s["id"] for s in body["Resources"]] == [USER_URN, ENTERPRISE_URN, GROUP_URN]
    assert body["totalResults"] == body["itemsPerPage"] == 3
    for schema in body["Resources"]:
        Schema.model_validate(schema)
        assert schema["meta"] == {
            "resourceType": "Schema",
            "location": f"http://muster.test{BASE}/Schemas/{schema['id']}",
        }
        assert schema == _get(entra, f"/Schemas/{schema['id']}")


def test_a_schema_is_found_by_its_urn_in_any_case(entra: TestClient) -> None:
    assert _get(entra, f"/Schemas/{ENTERPRISE_URN.upper()}")["id"] == ENTERPRISE_URN


@pytest.mark.parametrize(
    "unknown",
    ["urn:example:nothing", "urn:ietf:params:scim:schemas:core:2.0:Nope", "User"],
)
def test_an_unknown_schema_is_a_404_scim_error(entra: TestClient, unknown: str) -> None:
    scim_error(entra.get(f"{BASE}/Schemas/{unknown}"), 404, None)


def test_the_enterprise_schema_lists_the_attributes_muster_stores(entra: TestClient) -> None:
    schema = _get(entra, f"/Schemas/{ENTERPRISE_URN}")
    names = [a["name"] for a in schema["attributes"]]
    extension = {
        "employeeNumber": "1",
        "costCenter": "2",
        "organization": "3",
        "division": "4",
        "department": "5",
        "manager": {"value": "m-1"},
    }

    created = entra.post(
        f"{BASE}/Users",
        json=build_user(schemas=[USER_URN, ENTERPRISE_URN], **{ENTERPRISE_URN: extension}),
    ).json()

    assert names == list(extension)
    assert created[ENTERPRISE_URN] == extension
    (manager,) = [a for a in schema["attributes"] if a["name"] == "manager"]
    assert {s["name"] for s in manager["subAttributes"]} == {"value", "$ref", "displayName"}


def test_the_user_schema_says_user_name_is_required_unique_and_case_insensitive(
    entra: TestClient,
) -> None:
    attributes = {a["name"]: a for a in _get(entra, f"/Schemas/{USER_URN}")["attributes"]}
    first = build_user()
    entra.post(f"{BASE}/Users", json=first)

    again = entra.post(f"{BASE}/Users", json=build_user(userName=first["userName"].upper()))

    assert attributes["userName"]["required"] is True
    assert attributes["userName"]["uniqueness"] == "server"
    assert attributes["userName"]["caseExact"] is False
    scim_error(again, 409, "uniqueness")
    assert attributes["groups"]["mutability"] == "readOnly"
    assert attributes["password"]["returned"] == "never"


def test_the_group_schema_says_display_name_is_unique_and_members_are_users(
    entra: TestClient,
) -> None:
    attributes = {a["name"]: a for a in _get(entra, f"/Schemas/{GROUP_URN}")["attributes"]}
    members = {s["name"]: s for s in attributes["members"]["subAttributes"]}
    post_group(entra, displayName="Finance")

    again = entra.post(f"{BASE}/Groups", json={"schemas": [GROUP_URN], "displayName": "FINANCE"})

    assert attributes["displayName"]["uniqueness"] == "server"
    scim_error(again, 409, "uniqueness")
    assert members["$ref"]["referenceTypes"] == ["User"]
    assert members["type"]["canonicalValues"] == ["User"]
    assert members["display"]["mutability"] == "readOnly"


# What discovery refuses


@pytest.mark.parametrize("path", ["/ServiceProviderConfig", "/ResourceTypes", "/Schemas"])
def test_a_filter_on_discovery_is_refused_with_403(entra: TestClient, path: str) -> None:
    # RFC 7644 §4: "If a 'filter' is provided, the service provider SHOULD respond with HTTP
    # status code 403 (Forbidden)".
    response = entra.get(BASE + path, params={"filter": 'id eq "User"'})

    assert "filter" in scim_error(response, 403, None)["detail"]


def test_other_list_parameters_on_discovery_are_ignored(entra: TestClient) -> None:
    # RFC 7644 §4: sorting and pagination "SHALL be ignored".
    body = _get(entra, "/Schemas?startIndex=2&count=1&sortBy=id&attributes=id")

    assert body["totalResults"] == len(body["Resources"]) == 3
    assert "attributes" in body["Resources"][0]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", [*DISCOVERY_PATHS, "/ResourceTypes/Nope", "/Schemas/urn:x"])
def test_a_write_to_discovery_is_a_405_scim_error_with_allow(
    entra: TestClient, method: str, path: str
) -> None:
    response = entra.request(method, BASE + path, json={"schemas": [USER_URN]})

    error = scim_error(response, 405, None)
    assert method in error["detail"]
    assert response.headers["Allow"] == "GET, HEAD"


def test_a_refused_write_to_discovery_is_logged(entra: TestClient, uow: UnitOfWork) -> None:
    entra.put(f"{BASE}/Schemas/{USER_URN}", json={})

    (entry,) = provisioning_log.list_entries(uow, failed_only=True)
    assert (entry.method, entry.status) == ("PUT", 405)
    assert entry.detail is not None and "read-only" in entry.detail


def test_discovery_needs_the_token(client: TestClient) -> None:
    scim_error(client.get(f"{BASE}/Schemas"), 401, None)
