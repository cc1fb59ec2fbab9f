"""The embedded store: job records in a dict, each job's events in a `MemoryEventLog`."""

from __future__ import annotations

import asyncio
import threading

from ..events import NarrationEvent
from ..wire import event_frame, gap_frame, terminal_frame
from .base import EventLog, JobRecord, LogLimits, ReadResult, Store

__all__ = ["MemoryEventLog", "MemoryStore"]

_EVENT_OVERHEAD = 200  # bytes a typical event costs besides its text; refined once encoded
_READ_BATCH = 2048


def _estimate(event: NarrationEvent) -> int:
    return _EVENT_OVERHEAD + len(event.human) + (96 * len(event.fields) if event.fields else 0)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _until(shared: asyncio.Future[None], timeout: float) -> None:
    """Wait until `shared` resolves or `timeout` s pass, without ever cancelling `shared`.

    One future and one timer per wait: at one event per wake-up this costs ~7 µs less CPU per
    event than `asyncio.wait((shared,), timeout=...)` (benchmarks/bench_stream.py, latency).
    """
    loop = asyncio.get_running_loop()
    mine: asyncio.Future[None] = loop.create_future()

    def wake(_: object = None) -> None:
        if not mine.done():
            mine.set_result(None)

    shared.add_done_callback(wake)
    timer = loop.call_later(timeout, wake)
    try:
        await mine
    finally:
        timer.cancel()
        shared.remove_done_callback(wake)


class MemoryEventLog(EventLog):
    """A bounded in-memory log: a list of events, each replaced by its SSE frame when first read.

    Appends take a short lock (no I/O under it) and wake readers through ONE shared future,
    whatever their number; readers encode outside the lock, once per event. When a limit is
    passed the oldest events are dropped and counted, and readers behind them get a `gap`.
    """

    __slots__ = (
        "_bytes",
        "_first_id",
        "_head",
        "_items",
        "_lock",
        "_next_id",
        "_terminal",
        "_terminal_id",
        "_waiter",
        "_waiter_loop",
        "_waiter_thread",
        "dropped",
        "job_id",
        "late",
        "limits",
    )

    def __init__(self, job_id: str, limits: LogLimits | None = None) -> None:
        self.job_id = job_id
        self.limits = limits or LogLimits()
        self._lock = threading.Lock()
        self._items: list[NarrationEvent | bytes | None] = []
        self._head = 0  # index in _items of the oldest retained event
        self._first_id = 1  # id of _items[_head]
        self._next_id = 1
        self._bytes = 0
        self._terminal: bytes | None = None
        self._terminal_id: int | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._waiter_loop: asyncio.AbstractEventLoop | None = None
        self._waiter_thread = 0
        self.dropped = 0
        self.late = 0  # events that arrived after the terminal (counted, not streamed)

    def append(self, event: NarrationEvent) -> None:
        with self._lock:
            if self._terminal is not None:
                self.late += 1
                return
            self._items.append(event)
            self._next_id += 1
            self._bytes += _estimate(event)
            if self._next_id - self._first_id > self.limits.max_events or (
                self._bytes > self.limits.max_bytes
            ):
                self._drop_oldest()
            waiter = self._waiter
            self._waiter = None
        if waiter is not None:
            self._wake(waiter)

    def seal(self, state: str, error: str | None) -> None:
        """Append the terminal event for `state`; later appends are counted as `late`."""
        with self._lock:
            if self._terminal is not None:
                return
            self._terminal_id = self._next_id
            self._terminal = terminal_frame(self._next_id, self.job_id, state, error)
            waiter = self._waiter
            self._waiter = None
        if waiter is not None:
            self._wake(waiter)

    def terminal_id(self) -> int | None:
        return self._terminal_id

    def count(self) -> int:
        return self._next_id - 1

    def retained(self) -> tuple[int, int]:
        """(events retained, estimated bytes retained)."""
        return self._next_id - self._first_id, self._bytes

    async def read(self, after: int, timeout: float) -> ReadResult:
        result = self._take(after)
        if result.frames or result.done or timeout <= 0:
            return result
        waiter = self._arm_waiter(after)
        if waiter is not None:
            await _until(waiter, timeout)
        return self._take(after)

    def _take(self, after: int) -> ReadResult:
        """Frames after `after` available now; encodes each event at most once."""
        with self._lock:
            frames: list[bytes] = []
            terminal_id = self._terminal_id
            if terminal_id is not None and after >= terminal_id:
                return ReadResult(frames, after, True)
            if after < self._first_id - 1:
                frames.append(gap_frame(self._first_id - 1 - after, self._first_id))
                after = self._first_id - 1
            start = self._head + (after + 1 - self._first_id)
            end = min(len(self._items), start + _READ_BATCH)
            batch = self._items[start:end]
            first = after + 1
        fresh = [
            (index, item, event_frame(first + index, item))
            for index, item in enumerate(batch)
            if isinstance(item, NarrationEvent)
        ]
        if fresh:
            self._store_frames(first, fresh)
            for index, _, frame in fresh:
                batch[index] = frame
        frames.extend(batch)  # type: ignore[arg-type]  # every item is a frame now
        cursor = after + len(batch)
        done = False
        if terminal_id is not None and cursor == terminal_id - 1:
            frames.append(self._terminal)  # type: ignore[arg-type]
            cursor, done = terminal_id, True
        return ReadResult(frames, cursor, done)

    def _store_frames(self, first_id: int, fresh: list[tuple[int, NarrationEvent, bytes]]) -> None:
        """Replace events by their frames, unless they were dropped meanwhile."""
        with self._lock:
            base = self._head - self._first_id
            items = self._items
            for index, event, frame in fresh:
                slot = base + first_id + index
                if self._head <= slot < len(items) and items[slot] is event:
                    items[slot] = frame
                    self._bytes += len(frame) - _estimate(event)

    def _arm_waiter(self, after: int) -> asyncio.Future[None] | None:
        """The future the next append resolves; None if something arrived meanwhile."""
        with self._lock:
            if self._next_id - 1 > after or self._terminal is not None:
                return None
            if self._waiter is None:
                loop = asyncio.get_running_loop()
                self._waiter = loop.create_future()
                self._waiter_loop = loop
                self._waiter_thread = threading.get_ident()
            return self._waiter

    def _wake(self, waiter: asyncio.Future[None]) -> None:
        loop = self._waiter_loop
        if loop is None:
            return
        if threading.get_ident() == self._waiter_thread:
            _wake(waiter)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(_wake, waiter)

    def _drop_oldest(self) -> None:
        """Drop from the front until within limits (called with the lock held)."""
        limits, items = self.limits, self._items
        while self._next_id - self._first_id > 1 and (
            self._next_id - self._first_id > limits.max_events or self._bytes > limits.max_bytes
        ):
            item = items[self._head]
            if isinstance(item, NarrationEvent):
                self._bytes -= _estimate(item)
            elif item is not None:
                self._bytes -= len(item)
            items[self._head] = None
            self._head += 1
            self._first_id += 1
            self.dropped += 1
        if self._head > 4096 and self._head * 2 > len(items):
            del items[: self._head]
            self._head = 0


