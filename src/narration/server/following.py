"""A caught-up SSE stream written by its log's callback, not woken as a task per event.

At a few events per second per stream, waking the stream's task for each event costs more
than the event: a future resolved, a task step, a keepalive timer pushed and cancelled. So
once a reader has caught up, a log that can follow (`EventLog.follow`) hands it each new frame
as it comes (the memory log from the one callback it runs per loop turn, the Redis log from
its writer or its replica's shared tail), and the frame goes straight into the ASGI `send`
(docs/ARCHITECTURE.md section 1: still no per-reader work in `n()`). The stream's task sleeps
meanwhile, woken only for the terminal (or handed it: `finish`), a write the transport makes
wait (flow control), or the keepalive deadline when the server is stopping or the log asks to
be read again when idle (`recheck_when_idle`: Redis may forget a job, and only a read finds
that out). The keepalive is one timer per stream, moved on only when it fires.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Coroutine, Generator
from typing import Any

from starlette.types import Send

from ..store.base import EventLog
from ..wire import KEEPALIVE_FRAME

__all__ = ["FollowedStream"]

_EARLY = 0.002  # a timer may fire up to the loop's clock resolution before its deadline
_RECHECK_S = 0.01  # how long an idle recheck's read may wait (it looks the job up on timeout)


@types.coroutine
def _go_on(coro: Coroutine[Any, Any, Any], waiting: Any) -> Generator[Any, None, None]:
    """Finish `coro`, which was started by hand and suspended on `waiting`, inside a task."""
    while True:
        try:
            yield waiting
        except BaseException as exc:  # the task was cancelled: so is what it waits for
            try:
                waiting = coro.throw(exc)
            except StopIteration:
                return
        else:
            try:
                waiting = coro.send(None)
            except StopIteration:
                return


async def _finish(coro: Coroutine[Any, Any, Any], waiting: Any) -> None:
    await _go_on(coro, waiting)


class FollowedStream:
    """Writes `log` after `cursor` to one SSE response whose head is already sent.

    Reads until caught up, then follows: `deliver` writes each batch the log hands over by
    running `send` on the spot; it completes without waiting unless the transport's buffer is
    full, and then a task finishes that write and later frames wait for the stream's own loop.
    """

    __slots__ = (
        "_error",
        "_finished",
        "_last_write",
        "_loop",
        "_recheck",
        "_sending",
        "_timer",
        "_woken",
        "cursor",
        "keepalive_s",
        "log",
        "registry",
        "send",
    )

    def __init__(
        self, log: EventLog, cursor: int, registry: Any, keepalive_s: float, send: Send
    ) -> None:
        self.log, self.cursor, self.registry = log, cursor, registry
        self.keepalive_s, self.send = keepalive_s, send
        self._loop: asyncio.AbstractEventLoop | None = None
        self._woken: asyncio.Future[None] | None = None  # set while followed
        self._sending: asyncio.Task[None] | None = None  # a write that had to wait
        self._error: BaseException | None = None  # a write that failed while followed
        self._timer: asyncio.TimerHandle | None = None
        self._last_write = 0.0
        self._recheck = False  # the keepalive deadline passed on a log to read again when idle
        self._finished = False  # the log handed over the terminal: end the response

    async def run(self) -> None:
        """Stream until the terminal (or the server stops), then end the response."""
        loop = self._loop = asyncio.get_running_loop()
        closing = self.registry.closing
        self._last_write = loop.time()
        try:
            while True:
                if self._sending is not None:
                    await self._sending
                    self._sending = None
                if self._error is not None:
                    raise self._error
                if self._finished:
                    await self.send({"type": "http.response.body", "body": b""})
                    return
                recheck, self._recheck = self._recheck, False
                result = await self.log.read(self.cursor, timeout=_RECHECK_S if recheck else 0)
                self.cursor = result.cursor
                if result.frames and self.registry.on_frames is not None:
                    self.registry.on_frames(result.frames)
                if result.done or (closing.is_set() and not result.frames):
                    body = b"".join(result.frames)
                    await self.send({"type": "http.response.body", "body": body})
                    return
                if result.frames or recheck:
                    self._last_write = loop.time()
                    body = b"".join(result.frames) if result.frames else KEEPALIVE_FRAME
                    await self.send({"type": "http.response.body", "body": body, "more_body": True})
                elif self.log.follow(self.cursor, self):
                    if self._timer is None:
                        self._timer = loop.call_at(self._last_write + self.keepalive_s, self._tick)
                    self._woken = loop.create_future()
                    try:
                        await self._woken
                    finally:
                        self._woken = None
                        self.log.unfollow(self)
        finally:
            if self._timer is not None:
                self._timer.cancel()
            if self._sending is not None:
                self._sending.cancel()

    # Follower (store.base): called by the log on the event loop.

    def deliver(self, frames: list[bytes], cursor: int) -> bool:
        if self._sending is not None or self._error is not None:
            return False
        self.cursor = cursor
        if self.registry.on_frames is not None:
            self.registry.on_frames(frames)
        self._write_now(frames[0] if len(frames) == 1 else b"".join(frames))
        return True

    def wake(self) -> None:
        woken = self._woken
        if woken is not None and not woken.done():
            woken.set_result(None)

    def finish(self, frames: list[bytes], cursor: int) -> None:
        if self.deliver(frames, cursor):
            self._finished = True
        self.wake()

    def recheck(self) -> None:
        self._recheck = True
        self.wake()

    def _write_now(self, body: bytes) -> None:
        """Run `send` for `body` here; a write that must wait goes on in a task."""
        loop = self._loop
        assert loop is not None
        self._last_write = loop.time()
        coro = self.send({"type": "http.response.body", "body": body, "more_body": True})
        try:
            waiting = coro.send(None)  # type: ignore[attr-defined]
        except StopIteration:
            return
        except Exception as exc:  # the stream's loop raises it
            self._error = exc
            self.wake()
            return
        self._sending = loop.create_task(_finish(coro, waiting))  # type: ignore[arg-type]
        self._sending.add_done_callback(lambda _: self.wake())

    def _tick(self) -> None:
        """The keepalive deadline: a comment after `keepalive_s` of silence (or, when the
        server is stopping, the stream's loop ends the response)."""
        loop = self._loop
        assert loop is not None
        self._timer = None
        if self._woken is None:  # the stream's loop is writing: it arms the next deadline
            return
        now, due = loop.time(), self._last_write + self.keepalive_s
        if now >= due - _EARLY:
            if self.registry.closing.is_set():
                self.wake()
                return
            if self.log.recheck_when_idle:  # the stream's loop reads, then sends the keepalive
                self.recheck()
                return
            if self._sending is None:
                self._write_now(KEEPALIVE_FRAME)
            due = max(self._last_write, now) + self.keepalive_s
        self._timer = loop.call_at(due, self._tick)
