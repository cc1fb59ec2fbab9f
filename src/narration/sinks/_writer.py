"""A bounded queue drained by one daemon thread, so sinks never do I/O on the emit path."""

from __future__ import annotations

import atexit
import os
import queue
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from ..events import Level, NarrationEvent, timestamp
from ..redact import redact_batch

T = TypeVar("T")

__all__ = ["BackgroundWriter", "QueuedSink"]


class _FlushMarker:
    """Queued by `flush()`; the writer sets `done` when it reaches it."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class BackgroundWriter(Generic[T]):
    """Queue items from any thread; a daemon thread hands them to `write` in batches.

    `put` is a deque append plus, only when the writer sleeps, a wake-up token put into a
    `queue.SimpleQueue`: both are single C calls that take no Python-level lock, so `put` is
    safe where a lock is not (a signal handler or `__del__` running `n()` on a thread that was
    itself inside `put`; a `threading.Event.set` there could deadlock). When more than
    `capacity` items wait, new ones are counted as dropped and `on_drop(count)` is called by
    the writer so the loss is reported, never silent. Flushed at interpreter exit. In a child
    made by `os.fork()` the writer thread is started again (threads do not survive a fork), and
    what the parent had queued is left to the parent.
    """

    def __init__(
        self,
        write: Callable[[list[T]], None],
        *,
        name: str,
        capacity: int = 100_000,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self._write = write
        self._on_drop = on_drop
        self._capacity = capacity
        self._items: deque[T | _FlushMarker] = deque()
        self._wake: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._sleeping = False
        self._closed = False
        self.dropped = 0
        self.failed = 0
        self._reported_drops = 0
        self._name = name
        self._write_lock = threading.Lock()  # held while popping and writing; never by `put`
        self._writing: int | None = None  # the thread holding _write_lock
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        atexit.register(self.close)
        _live_writers.add(self)

    @property
    def closed(self) -> bool:
        """True once `close()` began: nothing queued after that is written."""
        return self._closed

    def put(self, item: T) -> None:
        """Queue `item` for writing; never blocks."""
        if len(self._items) >= self._capacity:
            self.dropped += 1
        else:
            self._items.append(item)
        if self._sleeping:
            self._wake.put(None)

    def put_wait(self, item: T, limit: int) -> None:
        """Queue `item`, never dropped; once `limit` items wait, write them on this thread.

        For text (stdout), whose write would block on a full pipe anyway; never for events.
        """
        self._items.append(item)
        if len(self._items) >= limit and self.drain():
            return
        if self._sleeping:
            self._wake.put(None)

    def drain(self) -> bool:
        """Write everything queued so far on the calling thread, in order with the writer.

        The writer thread and drainers pop and write under one lock, which `put` never takes.
        False, writing nothing, when this thread is already writing (a signal handler that
        interrupted a write) or the writer is closed.
        """
        me = threading.get_ident()
        if self._writing == me or self._closed:
            return False
        with self._write_lock:
            self._writing = me
            try:
                items = self._items
                while items:
                    self._write_batch([items.popleft() for _ in range(min(len(items), 4096))])
            finally:
                self._writing = None
        return True

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is written; False if `timeout` passed first."""
        if threading.current_thread() is self._thread or not self._thread.is_alive():
            return not self._items
        # A marker queued behind the items is set once they are written: FIFO order makes this
        # exact, where an "idle" flag could be set by a writer that looked just before `put`.
        marker = _FlushMarker()
        self._items.append(marker)
        self._wake.put(None)
        return marker.done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the thread."""
        if self._closed:
            return
        self.flush(timeout)
        self._closed = True
        self._wake.put(None)
        self._thread.join(timeout)
        atexit.unregister(self.close)

    def _restart_in_child(self) -> None:
        """After `os.fork()`, in the child: a new writer thread, an empty queue."""
        if self._closed:
            return
        self._items.clear()
        self._write_lock = threading.Lock()  # a parent's thread may have held it at the fork
        self._writing = None
        self._wake = queue.SimpleQueue()
        self._sleeping = False
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        items = self._items
        me = threading.get_ident()
        while True:
            if items:
                with self._write_lock:
                    self._writing = me
                    try:
                        batch = [items.popleft() for _ in range(min(len(items), 4096))]
                        self._write_batch(batch)
                    finally:
                        self._writing = None
                continue
            with self._write_lock:
                self._report_drops()
            if self._closed:
                return
            self._sleeping = True
            if not items and not self._closed:
                self._wake.get()
            self._sleeping = False
            while not self._wake.empty():  # spare tokens: the loop re-checks the items anyway
                self._wake.get_nowait()

    def _write_batch(self, batch: list[T | _FlushMarker]) -> None:
        """Write the items, and release each flush marker once the items before it are out."""
        chunk: list[T] = []
        for item in batch:
            if isinstance(item, _FlushMarker):
                if chunk:
                    self._safe_write(chunk)
                    chunk = []
                self._report_drops()
                item.done.set()
            else:
                chunk.append(item)
        if chunk:
            self._safe_write(chunk)

    def _report_drops(self) -> None:
        if self.dropped != self._reported_drops and self._on_drop is not None:
            count = self.dropped - self._reported_drops
            self._reported_drops = self.dropped
            try:
                self._on_drop(count)
            except Exception:  # reporting a loss must not kill the writer thread either
                self.failed += 1

    def _safe_write(self, batch: list[T]) -> None:
        try:
            self._write(redact_batch(batch))  # secrets never reach an output
        except Exception:  # a closed stream must not kill the writer thread; count the loss
            self.failed += len(batch)


_live_writers: weakref.WeakSet[BackgroundWriter[Any]] = weakref.WeakSet()


def _restart_writers_in_child() -> None:
    for writer in list(_live_writers):
        writer._restart_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_restart_writers_in_child)


class QueuedSink:
    """A sink that writes on its own background thread, so it never holds up `n()`.

    Calling the sink only queues the event (a deque append, no lock). Subclasses implement
    `_write(batch)`, which gets the events in emit order, and may override
    `_report_drop(count)`: when more than `capacity` events wait, new ones are dropped,
    counted in `dropped` and reported through it. Console, JSONL and logging sinks are built
    on it; `configure(sinks=[fn])` wraps a plain callable in one (`BackgroundSink`).
    """

    thread_name = "narration-sink"

    def __init__(self, capacity: int = 100_000) -> None:
        self._writer: BackgroundWriter[Any] = BackgroundWriter(
            self._write, name=self.thread_name, capacity=capacity, on_drop=self._report_drop
        )

    def __call__(self, event: NarrationEvent) -> None:
        self._writer.put(event)

    @property
    def dropped(self) -> int:
        """Events dropped so far because the writer had fallen `capacity` events behind."""
        return self._writer.dropped

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every event queued so far is written; False if `timeout` passed first."""
        return self._writer.flush(timeout)

    def close(self) -> None:
        """Write what is queued, then stop the writer thread."""
        self._writer.close()

    def _write(self, batch: Sequence[NarrationEvent]) -> None:
        raise NotImplementedError

    def _report_drop(self, count: int) -> None:
        """Tell the reader of this output that `count` events could not be queued."""


def dropped_notice(count: int, why: str) -> NarrationEvent:
    """The event a sink writes where it had to drop `count` events: `why` says what was lost."""
    return NarrationEvent(
        ts=timestamp(),
        level=Level.WARN,
        actor="narration",
        action="dropped",
        human=f"{count} events {why}",
        fields={"dropped": count},
    )
