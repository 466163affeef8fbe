"""attributes / excludedAttributes: which attributes a response carries (RFC 7644 §3.4.2.5)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from muster.errors import ScimError
from muster.scim.schemas import ENTERPRISE_URN, GROUP_URN, USER_URN

_CORE_URNS = (USER_URN.lower() + ":", GROUP_URN.lower() + ":")
_EXTENSION_URNS = (ENTERPRISE_URN.lower(),)
# Returned whatever the client asks (RFC 7643 §7 "returned: always" and the envelope).
_ALWAYS = frozenset({"id", "schemas"})
# Names one attributes or excludedAttributes list may hold. The schemas define fewer than 200
# attribute paths; a list beyond this is no projection, only work (~1 µs a name).
MAX_ATTRIBUTE_NAMES = 1000


def _split(entry: str) -> tuple[str, str | None]:
    """Turn 'name.givenName', 'urn:...:User:userName' or 'urn:...:enterprise:2.0:User:x.y'
    into (top-level key, sub-attribute), all lower-cased."""
    text = entry.strip().lower()
    for core in _CORE_URNS:
        if text.startswith(core):
            text = text[len(core) :]
            break
    if text.startswith("urn:"):
        for extension in _EXTENSION_URNS:
            if text == extension:
                return extension, None  # the whole extension
            if text.startswith(extension + ":"):
                # An attribute of the extension; its own sub-attributes select it whole.
                return extension, text[len(extension) + 1 :].partition(".")[0]
        urn, _, attribute = text.rpartition(":")
        return urn, attribute or None
    top, _, sub = text.partition(".")
    return top, sub or None


@dataclass(frozen=True, slots=True)
class Projection:
    """The attributes a client asked for, or asked to leave out.

    Each maps a lower-cased top-level key to the sub-attributes named of it, or to None when
    the whole attribute was named (which then covers any of its sub-attributes).
    """

    included: Mapping[str, frozenset[str] | None] = field(default_factory=dict)
    excluded: Mapping[str, frozenset[str] | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, attributes: str | None, excluded_attributes: str | None) -> Projection:
        if attributes and excluded_attributes:
            raise ScimError.invalid_value(
                "attributes and excludedAttributes cannot be used together"
            )
        included = _selection("attributes", attributes)
        excluded = _selection("excludedAttributes", excluded_attributes)
        return cls(included, excluded)

    @property
    def is_everything(self) -> bool:
        return not self.included and not self.excluded

    @property
    def is_named(self) -> bool:
        """Tell whether the client named attributes at all (a group PATCH then answers 200)."""
        return not self.is_everything

    def wants(self, attribute: str) -> bool:
        """Tell whether a top-level attribute will be in the response; lets callers skip work."""
        key = attribute.lower()
        if self.included:
            return key in _ALWAYS or key in self.included
        return key not in self.excluded or self.excluded[key] is not None

    def shapes_items_of(self, attribute: str) -> bool:
        """Tell whether the client named sub-attributes of a multi-valued attribute."""
        key = attribute.lower()
        return self.included.get(key) is not None or self.excluded.get(key) is not None

    def apply_to_items(self, attribute: str, items: list[Any]) -> list[Any]:
        """Project the elements of one multi-valued attribute (e.g. `members.value`)."""
        projected: list[Any] = self.apply({attribute: items}).get(attribute, [])
        return projected

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        """Return the body with only the requested attributes."""
        if self.is_everything:
            return body
        # One look-up per key of the body: the client's list may be long, the body is not.
        result: dict[str, Any] = {}
        if self.included:
            for original, value in body.items():
                key = original.lower()
                if key in _ALWAYS:
                    result[original] = value
                elif key in self.included:
                    subs = self.included[key]
                    if subs is None or not isinstance(value, dict | list):
                        result[original] = value
                    else:
                        result[original] = _pick(value, subs)
            return result
        for original, value in body.items():
            key = original.lower()
            if key in _ALWAYS or key not in self.excluded:
                result[original] = value
            else:
                subs = self.excluded[key]
                if subs is not None:
                    result[original] = _drop(value, subs)
        return result


def _selection(parameter: str, text: str | None) -> dict[str, frozenset[str] | None]:
    """Read one comma-separated list of attribute names (at most MAX_ATTRIBUTE_NAMES)."""
    if not text:
        return {}
    if text.count(",") >= MAX_ATTRIBUTE_NAMES:  # counted before anything is split
        raise ScimError.invalid_value(
            f"{parameter} names {text.count(',') + 1} attributes; at most "
            f"{MAX_ATTRIBUTE_NAMES} are accepted"
        )
    named: dict[str, set[str] | None] = {}
    for entry in text.split(","):
        if not entry.strip():
            continue
        top, sub = _split(entry)
        if sub is None:
            named[top] = None  # the whole attribute covers any of its sub-attributes
        elif top not in named:
            named[top] = {sub}
        elif (subs := named[top]) is not None:
            subs.add(sub)
    return {top: None if subs is None else frozenset(subs) for top, subs in named.items()}


def _pick(value: Any, subs: frozenset[str]) -> Any:
    if isinstance(value, list):
        return [_pick(item, subs) for item in value if isinstance(item, dict)]
    return {k: v for k, v in value.items() if k.lower() in subs}


def _drop(value: Any, subs: frozenset[str]) -> Any:
    if isinstance(value, list):
        return [_drop(item, subs) for item in value]
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k.lower() not in subs}
    return value