class MemoryStore(Store):
    """Jobs and logs in this process's memory; forgotten `retention_s` after their terminal."""

    def __init__(self, limits: LogLimits | None = None) -> None:
        self.limits = limits or LogLimits()
        self._records: dict[str, JobRecord] = {}
        self._logs: dict[str, MemoryEventLog] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    async def create(self, record: JobRecord) -> EventLog:
        log = MemoryEventLog(record.job_id, self.limits)
        self._records[record.job_id] = record
        self._logs[record.job_id] = log
        return log

    async def get(self, job_id: str) -> JobRecord | None:
        return self._records.get(job_id)

    async def log(self, job_id: str) -> EventLog | None:
        return self._logs.get(job_id)

    async def list(self, state: str | None, limit: int) -> list[JobRecord]:
        result: list[JobRecord] = []
        for record in reversed(self._records.values()):  # insertion order = creation order
            if state is None or record.state == state:
                result.append(record)
                if len(result) >= limit:
                    break
        return result

    async def start(self, record: JobRecord) -> None:
        self._records[record.job_id] = record

    async def finish(self, record: JobRecord, log: EventLog) -> None:
        self._records[record.job_id] = record
        assert isinstance(log, MemoryEventLog)
        log.seal(record.state, record.error)

    async def expire(self, job_id: str, after_s: float) -> None:
        if after_s <= 0:
            self._forget(job_id)
            return
        loop = asyncio.get_running_loop()
        self._timers[job_id] = loop.call_later(after_s, self._forget, job_id)

    def _forget(self, job_id: str) -> None:
        self._records.pop(job_id, None)
        self._logs.pop(job_id, None)
        timer = self._timers.pop(job_id, None)
        if timer is not None:
            timer.cancel()

    def __len__(self) -> int:
        return len(self._records)

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
