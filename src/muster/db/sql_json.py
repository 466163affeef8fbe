"""json_object(key, value, ...): a JSON object built by the database, in each dialect's words."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, String, cast, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class json_object(FunctionElement[Any]):
    """Keys are inlined literals; values are columns or bound parameters (cast to text)."""

    type = JSON()
    inherit_cache = True

    def __init__(self, *pairs: Any) -> None:
        keys, values = pairs[0::2], pairs[1::2]
        arguments: list[Any] = []
        for key, value in zip(keys, values, strict=True):
            # PostgreSQL cannot tell the type of a bare parameter given to jsonb_build_object.
            arguments += [literal_column(f"'{key}'", String()), cast(value, String())]
        super().__init__(*arguments)


@compiles(json_object, "postgresql")
def _postgresql(element: json_object, compiler: Any, **kw: Any) -> str:
    return f"jsonb_build_object({compiler.process(element.clauses, **kw)})"


@compiles(json_object, "sqlite")
def _sqlite(element: json_object, compiler: Any, **kw: Any) -> str:
    return f"json_object({compiler.process(element.clauses, **kw)})"
