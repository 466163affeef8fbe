"""Webhook signatures: the Muster-Signature header a delivery carries, and its check.

Stripe's scheme: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with the
endpoint's secret>`. The timestamp is inside the signed text, so a receiver that also checks
its age refuses a captured request replayed later.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "Muster-Signature"
EVENT_ID_HEADER = "Muster-Event-Id"
EVENT_TYPE_HEADER = "Muster-Event-Type"
# A receiver refuses a signature older (or further in the future) than this by default.
DEFAULT_TOLERANCE_SECONDS = 300


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """Return the Muster-Signature value for `body` sent at `timestamp` (Unix seconds)."""
    return f"t={timestamp},v1={_digest(secret, body, timestamp)}"


def verify(
    secret: str,
    body: bytes,
    header: str,
    *,
    now: int,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """Tell whether `header` signs `body` with `secret` and its timestamp is within tolerance."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)  # several v1 values may be sent while a secret rotates
    if timestamp is None or abs(now - timestamp) > tolerance_seconds:
        return False
    expected = _digest(secret, body, timestamp)
    # Constant-time: a byte-by-byte compare would leak how much of a forgery was right.
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
