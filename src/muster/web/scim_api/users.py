"""/Users handlers, each named after the service function it calls (RFC 7644 §3.2-§3.6)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from muster.scim import client_quirks, versioning
from muster.scim.listing import cursor_list_response, list_response, search_request_params
from muster.scim.records import StoredUser
from muster.services import users
from muster.web.scim_api.requests import ScimRequest
from muster.web.scim_api.responses import (
    ScimResponse,
    encode_within,
    list_page_response,
    user_body,
)


def _user_response(scim: ScimRequest, user: StoredUser, *, status: int = 200) -> Response:
    """Answer with one user (as projected), its ETag and, on creation, its Location."""
    body = user_body(user, scim.base_url)
    headers = {"ETag": body["meta"]["version"]}
    if status == 201:
        headers["Location"] = body["meta"]["location"]
    return ScimResponse(scim.projection.apply(body), status_code=status, headers=headers)


def create_user(request: Request) -> Response:
    """POST /Users: create a user (or revive a deactivated one) and answer 201."""
    scim = ScimRequest.of(request)
    outcome = scim.run(users.create_user, scim.json())
    scim.note(resource_id=outcome.user.user_id, quirks=outcome.quirks)
    return _user_response(scim, outcome.user, status=201)


def get_user(request: Request) -> Response:
    """GET /Users/{id}."""
    scim = ScimRequest.of(request)
    projection = scim.projection
    user = scim.run(
        users.get_user, request.path_params["user_id"], with_groups=projection.wants("groups")
    )
    if versioning.is_not_modified(user.version, scim.if_none_match):
        return Response(status_code=304, headers={"ETag": versioning.etag(user.version)})
    return _user_response(scim, user)


def list_users(request: Request, scim: ScimRequest | None = None) -> Response:
    """GET /Users?filter=...&startIndex=...&count=... (or &cursor=..., RFC 9865).

    A page holds fewer than `count` users when their JSON would pass the byte budget: an
    index page says so in itemsPerPage, a cursor page's nextCursor goes on after its last user.
    """
    scim = scim or ScimRequest.of(request)
    query = scim.list_query()
    if query.filter is not None:
        scim.note(quirks=client_quirks.user_filter_quirks(scim.params["filter"], query.filter))
    projection = scim.projection
    base = scim.base_url
    with_groups = projection.wants("groups")
    if query.cursor is not None:  # RFC 9865 cursor pagination
        by_cursor = scim.run(users.list_users_by_cursor, query, with_groups=with_groups)
        encoded = encode_within(
            (projection.apply(user_body(u, base)) for u in by_cursor.items),
            scim.max_response_bytes,
        )
        return list_page_response(cursor_list_response(by_cursor.cut(len(encoded)), encoded))
    total, page = scim.run(users.list_users, query, with_groups=with_groups)
    encoded = encode_within(
        (projection.apply(user_body(u, base)) for u in page), scim.max_response_bytes
    )
    return list_page_response(list_response(total, query.start_index, encoded))


def replace_user(request: Request) -> Response:
    """PUT /Users/{id}: replace a user's mutable attributes."""
    scim = ScimRequest.of(request)
    outcome = scim.run(
        users.replace_user,
        request.path_params["user_id"],
        scim.json(),
        if_match=scim.if_match,
    )
    scim.note(quirks=outcome.quirks)
    return _user_response(scim, outcome.user)


def patch_user(request: Request) -> Response:
    """PATCH /Users/{id}: apply a PatchOp and answer 200 with the user."""
    scim = ScimRequest.of(request)
    outcome = scim.run(
        users.patch_user, request.path_params["user_id"], scim.json(), if_match=scim.if_match
    )
    scim.note(quirks=outcome.quirks)
    return _user_response(scim, outcome.user)


def delete_user(request: Request) -> Response:
    """DELETE /Users/{id}: 204 No Content."""
    scim = ScimRequest.of(request)
    scim.run(users.delete_user, request.path_params["user_id"], if_match=scim.if_match)
    return Response(status_code=204)


def search_users(request: Request) -> Response:
    """POST /Users/.search: a list query sent as a SearchRequest (RFC 7644 §3.4.3)."""
    scim = ScimRequest.of(request)
    scim.use_params(search_request_params(scim.json()))
    return list_users(request, scim)
