"""/Groups handlers, each named after the service function it calls.

A group's members are streamed from the membership rows in batches, so reading a
100,000-member group never holds its whole member list in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from muster.scim import versioning
from muster.scim.listing import cursor_list_response, list_response, search_request_params
from muster.scim.projection import Projection
from muster.scim.records import StoredGroup
from muster.services import groups
from muster.web.scim_api.requests import ScimRequest
from muster.web.scim_api.responses import (
    ScimResponse,
    StreamedResponse,
    encode_within,
    group_body,
    list_page_response,
    member_items,
)


def _stream_group(
    scim: ScimRequest, group: StoredGroup, projection: Projection, status: int = 200
) -> Response:
    """Write the group's JSON with its members streamed batch by batch from the database."""
    base = scim.base_url
    body = projection.apply(group_body(group, base))
    headers = {"ETag": versioning.etag(group.version)}
    if status == 201:
        headers["Location"] = f"{base}/Groups/{group.group_id}"
    if not projection.wants("members"):
        return ScimResponse(body, status_code=status, headers=headers)
    head = orjson.dumps(body)[:-1] + b',"members":['
    shaped = projection.shapes_items_of("members")
    # Read lazily: each batch is pulled in a pool thread as the body goes out, in a read
    # transaction of its own that ends with the body (services/groups.iter_members).
    batches = scim.run(groups.iter_members, group.group_id)

    def chunks() -> Iterator[bytes]:
        yield head
        first = True
        for batch in batches:
            if not batch:
                continue
            items = member_items(batch, base)
            if shaped:
                items = projection.apply_to_items("members", items)
            encoded = orjson.dumps(items)[1:-1]
            yield encoded if first else b"," + encoded
            first = False
        yield b"]}"

    return StreamedResponse(chunks(), status_code=status, headers=headers)


def create_group(request: Request) -> Response:
    """POST /Groups: 201 with the group."""
    scim = ScimRequest.of(request)
    outcome = scim.run(groups.create_group, scim.json())
    scim.note(resource_id=outcome.group.group_id, quirks=outcome.quirks)
    return _stream_group(scim, outcome.group, scim.projection, status=201)


def get_group(request: Request) -> Response:
    """GET /Groups/{id}; `excludedAttributes=members` never reads the membership table."""
    scim = ScimRequest.of(request)
    projection = scim.projection
    group = scim.run(groups.get_group, request.path_params["group_id"])
    if versioning.is_not_modified(group.version, scim.if_none_match):
        return Response(status_code=304, headers={"ETag": versioning.etag(group.version)})
    return _stream_group(scim, group, projection)


def list_groups(request: Request, scim: ScimRequest | None = None) -> Response:
    """GET /Groups?filter=displayName eq "…"&excludedAttributes=members&startIndex&count.

    A page holds fewer than `count` groups when their JSON would pass the byte budget (see
    list_users); a group is never split, so one large group can fill a page alone.
    """
    scim = scim or ScimRequest.of(request)
    query = scim.list_query()
    projection = scim.projection
    with_members = projection.wants("members")
    base = scim.base_url
    budget = scim.max_response_bytes
    if query.cursor is not None:  # RFC 9865 cursor pagination
        by_cursor, members = scim.run(
            groups.list_groups_by_cursor, query, with_members=with_members
        )
        encoded = encode_within(
            _group_bodies(by_cursor.items, members, projection, base, with_members), budget
        )
        return list_page_response(cursor_list_response(by_cursor.cut(len(encoded)), encoded))
    total, page, members = scim.run(groups.list_groups, query, with_members=with_members)
    encoded = encode_within(_group_bodies(page, members, projection, base, with_members), budget)
    return list_page_response(list_response(total, query.start_index, encoded))


def _group_bodies(
    page: list[StoredGroup],
    members: dict[str, list[tuple[str, str]]],
    projection: Projection,
    base: str,
    with_members: bool,
) -> Iterator[dict[str, Any]]:
    for group in page:
        body = group_body(group, base)
        if with_members:
            body["members"] = member_items(members.get(group.group_id, []), base)
        yield projection.apply(body)


def replace_group(request: Request) -> Response:
    """PUT /Groups/{id}: displayName and the full member list."""
    scim = ScimRequest.of(request)
    outcome = scim.run(
        groups.replace_group,
        request.path_params["group_id"],
        scim.json(),
        if_match=scim.if_match,
    )
    scim.note(quirks=outcome.quirks)
    return _stream_group(scim, outcome.group, scim.projection)


def patch_group(request: Request) -> Response:
    """PATCH /Groups/{id}: 204, or 200 with the group when the client names attributes."""
    scim = ScimRequest.of(request)
    projection = scim.projection
    outcome = scim.run(
        groups.patch_group,
        request.path_params["group_id"],
        scim.json(),
        if_match=scim.if_match,
    )
    scim.note(quirks=outcome.quirks)
    if projection.is_named:
        return _stream_group(scim, outcome.group, projection)
    # RFC 7644 §3.5.2 allows 204, Entra prefers it, and it spares a 100k-member body.
    return Response(status_code=204, headers={"ETag": versioning.etag(outcome.group.version)})


def delete_group(request: Request) -> Response:
    """DELETE /Groups/{id}: 204."""
    scim = ScimRequest.of(request)
    scim.run(groups.delete_group, request.path_params["group_id"], if_match=scim.if_match)
    return Response(status_code=204)


def search_groups(request: Request) -> Response:
    """POST /Groups/.search: a list query sent as a SearchRequest (RFC 7644 §3.4.3)."""
    scim = ScimRequest.of(request)
    scim.use_params(search_request_params(scim.json()))
    return list_groups(request, scim)
