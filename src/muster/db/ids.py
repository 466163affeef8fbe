"""new_id(): time-ordered UUIDs (RFC 9562 version 7), so ids sort in creation order."""

from __future__ import annotations

import os
import threading
import time

_lock = threading.Lock()
_last_ms = 0
_sequence = 0


def new_id() -> str:
    """Return a UUIDv7 string, strictly increasing within this process.

    48 bits of Unix milliseconds, then a 12-bit sequence (RFC 9562 §6.2, method 1) that
    keeps ids made in the same millisecond in order, then 62 random bits.
    """
    global _last_ms, _sequence
    with _lock:
        now = time.time_ns() // 1_000_000
        if now > _last_ms:
            _last_ms, _sequence = now, int.from_bytes(os.urandom(1), "big")  # leaves headroom
        else:
            _sequence += 1
            if _sequence > 0xFFF:  # more than ~3,800 ids in one millisecond: borrow the next
                _last_ms, _sequence = _last_ms + 1, 0
        millis, sequence = _last_ms, _sequence
    value = millis << 80 | 0x7 << 76 | sequence << 64 | 0x2 << 62
    value |= int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
