"""MAX_DEPTH: how deep client JSON may nest before a walk over it refuses the request."""

from __future__ import annotations

from muster.errors import ScimError

# orjson reads JSON nested up to 1024 levels, deeper than Python's recursion limit (1000), so
# every recursive walk over a request body stops here instead (issue 14). No SCIM body nests
# deeper than 6: a BulkRequest's Operations / data / Operations / value / element / sub-value.
MAX_DEPTH = 64


def too_deep(where: str) -> ScimError:
    """The 400 for a value nested deeper than MAX_DEPTH, naming where it was sent."""
    return ScimError.invalid_value(f"{where} nests deeper than {MAX_DEPTH} levels")
