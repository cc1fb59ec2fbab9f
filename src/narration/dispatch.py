"""The dispatcher: hands each event to its job's log (by job id) and to the configured sinks."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable

from .events import LEVEL_RANK, Level, NarrationEvent

__all__ = ["Dispatcher", "Sink", "dispatcher"]

Sink = Callable[[NarrationEvent], None]


class Dispatcher:
    """Routes events: job logs first (a dict lookup), then every sink; never raises.

    The sink tuple is replaced, never mutated; single dict operations on `routes` are atomic
    in CPython. So emitting threads read both without a lock.
    """

    def __init__(self) -> None:
        self.min_rank = LEVEL_RANK[Level.INFO]
        self.sinks: tuple[Sink, ...] = ()
        self.routes: dict[str, Sink] = {}  # never rebound: `n()` holds a reference to it
        self.unrouted = 0
        self.sink_errors = 0

    def dispatch(self, event: NarrationEvent) -> None:
        """Deliver `event` to its job log (if that job lives here) and to every sink.

        `n()` inlines this method; keep the two in step.
        """
        job_id = event.job_id
        if job_id is not None:
            route = self.routes.get(job_id)
            if route is None:
                self.unrouted += 1
            else:
                route(event)
        self.to_sinks(event)

    def to_sinks(self, event: NarrationEvent) -> None:
        """Hand `event` to every sink; a failing sink is counted and reported, not raised."""
        for sink in self.sinks:
            try:
                sink(event)
            except Exception as exc:  # a broken sink must not break the caller
                self.report_sink_failure(sink, exc)

    def add_route(self, job_id: str, route: Sink) -> None:
        """Send events of `job_id` to `route` from now on."""
        self.routes[job_id] = route

    def remove_route(self, job_id: str) -> None:
        """Stop routing `job_id` (later events of it count as unrouted)."""
        self.routes.pop(job_id, None)

    def add_sink(self, sink: Sink) -> None:
        """Append `sink` to the sink list (a sink given twice is kept once).

        It is called on the emit path, inline: it must only queue (a `QueuedSink` does).
        `configure(sinks=[fn])` wraps plain callables so they run off that path.
        """
        if sink not in self.sinks:
            self.sinks = (*self.sinks, sink)

    def remove_sink(self, sink: Sink) -> None:
        """Remove `sink` if present."""
        self.sinks = tuple(s for s in self.sinks if s is not sink)

    def report_sink_failure(self, sink: object, exc: Exception) -> None:
        """Count a sink's exception; the first three are printed on stderr."""
        self.sink_errors += 1
        if self.sink_errors <= 3:
            with contextlib.suppress(Exception):  # a hostile repr or a closed stderr
                print(f"narration: sink {sink!r} failed: {exc!r}", file=sys.stderr)


dispatcher = Dispatcher()
