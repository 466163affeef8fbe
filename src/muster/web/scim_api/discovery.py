"""/ServiceProviderConfig, /ResourceTypes and /Schemas: read-only discovery documents."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from muster.errors import ScimError
from muster.scim import discovery
from muster.scim.listing import list_response
from muster.web.scim_api.requests import ScimRequest
from muster.web.scim_api.responses import error_response, scim_response

READ_ONLY_METHODS = "GET, HEAD"
WRITE_METHODS = ["POST", "PUT", "PATCH", "DELETE"]


def _discovery_request(request: Request) -> ScimRequest:
    """RFC 7644 §4: list parameters are ignored, but a filter is refused with 403."""
    scim = ScimRequest.of(request)
    if scim.params.get("filter"):
        # A filter we ignored would let the client believe its conditions hold.
        raise ScimError.forbidden(f"{request.url.path} does not take a filter (RFC 7644 §4)")
    return scim


def get_service_provider_config(request: Request) -> Response:
    scim = _discovery_request(request)
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


def list_resource_types(request: Request) -> Response:
    documents = discovery.resource_types(_discovery_request(request).base_url)
    return scim_response(list_response(len(documents), 1, documents))


def get_resource_type(request: Request) -> Response:
    wanted = request.path_params["resource_type"]
    for document in discovery.resource_types(_discovery_request(request).base_url):
        if document["id"] == wanted:
            return scim_response(document)
    raise ScimError.not_found("ResourceType", wanted)


def list_schemas(request: Request) -> Response:
    documents = discovery.schemas(_discovery_request(request).base_url)
    return scim_response(list_response(len(documents), 1, documents))


def get_schema(request: Request) -> Response:
    wanted = request.path_params["schema_id"]
    for document in discovery.schemas(_discovery_request(request).base_url):
        if document["id"].lower() == wanted.lower():  # URNs compare without case (RFC 8141)
            return scim_response(document)
    raise ScimError.not_found("Schema", wanted)


def refuse_write(request: Request) -> Response:
    """Any write to a discovery endpoint: 405 with the Allow header RFC 9110 §15.5.6 asks for."""
    scim = ScimRequest.of(request)
    error = ScimError(
        405,
        f"{request.method} is not allowed on {request.url.path}: discovery documents are "
        "read-only; use GET",
    )
    scim.context.error = error  # the provisioning log records the refusal like any other
    response = error_response(error)
    response.headers["Allow"] = READ_ONLY_METHODS
    return response
