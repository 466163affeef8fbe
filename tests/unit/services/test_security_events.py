"""services.security_events without a database: the docs' receiver snippet and its refusals."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from muster.services import security_events as sets

pytestmark = pytest.mark.unit

SECRET = "whsec_" + "k" * 43
# The names the docs' snippet uses.
ISSUER = "https://muster.example.com/scim/v2"
AUDIENCE = "https://hooks.example.com/scim-events"
EVENT = {
    "id": "5b1a0f0e-8a4c-5d43-9c8e-0f7a1e6d2c3b",
    "sequence": 42,
    "type": "user.deactivated",
    "time": "2026-11-29T10:15:02.123Z",
    "tenantId": "t-1",
    "resource": {"type": "User", "id": "u-1"},
    "data": {"userName": "ann@example.com", "externalId": "00u1ab", "changed": {"active": False}},
}


def _docs_receiver() -> Any:
    docs = (Path(__file__).parents[3] / "docs" / "webhooks.md").read_text()
    section = docs.split("### Verifying a SET", 1)[1]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)
    assert (namespace["ISSUER"], namespace["AUDIENCE"]) == (ISSUER, AUDIENCE)
    return namespace["security_event"]


def _token(**overrides: Any) -> bytes:
    claims = sets.claims(EVENT, issuer=ISSUER, audience=AUDIENCE, issued_at=int(time.time()))
    return sets.encode(claims | overrides, SECRET).encode()


def test_the_docs_snippet_accepts_our_sets() -> None:
    claims = _docs_receiver()(SECRET, _token())
    assert claims["jti"] == EVENT["id"]
    assert claims["sub_id"] == {"format": "scim", "uri": "/Users/u-1", "externalId": "00u1ab"}
    assert claims["events"] == {"urn:ietf:params:scim:event:prov:deactivate": {}}


@pytest.mark.parametrize(
    ("secret", "body"),
    [
        ("whsec_" + "a" * 43, _token()),  # another endpoint's secret
        (SECRET, _token(aud="https://elsewhere.example.com/hook")),  # meant for another endpoint
        (SECRET, _token(iss="https://impostor.example.com/scim/v2")),
        (SECRET, _token()[:-3] + b"abc"),  # a tampered signature
        # A plain JWT, not a SET, though signed with the right secret.
        (SECRET, jwt.encode({"iss": ISSUER, "aud": AUDIENCE}, SECRET, algorithm="HS256").encode()),
        # alg "none": never accepted, whatever the token says.
        (SECRET, jwt.encode({"iss": ISSUER}, None, algorithm="none").encode()),
    ],
)
def test_the_docs_snippet_refuses_what_muster_did_not_send_this_endpoint(
    secret: str, body: bytes
) -> None:
    with pytest.raises(jwt.InvalidTokenError):
        _docs_receiver()(secret, body)


def test_an_event_without_an_rfc9967_equivalent_keeps_its_data_under_a_muster_uri() -> None:
    event = EVENT | {"type": "scim.disabled", "resource": {"type": "Tenant", "id": "t-1"}}
    event["data"] = {}
    assert sets.events_claim(event) == {"urn:muster:event:scim:disabled": {}}
    assert sets.subject(event) == {"format": "opaque", "id": "t-1"}
    assert not sets.is_scim_event("scim.disabled") and sets.is_scim_event("group.member_added")
