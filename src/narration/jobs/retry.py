"""`Retry`: an operation's retry policy (how many attempts, how long between them, which
errors), declared with the operation: `@jobs.operation("sync", retry=Retry(attempts=3))`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Retry"]


@dataclass(frozen=True, slots=True)
class Retry:
    """Run a failing handler again, up to `attempts` times in all (the first one included).

    After attempt k fails, the next starts `backoff * factor ** (k - 1)` seconds later (at most
    `max_backoff`); `backoff` may also be a function of k returning the seconds. Only errors
    that are instances of `on` (one exception class or a tuple) are retried: any other fails
    the job at once, and so does the job's timeout, which covers every attempt together.
    A cancelled job is never retried.
    """

    attempts: int = 3
    backoff: float | Callable[[int], float] = 1.0
    factor: float = 2.0
    max_backoff: float = 300.0
    on: type[Exception] | tuple[type[Exception], ...] = Exception

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or self.attempts < 1:
            raise ValueError(f"Retry attempts must be an int >= 1, got {self.attempts!r}")
        if not callable(self.backoff) and not self.backoff >= 0:
            raise ValueError(f"Retry backoff must be >= 0 seconds, got {self.backoff!r}")
        if self.factor < 1 or self.max_backoff < 0:
            raise ValueError("Retry factor must be >= 1 and max_backoff >= 0")
        kinds = self.on if isinstance(self.on, tuple) else (self.on,)
        if not kinds or not all(isinstance(k, type) and issubclass(k, Exception) for k in kinds):
            raise TypeError(
                f"Retry on= takes Exception subclasses (one, or a tuple), got {self.on!r}"
            )
        object.__setattr__(self, "on", kinds)

    def delay(self, failed: int) -> float:
        """Seconds to wait after attempt `failed` (1, 2, ...) failed."""
        if callable(self.backoff):
            return max(0.0, float(self.backoff(failed)))
        delay: float = self.backoff * self.factor ** (failed - 1)
        return min(delay, self.max_backoff)

    def retries(self, error: BaseException) -> bool:
        """True when `error` is one this policy retries."""
        return isinstance(error, self.on)

    def describe(self) -> dict[str, object]:
        """The policy as JSON (shown with the operation in `GET /v1/operations`)."""
        kinds = self.on if isinstance(self.on, tuple) else (self.on,)
        return {
            "attempts": self.attempts,
            "backoff": None if callable(self.backoff) else self.backoff,
            "factor": self.factor,
            "max_backoff": self.max_backoff,
            "on": [kind.__name__ for kind in kinds],
        }
