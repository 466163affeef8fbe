"""/ServiceProviderConfig, /ResourceTypes and /Schemas: read-only discovery documents."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from muster.errors import ScimError
from muster.scim import discovery
from muster.scim.listing import list_response
from muster.web.scim_api.requests import ScimRequest
from muster.web.scim_api.responses import scim_response


async def get_service_provider_config(request: Request) -> Response:
    scim = ScimRequest.of(request)
    settings = scim.wiring.settings
    return scim_response(
        discovery.service_provider_config(
            scim.base_url,
            max_results=settings.max_page_size,
            default_page_size=settings.default_page_size,
            bulk_max_operations=settings.bulk_max_operations,
            bulk_max_payload=settings.max_body_bytes,
        )
    )


async def list_resource_types(request: Request) -> Response:
    documents = discovery.resource_types(ScimRequest.of(request).base_url)
    return scim_response(list_response(len(documents), 1, documents))


async def get_resource_type(request: Request) -> Response:
    wanted = request.path_params["resource_type"]
    for document in discovery.resource_types(ScimRequest.of(request).base_url):
        if document["id"] == wanted:
            return scim_response(document)
    raise ScimError.not_found("ResourceType", wanted)


async def list_schemas(request: Request) -> Response:
    documents = discovery.schemas(ScimRequest.of(request).base_url)
    return scim_response(list_response(len(documents), 1, documents))


async def get_schema(request: Request) -> Response:
    wanted = request.path_params["schema_id"]
    for document in discovery.schemas(ScimRequest.of(request).base_url):
        if document["id"] == wanted:
            return scim_response(document)
    raise ScimError.not_found("Schema", wanted)
