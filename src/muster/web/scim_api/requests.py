"""ScimRequest: a handler's view of one request (tenant, body, query, preconditions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request

from muster.errors import ScimError
from muster.scim.listing import ListQuery, parse_list_query
from muster.scim.projection import Projection
from muster.services.database import UnitOfWork
from muster.web.scim_api.pipeline import ScimContext, context_of
from muster.web.wiring import Wiring

P = ParamSpec("P")
_CANONICAL_PARAMS = {
    "filter": "filter",
    "startindex": "startIndex",
    "count": "count",
    "attributes": "attributes",
    "excludedattributes": "excludedAttributes",
    "sortby": "sortBy",
    "sortorder": "sortOrder",
    "cursor": "cursor",
}
T = TypeVar("T")
# RFC 7644 §3.1 names application/scim+json; plain JSON is what many clients send. Parameters
# (charset=utf-8, or any other) do not matter: the body is read as UTF-8 JSON either way.
JSON_MEDIA_TYPES = frozenset({"application/scim+json", "application/json"})


class ScimRequest:
    """Reads what a SCIM handler needs; the tenant was fixed by the pipeline from the token."""

    __slots__ = ("_params", "_projection", "context", "request", "wiring")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.context: ScimContext = context_of(request.scope)
        self.wiring: Wiring = request.app.state.wiring
        self._params: dict[str, str] | None = None
        self._projection: Projection | None = None

    @classmethod
    def of(cls, request: Request) -> ScimRequest:
        return cls(request)

    @property
    def base_url(self) -> str:
        return self.context.base_url

    @property
    def if_match(self) -> str | None:
        return self.request.headers.get("if-match")

    @property
    def if_none_match(self) -> str | None:
        return self.request.headers.get("if-none-match")

    @property
    def params(self) -> dict[str, str]:
        if self._params is None:
            self._params = self._read_params()
        return self._params

    def use_params(self, params: dict[str, str]) -> None:
        """Take list parameters from a POST /.search body instead of the query string."""
        self._params, self._projection = params, None

    @property
    def projection(self) -> Projection:
        """The attributes / excludedAttributes the client asked for (RFC 7644 §3.4.2.5)."""
        if self._projection is None:
            params = self.params
            self._projection = Projection.parse(
                params.get("attributes"), params.get("excludedAttributes")
            )
        return self._projection

    def _read_params(self) -> dict[str, str]:
        # SCIM query parameter names are case-insensitive in practice (startindex, Count).
        # Read straight from the raw query string: Starlette's QueryParams costs more and
        # SCIM needs only the last value of each name.
        query = self.request.scope.get("query_string", b"")
        if not query:
            return {}
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        return {_CANONICAL_PARAMS.get(k.lower(), k): v for k, v in pairs}

    def list_query(self) -> ListQuery:
        """filter, startIndex and count, with this server's page sizes (RFC 7644 §3.4.2); a
        cursor is signed with the server's keys and bound to the tenant the token proved."""
        settings = self.wiring.settings
        return parse_list_query(
            self.params,
            default_count=settings.default_page_size,
            max_count=settings.max_page_size,
            # Only a request that pages by cursor needs the keys (read from the database once).
            cursor_keys=self.wiring.cursor_keyring.keys() if "cursor" in self.params else None,
            tenant_id=self.context.tenant_id,
        )

    @property
    def max_response_bytes(self) -> int:
        """A list page's budget for its resources' JSON (MUSTER_MAX_RESPONSE_BYTES)."""
        return self.wiring.settings.max_response_bytes

    def uow(self) -> UnitOfWork:
        """The request's unit of work: its tenant was fixed from the token, once."""
        uow = self.context.uow
        assert uow is not None and uow.tenant_id == self.context.tenant_id
        return uow

    def run(
        self, service: Callable[Concatenate[UnitOfWork, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Call a service with this tenant's unit of work."""
        return service(self.uow(), *args, **kwargs)

    def note(self, *, resource_id: str | None = None, quirks: list[str] | None = None) -> None:
        """Tell the provisioning log which resource this was and which quirks were absorbed."""
        if resource_id is not None:
            self.context.resource_id = resource_id
        if quirks:
            self.context.quirks.extend(quirks)

    def json(self) -> Any:
        """Parse the JSON body the pipeline read; 415 unless it is sent as JSON, 400
        invalidSyntax when malformed."""
        self._require_json_media_type()
        raw = self.context.body
        if not raw.strip():
            raise ScimError.invalid_syntax("the request body is empty; send a JSON object")
        if b"\\u0000" in raw:
            # PostgreSQL cannot store NUL in text or JSON; refuse it for every database alike.
            raise ScimError.invalid_value("strings may not contain the NUL character (\\u0000)")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise ScimError.invalid_syntax(f"the request body is not valid JSON: {error}") from None

    def _require_json_media_type(self) -> None:
        """415 for a body of another media type; a body with no Content-Type is read as JSON."""
        header = self.request.headers.get("content-type", "")
        media_type = header.split(";", 1)[0].strip().lower()
        if media_type and media_type not in JSON_MEDIA_TYPES:
            shown = media_type if len(media_type) <= 80 else media_type[:80] + "…"
            raise ScimError.unsupported_media_type(
                f"Content-Type {shown!r} is not accepted: send the body as application/scim+json "
                "or application/json (RFC 7644 §3.1)"
            )
