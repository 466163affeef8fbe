"""Validate and normalise a User document against our schemas and product rules."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from muster.errors import ScimError
from muster.scim import client_quirks
from muster.scim.schemas import (
    COMMON_ATTRIBUTES,
    ENTERPRISE_ATTRIBUTES,
    ENTERPRISE_URN,
    USER_ATTRIBUTES,
    USER_URN,
    AttributeSpec,
)

_ENTERPRISE_KEY = ENTERPRISE_URN.lower()
_USER_KEY = USER_URN.lower()
_KNOWN_SCHEMAS = {_USER_KEY: USER_URN, _ENTERPRISE_KEY: ENTERPRISE_URN}
# The server owns these; clients (Okta's PUT, Entra's PATCH) send them back and we ignore them.
_SERVER_OWNED = {"id", "meta", "groups", "schemas"}
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")
# Product rule: names take letters of any script, combining marks, digits, space and . _ - ( ) '
_NAME_PUNCTUATION = frozenset(" ._-()'\u2019")
_NAME_RULE = "letters, digits, spaces and . _ - ( ) '"
# userName, emails, externalId and displayName are indexed in VARCHAR(255) columns.
MAX_INDEXED_LENGTH = 255
# Values one multi-valued attribute of a user may hold (emails, phoneNumbers, addresses, ...):
# each is validated, compared on every PATCH add and, for emails, indexed in its own row. IdPs
# send one to three. A group's members are rows, not values, and are not limited by this.
MAX_MULTI_VALUES = 100
# name.givenName and name.familyName are checked character by character against the name rule
# (~0.15 µs each): a megabyte-long name cost 140 ms.
MAX_NAME_LENGTH = 255


@dataclass(slots=True)
class UserInput:
    """A validated User document and the values Muster indexes and enforces rules on."""

    document: dict[str, Any]
    user_name: str
    email: str
    emails: set[str]
    external_id: str | None
    active: bool | None
    quirks: list[str]

    @property
    def user_name_key(self) -> str:
        return self.user_name.lower()

    @property
    def email_key(self) -> str:
        return self.email.lower()


def parse_user(
    payload: Any, *, require_schemas: bool = True, limit_values: bool = True
) -> UserInput:
    """Check a User body (RFC 7643 §4.1) and return its normalised document.

    `limit_values=False` skips the MAX_MULTI_VALUES check: a PATCH is held to it on what it adds
    (scim/patching.py), so a user stored before the limit can still be deactivated.
    """
    if not isinstance(payload, dict):
        raise ScimError.invalid_syntax("the request body must be a JSON object")
    quirks: list[str] = []
    document: dict[str, Any] = {}
    schemas = [USER_URN]
    declared = _declared_schemas(payload, require_schemas)
    for key, value in payload.items():
        lowered = key.lower()
        if lowered in _SERVER_OWNED or value is None:
            continue
        spec = USER_ATTRIBUTES.get(lowered) or COMMON_ATTRIBUTES.get(lowered)
        if spec is not None:
            if limit_values and spec.multi_valued and isinstance(value, list):
                check_value_count(spec.name, len(value))  # before the values are checked
            if spec.returned == "never":  # password: Muster signs people in through SAML only,
                _check_value(spec, value, spec.name, quirks)  # so it is checked and dropped.
                continue
            checked = _check_value(spec, value, spec.name, quirks)
            if checked is not None:
                document[spec.name] = checked
        elif lowered == _ENTERPRISE_KEY:
            extension = _check_extension(value, quirks)
            if extension:
                document[ENTERPRISE_URN] = extension
                schemas.append(ENTERPRISE_URN)
        elif lowered.startswith("urn:"):
            raise ScimError.invalid_value(
                f"{key!r} is not a schema extension this server supports; "
                f"supported: {USER_URN}, {ENTERPRISE_URN}"
            )
        # Any other key is not an attribute of ours: RFC 7644 §3.3 lets us ignore it, as
        # Microsoft's reference tests expect of a misspelled attribute.
    if ENTERPRISE_URN in declared and ENTERPRISE_URN not in schemas:
        schemas.append(ENTERPRISE_URN)
    document = {"schemas": schemas, **document}

    user_name = document.get("userName")
    if not isinstance(user_name, str) or not user_name.strip():
        raise ScimError.invalid_value("userName is required and must be a non-empty string")
    check_length("userName", user_name)
    check_length("externalId", document.get("externalId"))
    for email_item in document.get("emails", []):
        check_length("emails.value", email_item.get("value"))
    _check_names(document.get("name"))
    email = identity_email(document)
    external_id = document.get("externalId")
    active = document.get("active")
    emails = {e["value"].lower() for e in document.get("emails", []) if "value" in e}
    emails.add(email.lower())
    return UserInput(document, user_name, email, emails, external_id, active, quirks)


def check_length(attribute: str, value: Any) -> None:
    """Refuse a value longer than the indexed column that holds it (MAX_INDEXED_LENGTH)."""
    if isinstance(value, str) and len(value) > MAX_INDEXED_LENGTH:
        raise ScimError.invalid_value(
            f"{attribute} is {len(value)} characters long; "
            f"at most {MAX_INDEXED_LENGTH} are accepted"
        )


def check_value_count(attribute: str, count: int) -> None:
    """Refuse more values in one multi-valued attribute than MAX_MULTI_VALUES."""
    if count > MAX_MULTI_VALUES:
        raise ScimError.invalid_value(
            f"{attribute} has {count} values; at most {MAX_MULTI_VALUES} are accepted"
        )


def identity_email(document: Mapping[str, Any]) -> str:
    """Return the identity email: the primary one, else the first work one, else the userName."""
    emails = [e for e in document.get("emails", []) if isinstance(e.get("value"), str)]
    chosen = next((e["value"] for e in emails if e.get("primary") is True), None)
    if chosen is None:
        chosen = next(
            (e["value"] for e in emails if str(e.get("type", "")).lower() == "work"), None
        )
    if chosen is None:
        user_name = document.get("userName", "")
        if isinstance(user_name, str) and _EMAIL_RE.match(user_name):
            chosen = user_name
    if chosen is None:
        raise ScimError.invalid_value(
            "an email address is required: Muster identifies people by email. Send a primary "
            "or work entry in emails, or a userName that is an email address"
        )
    if not _EMAIL_RE.match(chosen):
        raise ScimError.invalid_value(f"emails.value {chosen!r} is not an email address")
    return str(chosen)


def _declared_schemas(payload: dict[str, Any], required: bool) -> set[str]:
    raw = next((v for k, v in payload.items() if k.lower() == "schemas"), None)
    if raw is None:
        if required:
            raise ScimError.invalid_value(f"schemas is required and must include {USER_URN!r}")
        return {USER_URN}
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise ScimError.invalid_value("schemas must be a list of schema URIs")
    declared = set()
    for urn in raw:
        known = _KNOWN_SCHEMAS.get(urn.lower())
        if known is None:
            raise ScimError.invalid_value(
                f"schemas names {urn!r}, which this server does not support; "
                f"supported: {USER_URN}, {ENTERPRISE_URN}"
            )
        declared.add(known)
    if USER_URN not in declared:
        raise ScimError.invalid_value(f"schemas must include {USER_URN!r}")
    return declared


def _check_extension(value: Any, quirks: list[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScimError.invalid_value(f"{ENTERPRISE_URN} must be an object")
    extension: dict[str, Any] = {}
    for key, item in value.items():
        spec = ENTERPRISE_ATTRIBUTES.get(key.lower())
        if spec is None or item is None:
            continue
        if spec.name == "manager":
            item = _manager(item, quirks)
        checked = _check_value(spec, item, f"{ENTERPRISE_URN}:{spec.name}", quirks)
        if checked is not None:
            extension[spec.name] = checked
    return extension


def _manager(value: Any, quirks: list[str]) -> Any:
    as_item = client_quirks.entra_manager_as_list(value)
    if as_item is not None:
        quirks.append(client_quirks.ENTRA_MANAGER_AS_LIST)
        value = as_item
    as_object = client_quirks.entra_manager_as_string(value)
    if as_object is not None:
        quirks.append(client_quirks.ENTRA_MANAGER_AS_STRING)
        return as_object
    return value


def _check_value(spec: AttributeSpec, value: Any, path: str, quirks: list[str]) -> Any:
    if value is None:
        return None
    if spec.multi_valued:
        if not isinstance(value, list):
            raise ScimError.invalid_value(f"{path} must be a list")
        items = [_check_single(spec, item, path, quirks) for item in value if item is not None]
        return items or None
    return _check_single(spec, value, path, quirks)


def _check_single(spec: AttributeSpec, value: Any, path: str, quirks: list[str]) -> Any:
    kind = spec.type
    if kind == "complex":
        if not isinstance(value, dict):
            raise ScimError.invalid_value(f"{path} must be an object")
        result: dict[str, Any] = {}
        for key, item in value.items():
            sub = spec.sub(key)
            if sub is None or item is None:
                continue
            checked = _check_single(sub, item, f"{path}.{sub.name}", quirks)
            if checked is not None:
                result[sub.name] = checked
        return result or None
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        parsed = client_quirks.entra_string_boolean(value)
        if parsed is None:
            raise ScimError.invalid_value(f"{path} must be a boolean (true or false)")
        quirks.append(client_quirks.ENTRA_STRING_BOOLEAN)
        return parsed
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScimError.invalid_value(f"{path} must be an integer")
        return value
    if kind == "decimal":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ScimError.invalid_value(f"{path} must be a number")
        return value
    if not isinstance(value, str):
        raise ScimError.invalid_value(f"{path} must be a string")
    return value


def _check_names(name: Any) -> None:
    if not isinstance(name, dict):
        return
    for part in ("givenName", "familyName"):
        value = name.get(part)
        if isinstance(value, str):
            if len(value) > MAX_NAME_LENGTH:
                raise ScimError.invalid_value(
                    f"name.{part} is {len(value)} characters long; "
                    f"at most {MAX_NAME_LENGTH} are accepted"
                )
            bad = first_disallowed_name_character(value)
            if bad is not None:
                raise ScimError.invalid_value(
                    f"name.{part} contains {bad!r}, which is not allowed: names may contain "
                    f"{_NAME_RULE}"
                )


def first_disallowed_name_character(value: str) -> str | None:
    """Return the first character a person's name may not contain, or None."""
    for char in value:
        if char in _NAME_PUNCTUATION:
            continue
        category = unicodedata.category(char)
        if category[0] in "LM" or category == "Nd":
            continue
        return char
    return None
