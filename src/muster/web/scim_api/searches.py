"""POST /.search at the root: Users and Groups in one ListResponse (RFC 7644 §3.4.3)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from muster.scim.listing import cursor_list_response, list_response, search_request_params
from muster.services import searches
from muster.web.scim_api.requests import ScimRequest
from muster.web.scim_api.responses import group_body, member_items, scim_response, user_body


def search_resources(request: Request) -> Response:
    """POST /.search: every matching User, then every matching Group, by index or cursor."""
    scim = ScimRequest.of(request)
    scim.use_params(search_request_params(scim.json()))
    query = scim.list_query()
    projection = scim.projection
    with_members = projection.wants("members")
    page = scim.run(
        searches.search_resources,
        query,
        with_groups=projection.wants("groups"),
        with_members=with_members,
    )
    base = scim.base_url
    resources = [projection.apply(user_body(u, base)) for u in page.users]
    for group in page.groups:
        body = group_body(group, base)
        if with_members:
            body["members"] = member_items(page.members.get(group.group_id, []), base)
        resources.append(projection.apply(body))
    if query.cursor is not None:
        body = cursor_list_response(page, resources)
    else:
        body = list_response(page.total, query.start_index, resources)
    return scim_response(body)
