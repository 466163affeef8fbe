"""Validate and normalise a User document against our schemas and product rules."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from muster.errors import ScimError
from muster.scim import client_quirks
from muster.scim.identities import check_identity_text, identity_key
from muster.scim.schemas import (
    COMMON_ATTRIBUTES,
    ENTERPRISE_ATTRIBUTES,
    ENTERPRISE_URN,
    MAX_TEXT_LENGTH,
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
# userName, emails, externalId and displayName are indexed in VARCHAR(255) columns; their keys
# (identities.identity_key) too. Every other string has its limit in scim/schemas.py.
MAX_INDEXED_LENGTH = MAX_TEXT_LENGTH
# Values one multi-valued attribute of a user may hold (emails, phoneNumbers, addresses, ...):
# each is validated, compared on every PATCH add and, for emails, indexed in its own row. IdPs
# send one to three. A group's members are rows, not values, and are not limited by this.
MAX_MULTI_VALUES = 100
# A whole user as stored (compact JSON, UTF-8): what every read, write and page carries.
# Okta's and Entra's users weigh 1-3 KB; each attribute is capped too, but 100 values of each
# multi-valued attribute would still add up to megabytes.
MAX_USER_DOCUMENT_BYTES = 64 * 1024


@dataclass(slots=True)
class UserInput:
    """A validated User document and the values Muster indexes and enforces rules on."""

    document: dict[str, Any]
    user_name: str
    email: str
    emails: set[str]  # the key (identities.identity_key) of every email, the identity one too
    external_id: str | None
    active: bool | None
    quirks: list[str]

    @property
    def user_name_key(self) -> str:
        return identity_key(self.user_name)

    @property
    def email_key(self) -> str:
        return identity_key(self.email)

    def email_as_sent(self, key: str) -> str:
        """The email with this key as the client spelled it, for an error message."""
        for item in self.document.get("emails", []):
            value = item.get("value")
            if isinstance(value, str) and identity_key(value) == key:
                return value
        return self.email if self.email_key == key else key


@dataclass(slots=True)
class _Reading:
    """What one parse needs besides the body: quirks noted, and the document already stored.

    A value already stored is not judged again by a rule that came after it (a length limit,
    the identity characters, a required value): a user stored before the rule can still be
    replaced or patched (deactivated, say) as long as that value stays as it is.
    """

    quirks: list[str]
    stored: Mapping[str, Any] | None
    _stored_strings: set[str] | None = field(default=None)

    def already_stored(self, value: str) -> bool:
        if self.stored is None:
            return False
        if self._stored_strings is None:  # only read when a rule is broken
            self._stored_strings = set(_strings(self.stored))
        return value in self._stored_strings

    def already_stored_element(self, attribute: str, element: dict[str, Any]) -> bool:
        return self.stored is not None and element in (self.stored.get(attribute) or [])

    def no_larger_than_stored(self, document: Mapping[str, Any]) -> bool:
        # `active` aside: true -> false is one byte more, and deactivating must stay possible.
        if self.stored is None:
            return False
        return _size_apart_from_active(document) <= _size_apart_from_active(self.stored)


def _size_apart_from_active(document: Mapping[str, Any]) -> int:
    return len(orjson.dumps({k: v for k, v in document.items() if k != "active"}))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def parse_user(
    payload: Any,
    *,
    require_schemas: bool = True,
    limit_values: bool = True,
    stored: Mapping[str, Any] | None = None,
) -> UserInput:
    """Check a User body (RFC 7643 §4.1) and return its normalised document.

    `limit_values=False` skips the MAX_MULTI_VALUES check: a PATCH is held to it on what it adds
    (scim/patching.py), so a user stored before the limit can still be deactivated. `stored`,
    the user's current document on a PUT or PATCH, lets values stored before a rule stay.
    """
    if not isinstance(payload, dict):
        raise ScimError.invalid_syntax("the request body must be a JSON object")
    reading = _Reading([], stored)
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
                _check_value(spec, value, spec.name, reading)  # so it is checked and dropped.
                continue
            checked = _check_value(spec, value, spec.name, reading)
            if checked is not None:
                document[spec.name] = checked
        elif lowered == _ENTERPRISE_KEY:
            extension = _check_extension(value, reading)
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
    _check_identity("userName", user_name, reading)
    emails: set[str] = set()
    for index, item in enumerate(document.get("emails", [])):
        value = item.get("value")
        if isinstance(value, str) and value.strip():  # a blank one is no address to index
            _check_identity(f"emails[{index}].value", value, reading)
            emails.add(identity_key(value))
    _check_names(document.get("name"))
    email = identity_email(document)
    emails.add(identity_key(email))
    _check_size(document, reading)
    external_id = document.get("externalId")
    active = document.get("active")
    return UserInput(document, user_name, email, emails, external_id, active, reading.quirks)


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


def _check_identity(attribute: str, value: str, reading: _Reading) -> None:
    """A userName or email: no hidden characters or look-alike domain; a key that fits."""
    if reading.already_stored(value):
        return
    check_identity_text(attribute, value)
    key = identity_key(value)
    if len(key) > MAX_INDEXED_LENGTH:  # NFKC spells some characters out: ㍿ is 株式会社
        raise ScimError.invalid_value(
            f"{attribute} is {len(key)} characters long once normalised (NFKC); "
            f"at most {MAX_INDEXED_LENGTH} are accepted"
        )


def _check_size(document: dict[str, Any], reading: _Reading) -> None:
    size = len(orjson.dumps(document))
    if size > MAX_USER_DOCUMENT_BYTES and not reading.no_larger_than_stored(document):
        raise ScimError.invalid_value(
            f"the user is {size} bytes long as stored (all its attributes together); at most "
            f"{MAX_USER_DOCUMENT_BYTES} (64 KiB) are accepted"
        )


def identity_email(document: Mapping[str, Any]) -> str:
    """Return the identity email: the primary one, else the first work one, else the userName."""
    emails = [
        e
        for e in document.get("emails", [])
        if isinstance(e, dict) and isinstance(e.get("value"), str)
    ]
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


def _check_extension(value: Any, reading: _Reading) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScimError.invalid_value(f"{ENTERPRISE_URN} must be an object")
    extension: dict[str, Any] = {}
    for key, item in value.items():
        spec = ENTERPRISE_ATTRIBUTES.get(key.lower())
        if spec is None or item is None:
            continue
        if spec.name == "manager":
            item = _manager(item, reading.quirks)
        checked = _check_value(spec, item, f"{ENTERPRISE_URN}:{spec.name}", reading)
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


def _check_value(spec: AttributeSpec, value: Any, path: str, reading: _Reading) -> Any:
    if value is None:
        return None
    if spec.multi_valued:
        if not isinstance(value, list):
            raise ScimError.invalid_value(f"{path} must be a list")
        items = [
            _check_element(spec, item, f"{path}[{index}]", reading)
            for index, item in enumerate(value)
            if item is not None
        ]
        return items or None
    return _check_single(spec, value, path, reading)


def _check_element(spec: AttributeSpec, item: Any, path: str, reading: _Reading) -> Any:
    """One value of a multi-valued attribute: never empty; with a `value` where it has one."""
    checked = _check_single(spec, item, path, reading)
    if spec.type != "complex":
        return checked
    if "value" in spec.sub_attributes:
        # An email, phone number, role... without its value says nothing (and `[{}]` once
        # reached the identity code as None: a 500).
        if checked is None or (
            "value" not in checked and not reading.already_stored_element(spec.name, checked)
        ):
            raise ScimError.invalid_value(f"{path}.value is required")
    elif checked is None:
        names = ", ".join(sub.name for sub in spec.sub_attributes.values())
        raise ScimError.invalid_value(f"{path} is empty: it needs at least one of {names}")
    return checked


def _check_single(spec: AttributeSpec, value: Any, path: str, reading: _Reading) -> Any:
    kind = spec.type
    if kind == "complex":
        if not isinstance(value, dict):
            raise ScimError.invalid_value(f"{path} must be an object")
        result: dict[str, Any] = {}
        for key, item in value.items():
            sub = spec.sub(key)
            if sub is None or item is None:
                continue
            checked = _check_single(sub, item, f"{path}.{sub.name}", reading)
            if checked is not None:
                result[sub.name] = checked
        return result or None
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        parsed = client_quirks.entra_string_boolean(value)
        if parsed is None:
            raise ScimError.invalid_value(f"{path} must be a boolean (true or false)")
        reading.quirks.append(client_quirks.ENTRA_STRING_BOOLEAN)
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
    limit = spec.max_length
    if limit is not None and len(value) > limit and not reading.already_stored(value):
        raise ScimError.invalid_value(
            f"{path} is {len(value)} characters long; at most {limit} are accepted"
        )
    return value


def _check_names(name: Any) -> None:
    if not isinstance(name, dict):
        return
    for part in ("givenName", "familyName"):
        value = name.get(part)
        if isinstance(value, str):
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
