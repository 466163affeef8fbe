"""template_environment(folder): the Jinja2 set-up every set of pages (console, SSO) shares."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape


def template_environment(folder: Path) -> Environment:
    """Templates from `folder`, HTML-escaped by default, block tags leaving no blank lines."""
    return Environment(
        loader=FileSystemLoader(folder),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


# A page answered 503 (the database cannot serve now) tells browsers and proxies when to retry.
UNAVAILABLE_RETRY_AFTER = "5"


def with_retry_after(headers: dict[str, str], status: int) -> dict[str, str]:
    """`headers`, plus Retry-After when the page is a 503."""
    if status != 503:
        return headers
    return {**headers, "Retry-After": UNAVAILABLE_RETRY_AFTER}
