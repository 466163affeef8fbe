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
