"""scim_response / error_response: resources and RFC 7644 §3.12 errors as application/scim+json."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

import orjson
from starlette.responses import Response

from muster.errors import ScimError
from muster.scim.records import StoredGroup, StoredUser
from muster.scim.schemas import ERROR_URN
from muster.scim.versioning import etag


class ScimResponse(Response):
    """A JSON body serialised with orjson, sent as application/scim+json; charset=utf-8."""

    media_type = "application/scim+json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class StreamedResponse(Response):
    """An application/scim+json body produced chunk by chunk by blocking reads.

    The pipeline pulls each chunk in the request's pool thread (web/scim_api/pipeline.py),
    never on the event loop, and closes the iterator when the body ends or the client goes.
    """

    media_type = ScimResponse.media_type

    def __init__(
        self, chunks: Iterator[bytes], *, status_code: int, headers: Mapping[str, str]
    ) -> None:
        self.chunks = chunks
        self.status_code = status_code
        self.init_headers(headers)


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds") + "Z"


def user_body(user: StoredUser, base_url: str) -> dict[str, Any]:
    """The User resource as served: the stored document plus id and meta."""
    document = user.document
    body: dict[str, Any] = {"schemas": document["schemas"], "id": user.user_id}
    for key, value in document.items():
        if key != "schemas":
            body[key] = value
    if user.groups:
        body["groups"] = [
            {
                "value": group_id,
                "display": name,
                "$ref": f"{base_url}/Groups/{group_id}",
                "type": "direct",
            }
            for group_id, name in user.groups
        ]
    body["meta"] = {
        "resourceType": "User",
        "created": _timestamp(user.created),
        "lastModified": _timestamp(user.last_modified),
        "location": f"{base_url}/Users/{user.user_id}",
        "version": etag(user.version),
    }
    return body


def group_body(group: StoredGroup, base_url: str) -> dict[str, Any]:
    """The Group resource without members, which callers add (or stream) as asked."""
    body: dict[str, Any] = {"schemas": group.document["schemas"], "id": group.group_id}
    for key, value in group.document.items():
        if key != "schemas":
            body[key] = value
    body["meta"] = {
        "resourceType": "Group",
        "created": _timestamp(group.created),
        "lastModified": _timestamp(group.last_modified),
        "location": f"{base_url}/Groups/{group.group_id}",
        "version": etag(group.version),
    }
    return body


def member_items(members: list[tuple[str, str]], base_url: str) -> list[dict[str, str]]:
    return [
        {"value": user_id, "display": name, "type": "User", "$ref": f"{base_url}/Users/{user_id}"}
        for user_id, name in members
    ]


def scim_response(
    body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> ScimResponse:
    return ScimResponse(body, status_code=status, headers=headers)


def encode_within(resources: Iterable[dict[str, Any]], budget: int) -> list[bytes]:
    """Encode resources in turn until the next one would take their JSON past `budget` bytes.

    The first always goes in, however large: a page must move its client forward. Each
    resource is encoded once, here; list_page_response splices the pieces into the page.
    """
    encoded: list[bytes] = []
    size = 0
    for resource in resources:
        piece = orjson.dumps(resource)
        size += len(piece) + 1  # and its comma
        if encoded and size > budget:
            break
        encoded.append(piece)
    return encoded


def list_page_response(body: dict[str, Any]) -> Response:
    """A ListResponse whose `Resources` are already encoded (encode_within), sent as they are."""
    envelope = {key: value for key, value in body.items() if key != "Resources"}
    pieces: list[bytes] = body["Resources"]
    content = b"".join((orjson.dumps(envelope)[:-1], b',"Resources":[', b",".join(pieces), b"]}"))
    return Response(content, media_type=ScimResponse.media_type)


def error_body(error: ScimError, request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [ERROR_URN], "status": str(error.status)}
    if error.scim_type is not None:
        body["scimType"] = error.scim_type.value
    # IdPs show `detail` to the admin (Okta's task list); with the id they can quote it to us.
    body["detail"] = (
        f"{error.detail} (request id: {request_id})" if request_id is not None else error.detail
    )
    return body


def error_response(error: ScimError, request_id: str | None = None) -> ScimResponse:
    """Render a ScimError; 401s tell the client to use a bearer token (RFC 6750 §3)."""
    headers = {}
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="muster-scim"'
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return ScimResponse(error_body(error, request_id), status_code=error.status, headers=headers)
