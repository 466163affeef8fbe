"""discovery: the documents describe the attributes Muster validates, with Muster's own rules."""

from __future__ import annotations

from typing import Any

import pytest

from muster.scim import discovery
from muster.scim.schemas import (
    ENTERPRISE_ATTRIBUTES,
    ENTERPRISE_URN,
    GROUP_ATTRIBUTES,
    GROUP_URN,
    USER_ATTRIBUTES,
    USER_URN,
)

pytestmark = pytest.mark.unit


def _paths(attributes: list[dict[str, Any]], prefix: str = "") -> set[str]:
    found = set()
    for attribute in attributes:
        path = prefix + attribute["name"]
        found.add(path)
        found |= _paths(attribute.get("subAttributes", []), f"{path}.")
    return found


def _by_id() -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in discovery.schemas("https://x/scim/v2")}


def test_served_schemas_name_exactly_the_attributes_muster_validates() -> None:
    served = _by_id()

    for schema_id, catalogue in (
        (USER_URN, USER_ATTRIBUTES),
        (ENTERPRISE_URN, ENTERPRISE_ATTRIBUTES),
        (GROUP_URN, GROUP_ATTRIBUTES),
    ):
        names = {a["name"].lower() for a in served[schema_id]["attributes"]}
        assert names == set(catalogue), schema_id


def test_every_override_names_an_attribute_that_exists() -> None:
    # A typo in an override would silently change nothing.
    served = _by_id()

    for schema_id, path in discovery._SCHEMA_OVERRIDES:
        assert path in _paths(served[schema_id]["attributes"]), (schema_id, path)


def test_schemas_are_built_once_and_not_shared_between_calls() -> None:
    first = discovery.schemas("https://a/scim/v2")
    second = discovery.schemas("https://b/scim/v2")

    assert first[0]["meta"]["location"].startswith("https://a/")
    assert second[0]["meta"]["location"].startswith("https://b/")
    assert first[0]["attributes"] is second[0]["attributes"]  # cached, never mutated
