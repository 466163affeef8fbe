"""POST /Bulk: run a BulkRequest and answer its BulkResponse (RFC 7644 §3.7)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from muster.scim.bulk import bulk_response, parse_bulk_request, result_entry
from muster.scim.versioning import etag
from muster.services import bulk
from muster.services.clock import utcnow
from muster.services.provisioning_log import LogEntry
from muster.web.scim_api.requests import ScimRequest
from muster.web.scim_api.responses import error_body, scim_response

_COLLECTIONS = {"User": "Users", "Group": "Groups"}


def run_bulk(request: Request) -> Response:
    """POST /Bulk: each operation in turn; 200 with every operation's own status."""
    scim = ScimRequest.of(request)
    settings = scim.wiring.settings
    bulk_request = parse_bulk_request(scim.json(), max_operations=settings.bulk_max_operations)
    base = scim.base_url
    user_agent = request.headers.get("user-agent")
    entries = []
    for result in scim.run(bulk.run_operations, bulk_request):
        operation = result.operation
        error = result.error
        location = None
        if error is None and result.resource_id is not None:
            location = f"{base}/{_COLLECTIONS[operation.resource_type]}/{result.resource_id}"
        entries.append(
            result_entry(
                operation,
                status=result.status,
                location=location,
                version=etag(result.version) if result.version is not None else None,
                error_body=error_body(error) if error is not None else None,
            )
        )
        # Each operation is a line of the provisioning log, under the /Bulk request's id.
        scim.context.log_entries.append(
            LogEntry(
                at=utcnow(),
                method=operation.method,
                path=f"/scim/v2{result.path}",
                resource_type=operation.resource_type,
                resource_id=result.resource_id,
                status=result.status,
                scim_type=error.scim_type.value if error and error.scim_type else None,
                detail=error.detail if error else None,
                duration_ms=result.duration_ms,
                user_agent=user_agent,
                request_id=scim.context.request_id,
                client_quirks=",".join(sorted(set(result.quirks))) or None,
            )
        )
    return scim_response(bulk_response(entries))
