"""/Users handlers, each named after the service function it calls (RFC 7644 §3.2-§3.6)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from muster.scim import versioning
from muster.scim.listing import list_response, parse_list_query
from muster.services import users
from muster.web.scim_api.requests import ScimRequest
from muster.web.scim_api.responses import scim_response, user_body, user_response


async def create_user(request: Request) -> Response:
    """POST /Users: create a user (or revive a deactivated one) and answer 201."""
    scim = ScimRequest.of(request)
    outcome = scim.run(users.create_user, await scim.json())
    scim.note(resource_id=outcome.user.user_id, quirks=outcome.quirks)
    return user_response(outcome.user, scim.base_url, status=201)


async def get_user(request: Request) -> Response:
    """GET /Users/{id}."""
    scim = ScimRequest.of(request)
    user = scim.run(users.get_user, request.path_params["user_id"])
    if versioning.is_not_modified(user.version, scim.if_none_match):
        return Response(status_code=304, headers={"ETag": versioning.etag(user.version)})
    return user_response(user, scim.base_url)


async def list_users(request: Request) -> Response:
    """GET /Users?filter=...&startIndex=...&count=..."""
    scim = ScimRequest.of(request)
    settings = scim.wiring.settings
    query = parse_list_query(
        scim.params, default_count=settings.default_page_size, max_count=settings.max_page_size
    )
    total, page = scim.run(users.list_users, query)
    base = scim.base_url
    return scim_response(
        list_response(total, query.start_index, [user_body(u, base) for u in page])
    )


async def replace_user(request: Request) -> Response:
    """PUT /Users/{id}: replace a user's mutable attributes."""
    scim = ScimRequest.of(request)
    outcome = scim.run(
        users.replace_user,
        request.path_params["user_id"],
        await scim.json(),
        if_match=scim.if_match,
    )
    scim.note(quirks=outcome.quirks)
    return user_response(outcome.user, scim.base_url)


async def patch_user(request: Request) -> Response:
    """PATCH /Users/{id}: apply a PatchOp and answer 200 with the user."""
    scim = ScimRequest.of(request)
    outcome = scim.run(
        users.patch_user, request.path_params["user_id"], await scim.json(), if_match=scim.if_match
    )
    scim.note(quirks=outcome.quirks)
    return user_response(outcome.user, scim.base_url)


async def delete_user(request: Request) -> Response:
    """DELETE /Users/{id}: 204 No Content."""
    scim = ScimRequest.of(request)
    scim.run(users.delete_user, request.path_params["user_id"], if_match=scim.if_match)
    return Response(status_code=204)
