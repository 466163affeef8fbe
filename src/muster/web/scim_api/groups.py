"""/Groups handlers. Until groups land (issue #3) the list is valid and empty."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from muster.errors import ScimError
from muster.scim.listing import list_response, parse_list_query
from muster.web.scim_api.requests import ScimRequest
from muster.web.scim_api.responses import scim_response


async def list_groups(request: Request) -> Response:
    """GET /Groups: no groups are stored yet, so every query matches nothing."""
    scim = ScimRequest.of(request)
    settings = scim.wiring.settings
    query = parse_list_query(
        scim.params, default_count=settings.default_page_size, max_count=settings.max_page_size
    )
    return scim_response(list_response(0, query.start_index, []))


async def groups_not_supported(request: Request) -> Response:
    raise ScimError.not_implemented("group provisioning is not available on this server yet")
