"""The root query: Users and Groups in one ListResponse (RFC 7644 §3.4.2.1, §3.4.3)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from muster.scim.listing import cursor_list_response, list_response, search_request_params
from muster.scim.projection import Projection
from muster.services import searches
from muster.services.searches import RootPage
from muster.web.scim_api.requests import ScimRequest
from muster.web.scim_api.responses import (
    encode_within,
    group_body,
    list_page_response,
    member_items,
    user_body,
)


def search_resources(request: Request) -> Response:
    """GET /?filter=… or POST /.search: every matching User, then Group, by index or cursor.

    Both answer alike; GET reads the query string, POST a SearchRequest body. A page holds
    fewer than `count` resources when their JSON would pass the byte budget (see list_users).
    """
    scim = ScimRequest.of(request)
    if request.method == "POST":
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
    encoded = encode_within(
        _bodies(page, projection, scim.base_url, with_members), scim.max_response_bytes
    )
    page = page.cut(len(encoded))
    if query.cursor is not None:
        return list_page_response(cursor_list_response(page, encoded))
    return list_page_response(list_response(page.total, query.start_index, encoded))


def _bodies(
    page: RootPage, projection: Projection, base: str, with_members: bool
) -> Iterator[dict[str, Any]]:
    for user in page.users:
        yield projection.apply(user_body(user, base))
    for group in page.groups:
        body = group_body(group, base)
        if with_members:
            body["members"] = member_items(page.members.get(group.group_id, []), base)
        yield projection.apply(body)
