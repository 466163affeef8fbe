"""FailedAuthentications: requests whose credential is not good, per client address.

A request without a valid token proves no tenant, so nothing of it goes into a tenant's
provisioning log (a stranger could otherwise fill a tenant's log and push its history out).
Instead each is counted in `muster_auth_failures_total{reason}` and written to the process log,
and an address that keeps failing is throttled: past `limit` failures in a window, its requests
get 429 with Retry-After before any other work, the database's included, until the window
ends. A good token from another address is never held back by it. The counts are this
process's own (a load balancer spreads an attacker over the instances; each still caps it).
"""

from __future__ import annotations

import logging
import math
import time

from muster.errors import ScimError
from muster.web.metrics import Metrics

logger = logging.getLogger("muster.auth")
# Addresses tracked in one window; past this a new address is not tracked (nor throttled) until
# the next window, so memory stays bounded whatever an attacker with many addresses sends.
MAX_ADDRESSES = 100_000


class FailedAuthentications:
    """Fixed windows of failure counts per client address."""

    def __init__(self, limit: int, window_seconds: int, metrics: Metrics) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._metrics = metrics
        self._window = 0
        self._failures: dict[str, int] = {}

    def _current(self, now: float) -> int:
        window = int(now) // self.window_seconds
        if window != self._window:
            self._window, self._failures = window, {}
        return window

    def admit(self, address: str) -> None:
        """Raise 429 when this address has failed `limit` times in the current window."""
        if self.limit <= 0:
            return
        now = time.time()
        window = self._current(now)
        if self._failures.get(address, 0) < self.limit:
            return
        retry_after = max(1, math.ceil((window + 1) * self.window_seconds - now))
        self._metrics.observe_auth_failure("throttled")
        raise ScimError.too_many_requests(
            f"too many requests with a bad credential from this address; retry after "
            f"{retry_after} s",
            retry_after=retry_after,
        )

    def record(self, address: str, method: str, path: str, request_id: str, detail: str) -> None:
        """Count one failed authentication; log it (the first `limit` per address a window)."""
        self._current(time.time())
        count = self._failures.get(address)
        if count is None and len(self._failures) >= MAX_ADDRESSES:
            count = self.limit  # untracked: logged as already throttled, never remembered
        else:
            count = (count or 0) + 1
            self._failures[address] = count
        self._metrics.observe_auth_failure("refused")
        if count <= self.limit or self.limit <= 0:
            logger.warning(
                "authentication failed from %s for %s %s: %s",
                address,
                method,
                path,
                detail,
                extra={"client": address, "request_id": request_id},
            )
            if count == self.limit:
                logger.warning(
                    "%s failed authentication %d times in %d s: its requests get 429 until the "
                    "window ends",
                    address,
                    count,
                    self.window_seconds,
                    extra={"client": address},
                )
