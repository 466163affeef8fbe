"""ServiceProviderConfig, ResourceTypes and Schemas documents (RFC 7644 §4, RFC 7643 §5-§7)."""

from __future__ import annotations

from typing import Any

from scim2_models import EnterpriseUser, Group, User

from muster.scim.schemas import ENTERPRISE_URN, GROUP_URN, USER_URN

SPC_URN = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_URN = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"


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
        # state, so they never expire and no cursorTimeout is advertised.
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
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base_url}/ServiceProviderConfig",
        },
    }


def resource_types(base_url: str) -> list[dict[str, Any]]:
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


def _schema_document(model: Any, base_url: str) -> dict[str, Any]:
    document: dict[str, Any] = model.to_schema().model_dump(mode="json", exclude_none=True)
    document["meta"] = {
        "resourceType": "Schema",
        "location": f"{base_url}/Schemas/{document['id']}",
    }
    return document


def schemas(base_url: str) -> list[dict[str, Any]]:
    """The User, EnterpriseUser and Group schemas, as scim2-models defines them."""
    return [_schema_document(m, base_url) for m in (User, EnterpriseUser, Group)]
