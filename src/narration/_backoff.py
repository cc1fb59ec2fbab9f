"""Retry delays that double from a first delay up to a cap, reset once a retry makes progress."""

from __future__ import annotations

__all__ = ["Backoff", "backoff_delay"]


def backoff_delay(attempt: int, initial: float = 0.1, cap: float = 2.0) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, ...): doubling, capped."""
    delay: float = initial * 2.0 ** (attempt - 1)
    return min(delay, cap)


class Backoff:
    """Counts consecutive failed `attempts` and says how long to wait before the next one.

    backoff = Backoff(initial=0.05, cap=1.0)
    while not await try_once():
        await asyncio.sleep(backoff.next_delay())   # 0.05, 0.1, 0.2, ... 1.0, 1.0
    backoff.reset()                                 # progress: start from `initial` again
    """

    __slots__ = ("attempts", "cap", "initial")

    def __init__(self, initial: float = 0.1, cap: float = 2.0) -> None:
        self.initial = initial
        self.cap = cap
        self.attempts = 0  # failed attempts since the last reset()

    def next_delay(self) -> float:
        """Count one more failed attempt; the seconds to wait before trying again."""
        self.attempts += 1
        return backoff_delay(self.attempts, self.initial, self.cap)

    def reset(self) -> None:
        """An attempt made progress: the next failure waits `initial` again."""
        self.attempts = 0
