"""RateLimitGate: refuse a token's requests over its limit with 429; sync counts in a thread."""

from __future__ import annotations

import logging
import time

from muster.errors import ScimError
from muster.services.api_tokens import Principal
from muster.services.rate_limits import RateLimiter
from muster.web.background import BackgroundWriter
from muster.web.wiring import Wiring

logger = logging.getLogger("muster.scim")


class RateLimitGate:
    """The process's rate limiter, the thread that syncs it, and the 429 it answers."""

    def __init__(self, wiring: Wiring) -> None:
        settings = wiring.settings
        self._wiring = wiring
        self.limiter = (
            RateLimiter(settings.rate_limit_requests, settings.rate_limit_window_seconds)
            if settings.rate_limit_requests > 0
            else None
        )
        self.writer = BackgroundWriter(
            "rate-limit-sync", settings.rate_limit_sync_seconds, self.sync
        )

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
        self.writer.wake()

    def sync(self) -> bool:
        """Add this process's counts to the shared ones now; return whether that worked."""
        if self.limiter is None:
            return True
        try:
            self.limiter.sync(self._wiring.uow_factory(None), time.time())
        except Exception as error:  # the counts stay unsynced and go with the next sync
            logger.warning("could not sync rate-limit counts yet (%s)", type(error).__name__)
            return False
        return True
