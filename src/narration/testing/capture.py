"""`capture()`: collect the events emitted in this context only, so tests can run in parallel."""

from __future__ import annotations

import contextvars
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..dispatch import dispatcher
from ..events import NarrationEvent

__all__ = ["CapturedEvents", "capture"]


_watching: contextvars.ContextVar[tuple[CapturedEvents, ...]] = contextvars.ContextVar(
    "narration_captures", default=()
)
"""The captures whose `with` block the current code runs in (tasks and wrapped threads
inherit it, as they inherit the narration context)."""


class CapturedEvents:
    """The events seen by one `capture()` block, in emit order, with assertion helpers."""

    def __init__(self) -> None:
        self._events: list[NarrationEvent] = []
        self._lock = threading.RLock()  # re-entrant: n() may run in a signal handler
        self._changed = threading.Condition(self._lock)

    def on_event(self, event: NarrationEvent) -> None:
        """A dispatcher tap: keep `event` if it was emitted inside this capture's block."""
        if self in _watching.get():
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
    """Capture the events emitted in this context (and in tasks/threads that inherit it).

    A dispatcher tap (the public extension point for in-process observers) that keeps only
    the events emitted inside this block's context, so captures of concurrent tests do not
    see each other's events; it goes away with the captured events object.
    """
    captured = CapturedEvents()
    token = _watching.set((*_watching.get(), captured))
    _tap_while_alive(captured)
    try:
        yield captured
    finally:
        _watching.reset(token)


def _tap_while_alive(captured: CapturedEvents) -> None:
    """Tap the dispatcher for `captured` for as long as it is referenced: a task started in
    the block may still narrate after the block ended, into the context it copied."""
    ref = weakref.ref(captured, lambda _: dispatcher.remove_tap(tap))

    def tap(event: NarrationEvent) -> None:
        target = ref()
        if target is not None:
            target.on_event(event)

    dispatcher.add_tap(tap)
