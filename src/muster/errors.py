"""ScimError and ScimType: the one error type every layer raises (RFC 7644 §3.12)."""

from __future__ import annotations

from enum import StrEnum
from typing import Self


class ScimType(StrEnum):
    """The scimType values of RFC 7644 §3.12, table 9."""

    INVALID_FILTER = "invalidFilter"
    TOO_MANY = "tooMany"
    UNIQUENESS = "uniqueness"
    MUTABILITY = "mutability"
    INVALID_SYNTAX = "invalidSyntax"
    INVALID_PATH = "invalidPath"
    NO_TARGET = "noTarget"
    INVALID_VALUE = "invalidValue"
    INVALID_VERSION = "invalidVers"
    SENSITIVE = "sensitive"
    INVALID_CURSOR = "invalidCursor"  # RFC 9865 §2.4


class ScimError(Exception):
    """An RFC 7644 §3.12 error. Any layer may raise it; only web/ renders it."""

    retry_after: int | None = None  # seconds, sent as Retry-After (429, 503)
    reason: str | None = None  # why a 503 was answered: a fixed word, for metrics and logs

    def __init__(self, status: int, detail: str, scim_type: ScimType | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type

    def __repr__(self) -> str:
        return f"ScimError({self.status}, {self.detail!r}, {self.scim_type})"

    @classmethod
    def invalid_syntax(cls, detail: str) -> Self:
        return cls(400, detail, ScimType.INVALID_SYNTAX)

    @classmethod
    def invalid_value(cls, detail: str) -> Self:
        return cls(400, detail, ScimType.INVALID_VALUE)

    @classmethod
    def invalid_filter(cls, detail: str) -> Self:
        return cls(400, detail, ScimType.INVALID_FILTER)

    @classmethod
    def too_many(cls, detail: str) -> Self:
        return cls(400, detail, ScimType.TOO_MANY)

    @classmethod
    def invalid_cursor(cls, detail: str) -> Self:
        return cls(400, detail, ScimType.INVALID_CURSOR)

    @classmethod
    def invalid_path(cls, detail: str) -> Self:
        return cls(400, detail, ScimType.INVALID_PATH)

    @classmethod
    def no_target(cls, detail: str) -> Self:
        return cls(400, detail, ScimType.NO_TARGET)

    @classmethod
    def mutability(cls, detail: str) -> Self:
        return cls(400, detail, ScimType.MUTABILITY)

    @classmethod
    def unauthorized(cls, detail: str = "a valid bearer token is required") -> Self:
        return cls(401, detail)

    @classmethod
    def forbidden(cls, detail: str) -> Self:
        return cls(403, detail)

    @classmethod
    def not_found(cls, resource_type: str, resource_id: str) -> Self:
        # Another tenant's ids land here too: 404, never 403, so a token cannot probe whether
        # an id exists elsewhere.
        return cls(404, f"{resource_type} {resource_id!r} not found")

    @classmethod
    def uniqueness(cls, attribute: str) -> Self:
        return cls(409, f"{attribute} is already in use in this tenant", ScimType.UNIQUENESS)

    @classmethod
    def precondition_failed(cls, detail: str) -> Self:
        return cls(412, detail)

    @classmethod
    def payload_too_large(cls, limit: int) -> Self:
        return cls(413, f"request body is larger than the {limit} bytes accepted")

    @classmethod
    def unsupported_media_type(cls, detail: str) -> Self:
        """415 (RFC 9110 §15.5.16): a body that is not JSON; RFC 7644 has no scimType for it."""
        return cls(415, detail)

    @classmethod
    def too_many_requests(cls, detail: str, *, retry_after: int) -> Self:
        """429 (RFC 6585 §4); RFC 7644 §3.12 has no scimType for it."""
        error = cls(429, detail)
        error.retry_after = retry_after
        return error

    @classmethod
    def not_implemented(cls, detail: str) -> Self:
        return cls(501, detail)

    @classmethod
    def unavailable(cls, detail: str, *, retry_after: int, reason: str) -> Self:
        """503 (RFC 9110 §15.6.4): the database cannot serve this request now; retry later.

        `reason` is a short fixed word (`lock_timeout`, `unreachable`, ...) for metrics and logs.
        """
        error = cls(503, detail)
        error.retry_after = retry_after
        error.reason = reason
        return error
