"""What quirk detection costs Okta's hot requests, in process: prints ns/µs per call.

    .venv/bin/python benchmarks/client_quirks.py

Okta's existence check (`GET /Users?filter=userName eq "…"`) pays user_filter_quirks on top of
parse_filter; its deactivation PATCH pays the quirk bookkeeping inside parse_patch and
apply_operations. Entra's shapes are timed alongside for comparison. Each number is the best of
seven runs, so a busy machine inflates it less.
"""

from __future__ import annotations

import timeit
from collections.abc import Callable
from typing import Any

from muster.scim import client_quirks
from muster.scim.listing import parse_filter
from muster.scim.patching import apply_operations, parse_patch
from muster.services.users import USER_SCHEMA

PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
DOCUMENT = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "ann@example.com",
    "name": {"givenName": "Ann", "familyName": "Lee"},
    "emails": [{"value": "ann@example.com", "type": "work", "primary": True}],
    "active": True,
}


def best(call: Callable[[], Any], number: int) -> float:
    """Seconds per call, best of seven."""
    return min(timeit.repeat(call, number=number, repeat=7)) / number


def patch(*operations: dict[str, Any]) -> Callable[[], Any]:
    body = {"schemas": [PATCH_URN], "Operations": list(operations)}

    def run() -> Any:
        quirks: list[str] = []
        return apply_operations(DOCUMENT, parse_patch(body, quirks), USER_SCHEMA, quirks)

    return run


def main() -> None:
    print(f"{'empty call (machine baseline)':58} {best(lambda: None, 200_000) * 1e9:8.0f} ns")
    for text in (
        'userName eq "test.user@okta.local"',
        'id eq "2819c223" and manager eq "54d382a4"',
        'emails[type eq "work"].value eq "ann@example.com"',
    ):
        node = parse_filter(text)
        cost = best(lambda: client_quirks.user_filter_quirks(text, node), 200_000)  # noqa: B023
        parse = best(lambda: parse_filter(text), 20_000)  # noqa: B023
        print(
            f"user_filter_quirks({text[:30]}…){'':<8} {cost * 1e9:8.0f} ns"
            f"   (parse_filter: {parse * 1e6:.1f} µs)"
        )
    shapes = {
        "Okta deactivate: replace, no path, {active: false}": patch(
            {"op": "replace", "value": {"active": False}}
        ),
        'Entra disable: Replace active "False"': patch(
            {"op": "Replace", "path": "active", "value": "False"}
        ),
        "Entra flag replace: dotted + URN keys": patch(
            {
                "op": "replace",
                "value": {
                    "name.givenName": "Kkom",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "A",  # noqa: E501
                },
            }
        ),
    }
    for label, run in shapes.items():
        print(f"parse_patch + apply_operations, {label[:40]:40} {best(run, 5_000) * 1e6:6.1f} µs")


if __name__ == "__main__":
    main()
