"""run_operations: a /Bulk request's operations, each through its single-request service.

Each operation is its own transaction (RFC 7644 §3.7 lets earlier successes stand when a
later operation fails) and goes through exactly the service function its single request
would (create_user, patch_group, ...), so seats, names, email identity and group rules hold
the same. Operations run in dependency order (scim/bulk.schedule) and stop once failOnErrors
errors have happened.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from muster.db.unit_of_work import UnitOfWork
from muster.errors import ScimError
from muster.scim import bulk
from muster.scim.bulk import BulkOperation, BulkRequest
from muster.services import groups, users

logger = logging.getLogger("muster.scim")


@dataclass(slots=True)
class OperationResult:
    """What one operation did, for the BulkResponse and the provisioning log."""

    operation: BulkOperation
    path: str  # with bulkId references resolved when they could be
    status: int
    resource_id: str | None = None
    version: int | None = None
    error: ScimError | None = None
    quirks: list[str] = field(default_factory=list)
    duration_ms: float = 0.0


def run_operations(uow: UnitOfWork, request: BulkRequest) -> Iterator[OperationResult]:
    """Run the operations in dependency order, yielding each result as it is known.

    Between two yields no transaction is open, so the caller may hand control to other
    requests there.
    """
    with uow:
        uow.commit()  # end the request's opening read (the token check): nothing stays open
    created: dict[str, str] = {}
    errors = 0
    for step in bulk.schedule(request.operations):
        if request.fail_on_errors is not None and errors >= request.fail_on_errors:
            return  # RFC 7644 §3.7.3: stop, and answer with what has run
        started = time.perf_counter()
        result = _run_step(uow, step, created)
        result.duration_ms = (time.perf_counter() - started) * 1000
        if result.error is not None:
            errors += 1
        elif step.operation.method == "POST" and step.operation.bulk_id is not None:
            assert result.resource_id is not None
            created[step.operation.bulk_id] = result.resource_id
        yield result


def _run_step(uow: UnitOfWork, step: bulk.Step, created: dict[str, str]) -> OperationResult:
    operation = step.operation
    path = operation.path
    try:
        if step.error is not None:
            raise step.error
        path, data = bulk.resolve(operation, created)
        resource_type, resource_id = bulk.target(path, operation.method)
        return _dispatch(uow, operation, path, data, resource_type, resource_id)
    except ScimError as error:
        return OperationResult(operation, path, error.status, error=error)
    except Exception:
        logger.exception("unhandled error in bulk operation %d (%s %s)", operation.index,
                         operation.method, path)  # fmt: skip
        return OperationResult(operation, path, 500, error=ScimError(500, "internal error"))


def _dispatch(
    uow: UnitOfWork,
    operation: BulkOperation,
    path: str,
    data: Any,
    resource_type: str,
    resource_id: str | None,
) -> OperationResult:
    method, if_match = operation.method, operation.version
    if method == "DELETE":
        assert resource_id is not None
        delete = users.delete_user if resource_type == "User" else groups.delete_group
        delete(uow, resource_id, if_match=if_match)
        return OperationResult(operation, path, 204, resource_id)
    if resource_type == "User":
        if method == "POST":
            outcome = users.create_user(uow, data)
        elif method == "PUT":
            assert resource_id is not None
            outcome = users.replace_user(uow, resource_id, data, if_match=if_match)
        else:
            assert resource_id is not None
            outcome = users.patch_user(uow, resource_id, data, if_match=if_match)
        user = outcome.user
        status = 201 if method == "POST" else 200
        return OperationResult(
            operation, path, status, user.user_id, user.version, quirks=outcome.quirks
        )
    if method == "POST":
        group_outcome = groups.create_group(uow, data)
    elif method == "PUT":
        assert resource_id is not None
        group_outcome = groups.replace_group(uow, resource_id, data, if_match=if_match)
    else:
        assert resource_id is not None
        group_outcome = groups.patch_group(uow, resource_id, data, if_match=if_match)
    group = group_outcome.group
    status = 201 if method == "POST" else 200
    return OperationResult(
        operation, path, status, group.group_id, group.version, quirks=group_outcome.quirks
    )
