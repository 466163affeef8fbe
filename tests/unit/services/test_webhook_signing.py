"""services.webhook_signing: Stripe-style signatures a receiver can check, and their refusals."""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path
from typing import Any

import pytest

from muster.services.webhook_signing import sign, verify

pytestmark = pytest.mark.unit

SECRET = "whsec_test-secret"
BODY = b'{"id":"e1","type":"user.deactivated"}'
NOW = 1_800_000_000


def test_the_signature_is_an_hmac_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, BODY, NOW) == f"t={NOW},v1={expected}"


def test_a_fresh_signature_verifies() -> None:
    assert verify(SECRET, BODY, sign(SECRET, BODY, NOW), now=NOW + 10)


@pytest.mark.parametrize(
    ("secret", "body", "signed_at"),
    [
        ("whsec_another", BODY, NOW),  # another endpoint's secret
        (SECRET, BODY.replace(b"deactivated", b"reactivated"), NOW),  # a tampered body
        (SECRET, BODY, NOW - 301),  # replayed after the tolerance
        (SECRET, BODY, NOW + 301),  # from the future
    ],
)
def test_a_wrong_secret_body_or_time_is_refused(secret: str, body: bytes, signed_at: int) -> None:
    header = sign(SECRET, BODY, signed_at)
    assert not verify(secret, body, header, now=NOW)


def test_a_moved_timestamp_breaks_the_signature() -> None:
    header = sign(SECRET, BODY, NOW - 1000).replace(f"t={NOW - 1000}", f"t={NOW}")
    assert not verify(SECRET, BODY, header, now=NOW)


@pytest.mark.parametrize("header", ["", "garbage", f"t={NOW}", "v1=abc", f"t=x,v1={'0' * 64}"])
def test_a_malformed_header_is_refused(header: str) -> None:
    assert not verify(SECRET, BODY, header, now=NOW)


def test_any_one_of_several_v1_values_may_match() -> None:
    good = sign(SECRET, BODY, NOW).split(",")[1]
    assert verify(SECRET, BODY, f"t={NOW},v1={'0' * 64},{good}", now=NOW)


def test_the_receiver_snippet_in_the_docs_accepts_our_signatures_and_only_those() -> None:
    docs = (Path(__file__).parents[3] / "docs" / "webhooks.md").read_text()
    snippet = docs.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)
    is_from_muster = namespace["is_from_muster"]
    now = int(time.time())

    assert is_from_muster(SECRET, BODY, sign(SECRET, BODY, now))
    assert not is_from_muster(SECRET, BODY + b" ", sign(SECRET, BODY, now))
    assert not is_from_muster("whsec_other", BODY, sign(SECRET, BODY, now))
    assert not is_from_muster(SECRET, BODY, sign(SECRET, BODY, now - 600))
