"""`capture()`: collect the events emitted in this context only, so tests can run in parallel."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from ..context import EventTap, _current
from ..events import NarrationEvent

__all__ = ["CapturedEvents", "capture"]


class CapturedEvents(EventTap):
    """The events seen by one `capture()` block, in emit order, with assertion helpers."""

    def __init__(self) -> None:
        self._events: list[NarrationEvent] = []
        self._lock = threading.RLock()  # re-entrant: n() may run in a signal handler
        self._changed = threading.Condition(self._lock)

    def on_event(self, event: NarrationEvent) -> None:
        with self._lock:
            self._events.append(event)
            self._changed.notify_all()

    @property
    def events(self) -> list[NarrationEvent]:
        """A snapshot of the events captured so far."""
        with self._lock:
            return list(self._events)

    def __len__(self) -> int:
        return len(self._events)

    def clear(self) -> None:
        """Forget the events captured so far."""
        with self._lock:
            self._events.clear()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[NarrationEvent]:
        """Block until at least `count` events were captured; TimeoutError after `timeout` s."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._events) >= count, timeout):
                raise TimeoutError(f"captured {len(self._events)} of {count} events in {timeout}s")
            return list(self._events)

    def assert_includes(self, text: str) -> NarrationEvent:
        """The first event whose human text contains `text`; AssertionError listing all if none."""
        for event in self.events:
            if text in event.human:
                return event
        raise AssertionError(f"no captured event contains {text!r}; got: {self._summary()}")

    def assert_field(self, name: str, value: Any) -> NarrationEvent:
        """The first event with `name` == `value` (an event attribute or a key of `fields`)."""
        for event in self.events:
            if _field(event, name) == value:
                return event
        raise AssertionError(f"no captured event has {name}={value!r}; got: {self._summary()}")

    def assert_action(self, action: str) -> NarrationEvent:
        """The first event with this action."""
        return self.assert_field("action", action)

    def _summary(self) -> str:
        return "; ".join(f"{e.action}: {e.human!r}" for e in self.events[-20:]) or "(nothing)"


_MISSING = object()


def _field(event: NarrationEvent, name: str) -> Any:
    if name in NarrationEvent.__struct_fields__:
        return getattr(event, name)
    return (event.fields or {}).get(name, _MISSING)


@contextmanager
def capture() -> Iterator[CapturedEvents]:
    """Capture the events emitted in this context (and in tasks/threads that inherit it)."""
    captured = CapturedEvents()
    ctx = _current.get()
    token = _current.set(replace(ctx, taps=(*ctx.taps, captured)))
    try:
        yield captured
    finally:
        _current.reset(token)
