"""Known Entra/Okta deviations from RFC 7643/7644, normalised here, one function per quirk.

Each function returns the normalised value; the caller records the quirk's name in the
provisioning log so an admin can see which deviation was absorbed.
"""

from __future__ import annotations

from typing import Any

ENTRA_STRING_BOOLEAN = "entra_string_boolean"
ENTRA_CAPITALISED_OP = "entra_capitalised_op"
ENTRA_MANAGER_AS_STRING = "entra_manager_as_string"
ENTRA_MANAGER_AS_LIST = "entra_manager_as_list"

_BOOLEAN_STRINGS = {"true": True, "false": False}


def entra_string_boolean(value: Any) -> bool | None:
    """Entra sends booleans as "True"/"False" strings (SCIMReferenceCode#21); read them.

    https://learn.microsoft.com/entra/identity/app-provisioning/application-provisioning-config-problem-scim-compatibility
    """
    if isinstance(value, str):
        return _BOOLEAN_STRINGS.get(value.strip().lower())
    return None


def entra_capitalised_op(op: str) -> str:
    """Entra writes PATCH ops as "Add", "Replace", "Remove"; RFC 7644 spells them in lower case."""
    return op.lower()


def entra_manager_as_string(value: Any) -> dict[str, Any] | None:
    """Entra may send the enterprise `manager` as a bare id string (directory-scimple#1242)."""
    if isinstance(value, str):
        return {"value": value}
    return None


def entra_manager_as_list(value: Any) -> Any:
    """Entra wraps the single-valued `manager` in a one-element array (tutorial, example 4)."""
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return None
