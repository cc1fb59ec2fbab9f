"""`MemoryEventLog`: one job's events in memory, kept as their SSE frames back to back."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections import deque
from collections.abc import Callable

from ..events import NarrationEvent
from ..safe_encode import encode_now, encode_off_loop
from ..wire import event_frame_from_json, terminal_frame
from ._reentry import ReentrySafe
from .base import EventLog, Follower, LogLimits, ReadResult
from .frames import FrameBuffer

__all__ = ["MemoryEventLog"]

_EVENT_OVERHEAD = 200  # bytes a typical event costs besides its text; exact once encoded
_READ_BATCH = 2048  # events per read (one slice of the buffer)
_ENCODE_BATCH = 256  # queued events that make the log schedule an encode on its loop
_LARGE_EVENT = 16 * 1024  # an event estimated this large is encoded (and capped) at once
_ENCODE_SLICE = 64  # events encoded per lock hold
_SIZED = (str, bytes)  # field values whose size the estimate counts (cheaply: len)


def _estimate(event: NarrationEvent, cap: int) -> int:
    """About the encoded size of `event`: its text and string fields counted, never more than
    `cap` (encoding cuts an event to the per-event cap)."""
    fields = event.fields
    if not fields:
        return _EVENT_OVERHEAD + len(event.human)
    size = _EVENT_OVERHEAD + len(event.human) + 96 * len(fields)
    for value in fields.values():
        if type(value) in _SIZED:
            size += len(value)
    return size if size < cap else cap


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _call_soon(
    loop: asyncio.AbstractEventLoop | None,
    loop_thread: int,
    callback: Callable[[], object],
    context: contextvars.Context | None = None,
) -> bool:
    """Run `callback` on `loop` (running in thread `loop_thread`) soon, from any thread;
    False when there is no loop to run it on."""
    if loop is None or loop.is_closed():
        return False
    if threading.get_ident() == loop_thread:
        loop.call_soon(callback, context=context)
    else:
        loop.call_soon_threadsafe(callback, context=context)
    return True


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


class MemoryEventLog(ReentrySafe, EventLog):
    """A bounded in-memory log whose events are kept as their SSE frames, back to back.

    `append` (any thread) queues the event under a short lock and wakes readers through ONE
    shared future, whatever their number. An `n()` that re-enters from a signal handler or
    finalizer on a thread mid-way through this log never waits for itself: its event is set
    aside and appended right after (`ReentrySafe`). Events are encoded once each, in order, on the
    event loop: by the first reader, or by a callback scheduled once per `_ENCODE_BATCH` appends
    or per large event, each within the size caps of `safe_encode`; one whose values need their
    `repr` is encoded in a worker thread (bounded in time) while the events after it wait. A
    frame costs its bytes plus an 8-byte offset (frames sit in exact-size chunks of about
    64 KiB), and a read of many events is a slice or two. `max_bytes` counts encoded frames
    and is checked as each slice is encoded; past a limit the oldest events are dropped and
    counted, and readers behind them get a `gap`.
    """

    can_follow = True

    __slots__ = (
        "_bytes",
        "_encode_scheduled",
        "_event_cap",
        "_followers",
        "_frames",
        "_id_limit",
        "_loop",
        "_loop_thread",
        "_max_bytes",
        "_next_id",
        "_pending",
        "_push_context",
        "_push_scheduled",
        "_slow",
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
        self._event_cap = self.limits.caps.max_event_bytes
        self._lock = threading.RLock()
        self._busy = False  # a section of this log is running (the lock is held)
        self._aside: deque[NarrationEvent] | None = None  # appends that re-entered a section
        # Encoded frames (ids first_id .. next_id - 1), then the events not yet encoded, in order.
        self._frames = FrameBuffer()
        # What `append` compares with (plain attributes: it runs for every event): an id past
        # `_id_limit` or more than `_max_bytes` retained makes it drop the oldest.
        self._id_limit = self._frames.first_id + self.limits.max_events
        self._max_bytes = self.limits.max_bytes
        # Events not yet encoded, each with its size estimate (counted in _bytes until encoded);
        # made on demand: idle jobs are small.
        self._pending: deque[tuple[NarrationEvent, int]] | None = None
        self._bytes = 0  # retained: exact for encoded frames, estimated for queued events
        self._next_id = 1
        self._terminal: bytes | None = None
        self._terminal_id: int | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._followers: dict[Follower, int] | None = None  # caught-up readers: their cursors
        self._push_scheduled = False
        self._push_context: contextvars.Context | None = None
        self._waiter_loop: asyncio.AbstractEventLoop | None = None
        self._waiter_thread = 0
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # made outside a loop: readers alone encode
            self._loop = None
        self._loop_thread = threading.get_ident()
        self._encode_scheduled = False
        self._slow: asyncio.Task[None] | None = None  # the head event, encoded off the loop
        self.dropped = 0
        self.late = 0  # events that arrived after the terminal (counted, not streamed)

    def append(self, event: NarrationEvent) -> None:
        with self._lock:
            if self._busy:  # this thread re-entered, mid-way through a section of this log
                self._set_aside(event, self._loop or self._waiter_loop)
                return
            self._busy = True  # `with self:` inlined: this is the emit path
            try:
                if self._terminal is not None:
                    self.late += 1
                    return
                pending = self._pending
                if pending is None:
                    pending = self._pending = deque()
                estimate = _estimate(event, self._event_cap)
                pending.append((event, estimate))
                self._bytes += estimate
                self._next_id += 1
                if self._next_id > self._id_limit or self._bytes > self._max_bytes:
                    self._drop_oldest()
                waiter = self._waiter
                self._waiter = None
                push = self._followers and not self._push_scheduled
                if push:
                    self._push_scheduled = True
                schedule = (
                    len(pending) >= _ENCODE_BATCH or estimate >= _LARGE_EVENT
                ) and not self._encode_scheduled
                if schedule:
                    self._encode_scheduled = True
            finally:
                self._busy = False
        if waiter is not None:
            self._wake(waiter)
        if push:
            self._schedule_push()
        if schedule:
            self._schedule_encode()

    def seal(self, state: str, error: str | None) -> None:
        """Append the terminal event for `state`; later appends are counted as `late`."""
        self._replay_set_aside()
        if self._pending:  # encoded now, so limits apply to what the retention keeps
            self.encode_pending()
        with self:
            if self._terminal is not None:
                return
            self._terminal_id = self._next_id
            self._terminal = terminal_frame(self._next_id, self.job_id, state, error)
            waiter = self._waiter
            self._waiter = None
            push = self._followers and not self._push_scheduled
            if push:
                self._push_scheduled = True
        if waiter is not None:
            self._wake(waiter)
        if push:
            self._schedule_push()

    def terminal_id(self) -> int | None:
        return self._terminal_id

    def count(self) -> int:
        return self._next_id - 1

    def retained(self) -> tuple[int, int]:
        """(events retained, bytes retained: exact for encoded ones, estimated for the rest)."""
        with self._lock:  # not marked busy: an append re-entering here only moves the pair on
            return self._next_id - self._frames.first_id, self._bytes

    async def read(self, after: int, timeout: float) -> ReadResult:
        result = self._take(after)
        if result.frames or result.done or timeout <= 0:
            return result
        waiter = self._arm_waiter(after)
        if waiter is not None:
            await _until(waiter, timeout)
        return self._take(after)

    def _take(self, after: int) -> ReadResult:
        """Frames after `after` available now (event loop thread only)."""
        self._replay_set_aside()
        if self._pending:  # read without the lock: what arrives meanwhile is seen next time
            self.encode_pending()
        with self:
            return self._take_locked(after)

    def _take_locked(self, after: int) -> ReadResult:
        terminal_id = self._terminal_id
        if terminal_id is not None and after >= terminal_id:
            return ReadResult([], after, True)
        frames, after = self._frames.read(after, _READ_BATCH)
        done = terminal_id is not None and after == terminal_id - 1
        if done:
            frames.append(self._terminal)  # type: ignore[arg-type]
            after = terminal_id  # type: ignore[assignment]
        return ReadResult(frames, after, done)

    def encode_pending(self) -> None:
        """Encode every queued event into the frame buffer (event loop thread only).

        A few events at a time under the lock: the encoder is the only writer of the buffer,
        and an appending thread never waits for more than a short slice of work.
        """
        self._encode_scheduled = False
        while True:
            with self:
                if not self._encode_slice():
                    return

    def _encode_slice(self) -> bool:
        """Encode up to `_ENCODE_SLICE` queued events (lock held); False when none are left,
        or when the next one is being encoded off the loop."""
        pending = self._pending
        if not pending:
            self._pending = None
            return False
        if self._slow is not None:
            return False
        caps = self.limits.caps
        event_id = self._frames.next_id
        frames: list[bytes] = []
        estimated = 0
        for _ in range(min(len(pending), _ENCODE_SLICE)):
            event, estimate = pending[0]
            body = encode_now(event, event_id, caps)
            if body is None:  # a value needs its repr: a worker thread, bounded in time
                self._slow = asyncio.get_running_loop().create_task(
                    self._encode_slow(event, event_id)
                )
                break
            pending.popleft()
            frames.append(event_frame_from_json(event_id, body))
            estimated += estimate
            event_id += 1
        if frames:  # one buffer call per slice
            self._bytes += self._frames.extend(frames) - estimated
        if not pending:
            self._pending = None
        if self._bytes > self._max_bytes:  # exact now for what was just encoded
            self._drop_oldest()
        return self._slow is None

    def _add_frame(self, estimate: int, frame: bytes) -> None:
        """Append the encoded frame of the oldest queued event, estimated `estimate` bytes
        while it waited (lock held)."""
        self._frames.append(frame)
        self._bytes += len(frame) - estimate

    async def _encode_slow(self, event: NarrationEvent, event_id: int) -> None:
        """Encode the head event off the loop, then go on with the rest and wake readers."""
        body = await encode_off_loop(event, event_id, self.limits.caps)
        with self:
            self._slow = None
            pending = self._pending
            # Unless retention dropped it meanwhile, it is still the next to encode.
            if pending and self._frames.next_id == event_id:
                _, estimate = pending.popleft()
                self._add_frame(estimate, event_frame_from_json(event_id, body))
                if self._bytes > self._max_bytes:
                    self._drop_oldest()
            waiter = self._waiter
            self._waiter = None
        self.encode_pending()
        if waiter is not None:
            self._wake(waiter)
        if self._followers:
            self._push()

    def follow(self, after: int, follower: Follower) -> bool:
        with self:
            if not self._caught_up(after):
                return False
            followers = self._followers
            if followers is None:
                followers = self._followers = {}
                self._push_context = contextvars.Context()  # pushes run in no job's context
            followers[follower] = after
            self._note_loop()
            return True

    def unfollow(self, follower: Follower) -> None:
        followers = self._followers
        if followers is not None:
            followers.pop(follower, None)

    def _schedule_push(self) -> None:
        """Run `_push` once on the followers' loop (from `append` or `seal`, any thread)."""
        if not _call_soon(self._waiter_loop, self._waiter_thread, self._push, self._push_context):
            self._push_scheduled = False

    def _push(self) -> None:
        """Hand what arrived to every follower (event loop thread): one callback per loop
        turn for the whole log, however many readers, and no task switch per reader. Followers
        at the same cursor are handed the same frames, read once (they must not change them).
        """
        with self:
            self._push_scheduled = False  # an append from now on schedules another push
        self._replay_set_aside()
        if self._pending:
            self.encode_pending()
        followers = self._followers
        if not followers:
            return
        reads: dict[int, tuple[ReadResult | None, int]] = {}  # cursor -> (frames, last id)
        for follower, cursor in list(followers.items()):
            while True:
                read = reads.get(cursor)
                if read is None:
                    with self:  # at the terminal the reader reads the rest itself
                        last = self._frames.next_id - 1
                        if self._terminal is not None:
                            read = (None, last)
                        else:
                            read = (self._take_locked(cursor) if cursor < last else None, last)
                    reads[cursor] = read
                result, last = read
                if result is None and self._terminal is None:
                    break  # caught up
                try:
                    taken = result is not None and follower.deliver(result.frames, result.cursor)
                except Exception:  # the reader finds out when it reads by itself
                    taken = False
                if not taken or result is None:
                    followers.pop(follower, None)
                    follower.wake()
                    break
                cursor = followers[follower] = result.cursor
                if cursor >= last:  # all there was when it was read
                    break

    def _schedule_encode(self) -> None:
        if not _call_soon(self._loop, self._loop_thread, self.encode_pending):
            self._encode_scheduled = False

    def _arm_waiter(self, after: int) -> asyncio.Future[None] | None:
        """The future the next append resolves; None if something arrived meanwhile."""
        with self:
            if not self._caught_up(after):
                return None
            if self._waiter is None:
                self._waiter = asyncio.get_running_loop().create_future()
                self._note_loop()
            return self._waiter

    def _caught_up(self, after: int) -> bool:
        """Nothing to read after `after` yet, terminal included (lock held)."""
        return not (
            self._frames.next_id - 1 > after
            or (self._pending and self._slow is None)
            or (self._terminal is not None and not self._pending)
        )

    def _note_loop(self) -> None:
        """Remember the running loop as the one readers wait in (lock held)."""
        self._waiter_loop = asyncio.get_running_loop()
        self._waiter_thread = threading.get_ident()

    def _replay(self, item: NarrationEvent) -> None:
        self.append(item)

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
        limits, frames = self.limits, self._frames
        retained = self._next_id - frames.first_id
        while retained > 1 and (retained > limits.max_events or self._bytes > self._max_bytes):
            if len(frames):  # the oldest is encoded
                self._bytes -= frames.drop_oldest()
            else:  # nothing encoded is left: the oldest is still queued
                _, estimate = self._pending.popleft()  # type: ignore[union-attr]
                self._bytes -= estimate
                frames.skip()
            retained -= 1
            self.dropped += 1
        self._id_limit = frames.first_id + limits.max_events
