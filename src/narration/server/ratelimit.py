"""The per-principal submission rate limit (the `limits` library, moving windows, in memory).

`submit_rate` is one or more limits in `limits`' notation, `;`-separated: the default
`"50/second;1200/minute"` lets a principal submit a burst of 50 jobs in a second and 1,200 in
any minute. Over it, `POST /v1/jobs` answers 429 `rate_limited` with `Retry-After` (whole
seconds until the window lets one more in). Each server process counts on its own.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from .errors import ApiError

__all__ = ["SubmitRateLimit", "parse_rate"]


def parse_rate(text: str | None) -> list[RateLimitItem]:
    """The limits of `text` (empty for None, "" or "off"); ValueError naming a bad one."""
    if text is None or text.strip().lower() in ("", "off", "none"):
        return []
    try:
        return list(parse_many(text))
    except ValueError:
        raise ValueError(
            f"submit_rate {text!r} is not a rate such as '50/second;1200/minute'"
        ) from None


class SubmitRateLimit:
    """Counts submissions per principal; `check(name)` raises 429 when one is over."""

    def __init__(self, rate: str | None) -> None:
        self.items = parse_rate(rate)
        self._limiter = MovingWindowRateLimiter(MemoryStorage()) if self.items else None

    @property
    def enabled(self) -> bool:
        return self._limiter is not None

    async def check(self, principal: str) -> None:
        """Count one submission of `principal`; ApiError 429 (with Retry-After) if over."""
        limiter = self._limiter
        if limiter is None:
            return
        for item in self.items:
            if not await limiter.test(item, principal):
                stats = await limiter.get_window_stats(item, principal)
                wait = max(1, math.ceil(stats.reset_time - time.time()))
                raise ApiError(
                    429,
                    "rate_limited",
                    f"over the submission rate of {item} for {principal!r}; retry in {wait} s",
                    {"Retry-After": str(wait)},
                )
        for item in self.items:
            await limiter.hit(item, principal)
