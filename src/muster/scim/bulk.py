"""BulkRequest parsing, bulkId references and the order operations run in (RFC 7644 §3.7).

A request is checked whole before anything runs (shape, methods, paths, limits): a malformed
one is refused with nothing written. What can fail per operation — a reference to a bulkId
whose operation failed, circular references, the service's own rules — is reported in that
operation's result instead.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass
from typing import Any

from muster.errors import ScimError
from muster.scim.nesting import MAX_DEPTH, too_deep
from muster.scim.patching import (
    MAX_COMPLEX_PATH_CHARACTERS,
    MAX_OPERATIONS,
    changes_of,
    complex_path_characters,
    too_complex,
)

BULK_REQUEST_URN = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE_URN = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
METHODS = ("POST", "PUT", "PATCH", "DELETE")
_RESOURCE_TYPES = {"users": "User", "groups": "Group"}
_PREFIX = "bulkId:"
# A reference inside a path or a PatchOp path: /Users/bulkId:qwerty, members[value eq "bulkId:x"]
_IN_PATH = re.compile(r"bulkId:([^\s\"'\[\]/,()]+)")
# The bulkIds a circular-reference error names; the others of the cycle are counted. Each
# operation of the cycle carries the error, so naming them all made the answer quadratic.
_NAMED_IN_CYCLE = 10


@dataclass(frozen=True, slots=True)
class BulkOperation:
    """One operation of a BulkRequest, as sent (references not yet resolved)."""

    index: int
    method: str
    path: str
    bulk_id: str | None
    version: str | None
    data: Any
    resource_type: str  # "User" or "Group"
    references: frozenset[str]  # the bulkIds this operation needs created first


@dataclass(frozen=True, slots=True)
class BulkRequest:
    operations: list[BulkOperation]
    fail_on_errors: int | None


@dataclass(frozen=True, slots=True)
class Step:
    """An operation in run order, or the reason it cannot run at all."""

    operation: BulkOperation
    error: ScimError | None = None


def _references(value: Any, found: set[str], where: str, *, is_path: bool = False) -> None:
    """Add the bulkIds `value` references to `found`; refuse nesting deeper than MAX_DEPTH."""
    if not isinstance(value, dict | list):
        if isinstance(value, str):
            _string_references(value, found, is_path)
        return
    # A loop over a stack of containers, not recursion: `data` may nest as deep as orjson
    # reads (1024 levels), past Python's recursion limit (issue 14).
    containers: list[tuple[Any, int]] = [(value, 1)]
    while containers:
        container, depth = containers.pop()
        if depth > MAX_DEPTH:
            raise too_deep(where)
        if isinstance(container, dict):
            for key, item in container.items():
                if isinstance(item, str):
                    in_path = isinstance(key, str) and key.lower() == "path"
                    _string_references(item, found, in_path)
                elif isinstance(item, dict | list):
                    containers.append((item, depth + 1))
        else:
            for item in container:
                if isinstance(item, str):
                    _string_references(item, found, False)
                elif isinstance(item, dict | list):
                    containers.append((item, depth + 1))


def _string_references(text: str, found: set[str], is_path: bool) -> None:
    if is_path:
        found.update(_IN_PATH.findall(text))
    elif text.startswith(_PREFIX) and len(text) > len(_PREFIX):
        found.add(text[len(_PREFIX) :])


def _fields(raw: dict[str, Any]) -> dict[str, Any]:
    return {k.lower(): v for k, v in raw.items() if isinstance(k, str)}


def _target(path: str, method: str, where: str) -> tuple[str, str | None]:
    """('User' | 'Group', resource id or None) from '/Users' or '/Groups/{id}'."""
    parts = path.strip("/").split("/")
    resource_type = _RESOURCE_TYPES.get(parts[0].lower()) if parts[0] else None
    if resource_type is None or len(parts) > 2 or (len(parts) == 2 and not parts[1]):
        raise ScimError.invalid_path(
            f"{where}.path {path!r} must be /Users, /Groups, /Users/{{id}} or /Groups/{{id}}"
        )
    resource_id = parts[1] if len(parts) == 2 else None
    if method == "POST" and resource_id is not None:
        raise ScimError.invalid_path(f"{where}: POST creates at /Users or /Groups, not {path!r}")
    if method != "POST" and resource_id is None:
        raise ScimError.invalid_path(f"{where}: {method} needs a resource, e.g. {path}/{{id}}")
    return resource_type, resource_id


def _operation(index: int, raw: Any) -> BulkOperation:
    where = f"Operations[{index}]"
    if not isinstance(raw, dict):
        raise ScimError.invalid_syntax(f"{where} must be a JSON object")
    fields = _fields(raw)
    method = fields.get("method")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise ScimError.invalid_value(f"{where}.method must be one of {', '.join(METHODS)}")
    method = method.upper()
    path = fields.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ScimError.invalid_path(f"{where}.path must be a path such as /Users")
    resource_type, _ = _target(path, method, where)
    bulk_id = fields.get("bulkid")
    if bulk_id is not None and (not isinstance(bulk_id, str) or not bulk_id):
        raise ScimError.invalid_value(f"{where}.bulkId must be a non-empty string")
    if method == "POST" and bulk_id is None:
        raise ScimError.invalid_value(f"{where}.bulkId is required on POST (RFC 7644 §3.7)")
    version = fields.get("version")
    if version is not None and not isinstance(version, str):
        raise ScimError.invalid_value(f"{where}.version must be a string (an ETag)")
    data = fields.get("data")
    if method != "DELETE" and not isinstance(data, dict):
        raise ScimError.invalid_syntax(f"{where}.data must be a JSON object for {method}")
    found: set[str] = set()
    _references(path, found, f"{where}.path", is_path=True)
    if method != "DELETE":
        _references(data, found, f"{where}.data")
    return BulkOperation(
        index, method, path, bulk_id, version, data, resource_type, frozenset(found)
    )


def parse_bulk_request(payload: Any, *, max_operations: int) -> BulkRequest:
    """Check a whole BulkRequest; 413 beyond maxOperations, 400 naming the field otherwise."""
    if not isinstance(payload, dict):
        raise ScimError.invalid_syntax("the request body must be a JSON object")
    fields = _fields(payload)
    schemas = fields.get("schemas")
    if not isinstance(schemas, list) or BULK_REQUEST_URN not in schemas:
        raise ScimError.invalid_value(f"schemas must be [{BULK_REQUEST_URN!r}]")
    raw_operations = fields.get("operations")
    if not isinstance(raw_operations, list):
        raise ScimError.invalid_syntax("Operations must be a list of operations")
    if len(raw_operations) > max_operations:
        # RFC 7644 §3.7.4: 413 when a bulk request exceeds maxOperations.
        raise ScimError(
            413,
            f"the bulk request has {len(raw_operations)} operations; maxOperations is "
            f"{max_operations}",
        )
    fail_on_errors = fields.get("failonerrors")
    if fail_on_errors is not None and (
        isinstance(fail_on_errors, bool)
        or not isinstance(fail_on_errors, int)
        or fail_on_errors < 1
    ):
        raise ScimError.invalid_value("failOnErrors must be a positive integer")
    operations = [_operation(i, raw) for i, raw in enumerate(raw_operations)]
    # One budget for the whole request: each PATCH alone may stay under it, but the full
    # grammar reads ~4 µs a character, and a megabyte of such paths is seconds.
    patches = [op.data for op in operations if op.method == "PATCH"]
    # The changes themselves, counted first (it is cheap): 1 MiB of PatchOps of 1,000 filtered
    # operations each was ~1.3 s of CPU; held to one PatchOp's worth, ~70 ms.
    changes = sum(map(changes_of, patches))
    if changes > MAX_OPERATIONS:
        raise ScimError.invalid_value(
            f"the PATCH operations of this BulkRequest hold {changes} changes together; at "
            f"most {MAX_OPERATIONS} are accepted in one request"
        )
    if sum(map(complex_path_characters, patches)) > MAX_COMPLEX_PATH_CHARACTERS:
        raise too_complex("the complex paths of this BulkRequest's PATCH operations")
    seen: set[str] = set()
    for operation in operations:
        if operation.method == "POST" and operation.bulk_id is not None:
            if operation.bulk_id in seen:
                raise ScimError.invalid_value(
                    f"bulkId {operation.bulk_id!r} is used by more than one POST"
                )
            seen.add(operation.bulk_id)
    return BulkRequest(operations, fail_on_errors)


def schedule(operations: list[BulkOperation]) -> list[Step]:
    """Order operations so each runs after the POSTs whose bulkIds it references.

    Otherwise request order is kept. An operation naming a bulkId no POST defines fails;
    operations caught in circular references (RFC 7644 §3.7.1) fail with 409, as §3.7 allows
    once the cycle cannot be broken: Muster creates nothing half-linked to break it.
    """
    creator = {op.bulk_id: op.index for op in operations if op.method == "POST" and op.bulk_id}
    waiting_on: dict[int, set[int]] = {}
    dependants: dict[int, list[int]] = {op.index: [] for op in operations}
    errors: dict[int, ScimError] = {}
    for op in operations:
        unknown = sorted(ref for ref in op.references if ref not in creator)
        if unknown:
            errors[op.index] = ScimError.invalid_value(
                f"bulkId {unknown[0]!r} is not defined by any POST in this request"
            )
        needs = {creator[ref] for ref in op.references if ref in creator}
        waiting_on[op.index] = needs
        for needed in needs:
            dependants[needed].append(op.index)
    ready = [i for i, needs in waiting_on.items() if not needs]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for dependant in dependants[index]:
            needs = waiting_on[dependant]
            needs.discard(index)
            if not needs:
                heapq.heappush(ready, dependant)
    steps = [Step(operations[i], errors.get(i)) for i in order]
    ran = set(order)
    stuck = [op for op in operations if op.index not in ran]
    if stuck:
        named = [repr(op.bulk_id) for op in stuck if op.bulk_id]
        ids = ", ".join(named[:_NAMED_IN_CYCLE]) or "(none)"
        if len(named) > _NAMED_IN_CYCLE:
            ids += f" and {len(named) - _NAMED_IN_CYCLE} more"
        for op in stuck:
            steps.append(
                Step(op, ScimError(409, f"circular bulkId references among bulkIds {ids}"))
            )
    return steps


def resolve(operation: BulkOperation, created: dict[str, str]) -> tuple[str, Any]:
    """Return (path, data) with every bulkId reference replaced by the id it created."""

    def swap(match: re.Match[str]) -> str:
        return _created(match.group(1), created)

    # Recursive, but parse_bulk_request refused any data nested deeper than MAX_DEPTH.
    def walk(value: Any, is_path: bool = False) -> Any:
        if isinstance(value, str):
            if is_path:
                return _IN_PATH.sub(swap, value)
            if value.startswith(_PREFIX) and len(value) > len(_PREFIX):
                return _created(value[len(_PREFIX) :], created)
            return value
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, dict):
            return {
                key: walk(item, isinstance(key, str) and key.lower() == "path")
                for key, item in value.items()
            }
        return value

    if not operation.references:
        return operation.path, operation.data
    return walk(operation.path, True), walk(operation.data)


def _created(bulk_id: str, created: dict[str, str]) -> str:
    resource_id = created.get(bulk_id)
    if resource_id is None:
        raise ScimError.invalid_value(
            f"bulkId {bulk_id!r} was not created: the operation that defines it failed"
        )
    return resource_id


def target(path: str, method: str) -> tuple[str, str | None]:
    """('User' | 'Group', resource id) of a resolved operation path."""
    return _target(path, method, "operation")


def result_entry(
    operation: BulkOperation,
    *,
    status: int,
    location: str | None = None,
    version: str | None = None,
    error_body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One entry of a BulkResponse's Operations (RFC 7644 §3.7.3); status is a string."""
    entry: dict[str, Any] = {"method": operation.method}
    if operation.bulk_id is not None:
        entry["bulkId"] = operation.bulk_id
    if version is not None:
        entry["version"] = version
    if location is not None:
        entry["location"] = location
    entry["status"] = str(status)
    if error_body is not None:
        # §3.7.3: a response other than 2xx MUST carry its body: the §3.12 error.
        entry["response"] = error_body
    return entry


def bulk_response(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schemas": [BULK_RESPONSE_URN], "Operations": entries}
