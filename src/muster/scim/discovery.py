"""ServiceProviderConfig, ResourceTypes and Schemas documents (RFC 7644 §4, RFC 7643 §5-§7)."""

from __future__ import annotations

from functools import cache
from typing import Any

from scim2_models import EnterpriseUser, Group, User

from muster.scim.schemas import ENTERPRISE_URN, GROUP_URN, USER_URN

SPC_URN = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_URN = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"

# Where Muster's rules are narrower than the RFC 7643 §8.7 schemas that scim2-models serves,
# keyed by (schema id, attribute path): the discovery documents must say what we enforce.
_SCHEMA_OVERRIDES: dict[tuple[str, str], dict[str, Any]] = {
    # displayName is unique per tenant, in any letter case (Entra matches groups on it).
    (GROUP_URN, "displayName"): {"uniqueness": "server"},
    # Groups hold users only; nested groups are refused.
    (GROUP_URN, "members.$ref"): {"referenceTypes": ["User"]},
    (GROUP_URN, "members.type"): {"canonicalValues": ["User"]},
    # `display` is the member's userName as Muster stores it; a client's value is not kept.
    (GROUP_URN, "members.display"): {"mutability": "readOnly"},
}


def service_provider_config(
    base_url: str,
    *,
    max_results: int,
    default_page_size: int = 100,
    bulk_max_operations: int = 0,
    bulk_max_payload: int = 0,
) -> dict[str, Any]:
    """Describe exactly what this server supports."""
    return {
        "schemas": [SPC_URN],
        "documentationUri": "https://github.com/muster-idp/muster#readme",
        "patch": {"supported": True},
        "bulk": {
            "supported": bulk_max_operations > 0,
            "maxOperations": bulk_max_operations,
            "maxPayloadSize": bulk_max_payload,
        },
        "filter": {"supported": True, "maxResults": max_results},
        # RFC 9865 §4: both index and cursor pages. Cursors are keyset positions, not server
        # state, so they never expire (while the key that signed them is kept) and no
        # cursorTimeout is advertised.
        "pagination": {
            "cursor": True,
            "index": True,
            "defaultPaginationMethod": "index",
            "defaultPageSize": default_page_size,
            "maxPageSize": max_results,
        },
        "changePassword": {"supported": False},
        "sort": {"supported": True},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "The SCIM token generated for the account, sent as "
                "`Authorization: Bearer <token>`.",
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base_url}/ServiceProviderConfig",
        },
    }


def resource_types(base_url: str) -> list[dict[str, Any]]:
    """The User (with the enterprise extension) and Group resource types (RFC 7643 §6)."""
    return [
        {
            "schemas": [RESOURCE_TYPE_URN],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "A person who may sign in",
            "schema": USER_URN,
            "schemaExtensions": [{"schema": ENTERPRISE_URN, "required": False}],
            "meta": {"resourceType": "ResourceType", "location": f"{base_url}/ResourceTypes/User"},
        },
        {
            "schemas": [RESOURCE_TYPE_URN],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "A group of users",
            "schema": GROUP_URN,
            "meta": {"resourceType": "ResourceType", "location": f"{base_url}/ResourceTypes/Group"},
        },
    ]


def _override(schema_id: str, attributes: list[dict[str, Any]], prefix: str = "") -> None:
    for attribute in attributes:
        path = prefix + attribute["name"]
        attribute.update(_SCHEMA_OVERRIDES.get((schema_id, path), {}))
        _override(schema_id, attribute.get("subAttributes", []), f"{path}.")


@cache
def _schema_documents() -> tuple[dict[str, Any], ...]:
    # Built once per process: scim2-models' to_schema() costs milliseconds and never changes.
    documents = []
    for model in (User, EnterpriseUser, Group):
        document: dict[str, Any] = model.to_schema().model_dump(mode="json", exclude_none=True)
        _override(document["id"], document["attributes"])
        documents.append(document)
    return tuple(documents)


def schemas(base_url: str) -> list[dict[str, Any]]:
    """The User, EnterpriseUser and Group schemas (RFC 7643 §7), as Muster enforces them."""
    return [
        {
            **document,
            "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{document['id']}"},
        }
        for document in _schema_documents()
    ]
