"""attributes / excludedAttributes: which attributes a response carries (RFC 7644 §3.4.2.5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from muster.errors import ScimError
from muster.scim.schemas import ENTERPRISE_URN, GROUP_URN, USER_URN

_CORE_URNS = (USER_URN.lower() + ":", GROUP_URN.lower() + ":")
_EXTENSION_URNS = (ENTERPRISE_URN.lower(),)
# Returned whatever the client asks (RFC 7643 §7 "returned: always" and the envelope).
_ALWAYS = frozenset({"id", "schemas"})


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
    """The attributes a client asked for, or asked to leave out."""

    included: tuple[tuple[str, str | None], ...] = ()
    excluded: tuple[tuple[str, str | None], ...] = ()

    @classmethod
    def parse(cls, attributes: str | None, excluded_attributes: str | None) -> Projection:
        if attributes and excluded_attributes:
            raise ScimError.invalid_value(
                "attributes and excludedAttributes cannot be used together"
            )
        included = tuple(_split(a) for a in (attributes or "").split(",") if a.strip())
        excluded = tuple(_split(a) for a in (excluded_attributes or "").split(",") if a.strip())
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
            return key in _ALWAYS or any(top == key for top, _ in self.included)
        return not any(top == key and sub is None for top, sub in self.excluded)

    def shapes_items_of(self, attribute: str) -> bool:
        """Tell whether the client named sub-attributes of a multi-valued attribute."""
        key = attribute.lower()
        return any(top == key and sub is not None for top, sub in self.included + self.excluded)

    def apply_to_items(self, attribute: str, items: list[Any]) -> list[Any]:
        """Project the elements of one multi-valued attribute (e.g. `members.value`)."""
        projected: list[Any] = self.apply({attribute: items}).get(attribute, [])
        return projected

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        """Return the body with only the requested attributes."""
        if self.is_everything:
            return body
        keys = {k.lower(): k for k in body}
        if self.included:
            result: dict[str, Any] = {}
            for key, original in keys.items():
                if key in _ALWAYS:
                    result[original] = body[original]
            for top, sub in self.included:
                wanted = keys.get(top)
                if wanted is None:
                    continue
                value = body[wanted]
                if sub is None or not isinstance(value, dict | list):
                    result[wanted] = value
                else:
                    picked = _pick(value, {sub})
                    existing = result.get(wanted)
                    result[wanted] = _merge(existing, picked) if existing is not None else picked
            return result
        result = dict(body)
        for top, sub in self.excluded:
            dropped = keys.get(top)
            if dropped is None or top in _ALWAYS:
                continue
            if sub is None:
                result.pop(dropped, None)
            else:
                result[dropped] = _drop(result[dropped], sub)
        return result


def _pick(value: Any, subs: set[str]) -> Any:
    if isinstance(value, list):
        return [_pick(item, subs) for item in value if isinstance(item, dict)]
    return {k: v for k, v in value.items() if k.lower() in subs}


def _merge(left: Any, right: Any) -> Any:
    if isinstance(left, list) and isinstance(right, list):
        return [{**a, **b} for a, b in zip(left, right, strict=False)]
    if isinstance(left, dict) and isinstance(right, dict):
        return {**left, **right}
    return right


def _drop(value: Any, sub: str) -> Any:
    if isinstance(value, list):
        return [_drop(item, sub) for item in value]
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k.lower() != sub}
    return value
