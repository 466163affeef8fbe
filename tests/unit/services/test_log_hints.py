"""hint_for: a plain-language next step for each known provisioning failure."""

from __future__ import annotations

import pytest

from muster.services.log_hints import hint_for

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("status", "scim_type", "detail", "expected"),
    [
        (
            400,
            "invalidValue",
            "name.givenName contains '#', which is not allowed: names may",
            "Correct the name in Okta",
        ),
        (
            400,
            "mutability",
            "The email address cannot be changed through provisioning: Muster",
            "Delete the user here",
        ),
        (
            403,
            None,
            "licence limit reached: 25 of 25 seats in use; deactivate a user",
            "All seats of this account are in use",
        ),
        (
            400,
            "invalidValue",
            "members: 'g1' is a group; nested (linked) groups are not supported",
            "Groups cannot contain groups",
        ),
        (
            400,
            "invalidValue",
            "members: no user with id 'u9' in this tenant",
            "names a person Muster does not have",
        ),
        (
            401,
            None,
            "the bearer token is not valid (revoked, replaced or mistyped)",
            "Generate a new token",
        ),
        (401, None, None, "Generate a new token"),
        (
            403,
            None,
            "SCIM provisioning is turned off for this account; an admin can turn",
            "Turn it on under Settings",
        ),
        (
            403,
            None,
            "SCIM provisioning is available on the Enterprise plan only; ask",
            "Enterprise feature",
        ),
    ],
)
def test_known_failures_get_their_hint(
    status: int, scim_type: str | None, detail: str | None, expected: str
) -> None:
    hint = hint_for(status, scim_type, detail)

    assert hint is not None and expected in hint


def test_successes_and_unknown_failures_get_none() -> None:
    assert hint_for(201, None, None) is None
    assert hint_for(400, "invalidFilter", "filter 'x' is not valid: ...") is None
