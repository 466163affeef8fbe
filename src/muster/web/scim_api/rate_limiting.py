"""RateLimitGate: refuse a token's requests over its limit with 429; sync counts on a timer."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time

from muster.errors import ScimError
from muster.services.api_tokens import Principal
from muster.services.rate_limits import RateLimiter
from muster.web.wiring import Wiring

logger = logging.getLogger("muster.scim")


class RateLimitGate:
    """The process's rate limiter, its sync timer, and the 429 it answers."""

    def __init__(self, wiring: Wiring) -> None:
        settings = wiring.settings
        self._wiring = wiring
        self._interval = settings.rate_limit_sync_seconds
        self.limiter = (
            RateLimiter(settings.rate_limit_requests, settings.rate_limit_window_seconds)
            if settings.rate_limit_requests > 0
            else None
        )
        self._timer: asyncio.TimerHandle | None = None

    def admit(self, principal: Principal) -> None:
        """Count the request against its token; raise ScimError 429 when over the limit."""
        limiter = self.limiter
        if limiter is None:
            return
        retry_after = limiter.admit(principal.tenant_id, principal.token_id, time.time())
        if retry_after is not None:
            raise ScimError.too_many_requests(
                f"rate limit reached: {limiter.limit} requests per {limiter.window_seconds} s "
                f"for this token; retry after {retry_after} s",
                retry_after=retry_after,
            )
        if self._timer is None:
            # Like the log buffer: on the loop, between requests, never inside a request's
            # transaction (SQLite's write lock is held by one connection at a time).
            # An empty context: the sync's own log lines belong to no request.
            self._timer = asyncio.get_running_loop().call_later(
                self._interval, self.sync, context=contextvars.Context()
            )

    def sync(self) -> None:
        """Add this process's counts to the shared ones now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.limiter is None:
            return
        try:
            self.limiter.sync(self._wiring.uow_factory(None), time.time())
        except Exception:  # the counts stay unsynced and go with the next sync
            logger.exception("could not sync rate-limit counts")
