"""ETag of a resource; If-Match / If-None-Match decisions (RFC 7644 §3.14, RFC 9110 §13.1)."""

from __future__ import annotations

from muster.errors import ScimError


def etag(version: int) -> str:
    """Return the weak entity tag for a resource version, as meta.version and ETag carry it."""
    return f'W/"{version}"'


def _tags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def require_match(version: int, if_match: str | None) -> None:
    """Refuse a write whose If-Match names another version (412 Precondition Failed)."""
    if if_match is None:
        return
    tags = _tags(if_match)
    if "*" in tags or f'"{version}"' in tags:
        return
    raise ScimError.precondition_failed(
        f"If-Match {if_match} does not match the current version {etag(version)}"
    )


def changed_since_read(resource_type: str, resource_id: str) -> ScimError:
    """The error for a write whose resource moved to another version after it was read."""
    return ScimError.precondition_failed(
        f"{resource_type} {resource_id} was changed by another request while this one ran; "
        "read it again and retry"
    )


def is_not_modified(version: int, if_none_match: str | None) -> bool:
    """Tell whether a GET may answer 304 Not Modified."""
    if if_none_match is None:
        return False
    tags = _tags(if_none_match)
    return "*" in tags or f'"{version}"' in tags
