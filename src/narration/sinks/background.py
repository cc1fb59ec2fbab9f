"""`BackgroundSink`: any callable as a sink, called on a thread of its own, never on `n()`'s."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from ..dispatch import dispatcher
from ..events import NarrationEvent
from ._writer import QueuedSink, dropped_notice

__all__ = ["BackgroundSink"]


class BackgroundSink(QueuedSink):
    """Calls `fn(event)` for every event, in emit order, on a background thread.

    A slow or blocking `fn` delays only its own queue: `n()` just appends. When more than
    `capacity` events wait, new ones are dropped and counted (`dropped`); `fn` then receives a
    `dropped` notice event (level warn, `fields.dropped`) and stderr says so too. An exception
    from `fn` is counted and reported like any sink's (`dispatcher.sink_errors`), and the next
    event is delivered. `narration.flush()` waits for the sinks `configure()` made.
    """

    def __init__(self, fn: Callable[[NarrationEvent], object], capacity: int = 100_000) -> None:
        self.fn = fn
        name = getattr(fn, "__qualname__", None) or type(fn).__name__
        self.thread_name = f"narration-sink-{name}"[:60]
        super().__init__(capacity=capacity)

    def __repr__(self) -> str:
        return f"BackgroundSink({self.fn!r})"

    def _write(self, batch: Sequence[NarrationEvent]) -> None:
        fn = self.fn
        for event in batch:
            try:
                fn(event)
            except Exception as exc:  # the next event still gets its turn
                dispatcher.report_sink_failure(fn, exc)

    def _report_drop(self, count: int) -> None:
        print(f"narration: sink {self.fn!r} fell behind, {count} events dropped", file=sys.stderr)
        self._write([dropped_notice(count, "were not delivered to this sink (it fell behind)")])
