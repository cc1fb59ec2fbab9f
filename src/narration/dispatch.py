"""The dispatcher: hands each event to its job's log (by job id), the sinks, then the taps.

`deliver()` is the one delivery path; `n()` inlines it for speed (tests/core/test_dispatch.py
checks that both deliver the same event to the same places).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable

from .events import LEVEL_RANK, Level, NarrationEvent

__all__ = ["Dispatcher", "Sink", "Tap", "dispatcher"]

Sink = Callable[[NarrationEvent], None]
"""Receives every event on the emit path: it must only queue (see `narration.sinks`)."""
Tap = Callable[[NarrationEvent], None]
"""Sees every event on the emitting thread, in the emitter's context (test capture)."""


class Dispatcher:
    """Routes events: job logs first (a dict lookup), then every sink, then every tap; never
    raises.

    The sink and tap tuples are replaced, never mutated; single dict operations on `routes`
    are atomic in CPython. So emitting threads read them without a lock.
    """

    def __init__(self) -> None:
        # Told the muted levels whenever the threshold moves (`n.debug` and friends keep a flag).
        self.threshold_listeners: list[Callable[[tuple[Level, ...]], None]] = []
        self.muted: tuple[Level, ...] = ()  # the levels below the threshold (`min_rank`)
        self.info_muted = False  # INFO is below the threshold
        self.min_rank = LEVEL_RANK[Level.INFO]
        self.sinks: tuple[Sink, ...] = ()
        self.routes: dict[str, Sink] = {}  # never rebound: `n()` holds a reference to it
        self.taps: tuple[Tap, ...] = ()
        self._taps_changing = threading.Lock()  # captures come and go on several threads
        self.unrouted = 0
        self.sink_errors = 0

    @property
    def min_rank(self) -> int:
        """The threshold: events of a lower level's rank are not made (`configure(level=)`)."""
        return self._min_rank

    @min_rank.setter
    def min_rank(self, rank: int) -> None:
        # `n()` checks `level in muted` (identity first: no hashing of an Enum member), which
        # is cheaper than looking up the level's rank.
        self._min_rank = rank
        self.muted = tuple(level for level, of in LEVEL_RANK.items() if of < rank)
        self.info_muted = Level.INFO in self.muted
        for listener in self.threshold_listeners:
            listener(self.muted)

    def deliver(self, event: NarrationEvent) -> None:
        """Deliver `event` to its job log (if that job lives here), every sink, then every tap.

        `n()` inlines this method for speed; tests/core/test_dispatch.py keeps the two equal.
        """
        job_id = event.job_id
        if job_id is not None:
            route = self.routes.get(job_id)
            if route is None:
                self.unrouted += 1
            else:
                route(event)
        if self.sinks:
            self.to_sinks(event)
        if self.taps:
            self.to_taps(event)

    def to_sinks(self, event: NarrationEvent) -> None:
        """Hand `event` to every sink; a failing sink is counted and reported, not raised."""
        for sink in self.sinks:
            try:
                sink(event)
            except Exception as exc:  # a broken sink must not break the caller
                self.report_sink_failure(sink, exc)

    def to_taps(self, event: NarrationEvent) -> None:
        """Hand `event` to every tap (a failing tap is counted and reported like a sink)."""
        for tap in self.taps:
            try:
                tap(event)
            except Exception as exc:
                self.report_sink_failure(tap, exc)

    def add_tap(self, tap: Tap) -> None:
        """Call `tap` with every event from now on, on the emitting thread."""
        with self._taps_changing:
            self.taps = (*self.taps, tap)

    def remove_tap(self, tap: Tap) -> None:
        """Stop calling `tap` (one registration of it)."""
        with self._taps_changing:
            taps = list(self.taps)
            with contextlib.suppress(ValueError):
                taps.remove(tap)
            self.taps = tuple(taps)

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
