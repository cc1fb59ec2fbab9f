"""The SSE response: reads a job's log from a cursor and sends ready-made frames in batches."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.types import Receive, Scope, Send

from ..filters import EventFilter
from ..store.base import EventLog
from ..wire import KEEPALIVE_FRAME, RETRY_FRAME
from .following import FollowedStream

__all__ = ["EventStreamResponse", "StreamRegistry", "parse_cursor"]

_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),
    (b"connection", b"keep-alive"),
]


class StreamRegistry:
    """The open streams of a server: counted, and told to finish when the server stops."""

    def __init__(self) -> None:
        self.open = 0
        self.closing = asyncio.Event()
        self._changed = asyncio.Condition()
        self.followed: dict[str, int] = {}  # job id -> its open streams
        # Called with each batch of frames sent (metrics: gaps, delivery lag); must not raise.
        self.on_frames: Callable[[list[bytes]], None] | None = None

    def restart(self) -> None:
        """Ready for a new run of the server (its event loop may be a new one): no stream open,
        not closing."""
        self.open = 0
        self.closing = asyncio.Event()
        self._changed = asyncio.Condition()
        self.followed.clear()

    async def _count(self, delta: int, job_id: str = "") -> None:
        async with self._changed:
            self.open += delta
            streams = self.followed.get(job_id, 0) + delta
            if streams > 0:
                self.followed[job_id] = streams
            else:
                self.followed.pop(job_id, None)
            self._changed.notify_all()

    async def wait_for_open(self, count: int, timeout: float = 5.0) -> None:
        """Wait until exactly `count` streams are open (e.g. 0 after clients disconnect)."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.open == count)


class EventStreamResponse:
    """An ASGI response streaming `log` after `cursor` until its terminal, then closing.

    Whatever is available is sent in one write; after `keepalive_s` of silence a comment is
    sent. A client disconnect cancels the reader at once, leaving nothing behind. With `only`,
    events it rejects are skipped (their ids stay as they are, so a resume is exact).

    It writes in the request's own task and watches for the disconnect in one more: an idle
    stream holds two tasks (this object has slots, and no Starlette `Response` state).
    """

    __slots__ = (
        "_gone",
        "_writing",
        "cursor",
        "keepalive_s",
        "log",
        "only",
        "registry",
        "stream_headers",
    )

    def __init__(
        self,
        log: EventLog,
        cursor: int,
        registry: StreamRegistry,
        keepalive_s: float = 15.0,
        headers: list[tuple[bytes, bytes]] | None = None,
        only: EventFilter | None = None,
    ) -> None:
        self.log, self.cursor, self.registry = log, cursor, registry
        self.only = only
        self.keepalive_s = keepalive_s
        self.stream_headers = _HEADERS + (headers or [])
        self._writing = False
        self._gone = False  # the client left while this was writing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.registry._count(+1, self.log.job_id)
        task = asyncio.current_task()
        assert task is not None
        watcher = asyncio.create_task(self._watch(receive, task))
        try:
            self._writing = True
            try:
                await self._write(send)
            finally:
                self._writing = False
        except asyncio.CancelledError:
            if not self._gone or task.uncancel() > 0:  # not (only) the watcher's cancel
                raise
        finally:
            watcher.cancel()
            close = getattr(self.log, "close", None)  # a log read back from a file
            if close is not None:
                close()
            await asyncio.shield(self.registry._count(-1, self.log.job_id))

    async def _watch(self, receive: Receive, writer: asyncio.Task[Any]) -> None:
        """Cancel `writer` (the request's task) when the client disconnects."""
        while (await receive())["type"] != "http.disconnect":
            pass
        if self._writing:
            self._gone = True
            writer.cancel()

    async def _write(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.stream_headers})
        await send({"type": "http.response.body", "body": RETRY_FRAME, "more_body": True})
        if self.only is None and self.log.can_follow:  # caught up, the log writes for it
            stream = FollowedStream(self.log, self.cursor, self.registry, self.keepalive_s, send)
            await stream.run()
            return
        closing = self.registry.closing
        only, loop = self.only, asyncio.get_running_loop()
        quiet_until = loop.time() + self.keepalive_s  # filtered: when a keepalive is due
        while True:
            timeout = 0.0 if closing.is_set() else self.keepalive_s
            if only is not None:
                timeout = min(timeout, max(quiet_until - loop.time(), 0.0))
            result = await self.log.read(self.cursor, timeout=timeout)
            self.cursor = result.cursor
            if only is not None:  # skip what the reader does not want; its ids stay as they are
                if result.frames:
                    result.frames = only.apply(result.frames)
                nothing = not (result.frames or result.done or closing.is_set())
                if nothing and loop.time() < quiet_until:
                    continue
                quiet_until = loop.time() + self.keepalive_s
            if result.frames and self.registry.on_frames is not None:
                self.registry.on_frames(result.frames)
            if result.done:
                body = b"".join(result.frames)
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            if result.frames:
                body = b"".join(result.frames)
            elif closing.is_set():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            else:
                body = KEEPALIVE_FRAME
            await send({"type": "http.response.body", "body": body, "more_body": True})


def parse_cursor(last_event_id: str | None, after: str | None) -> int:
    """The resume cursor from `Last-Event-ID` or `?after=` (the larger); ValueError if bad."""
    cursor = 0
    for raw in (last_event_id, after):
        if raw is None or raw == "":
            continue
        text = raw.strip()
        if not text.isdigit() or len(text) > 18:
            raise ValueError(f"{raw[:40]!r} is not an event id (a non-negative integer)")
        cursor = max(cursor, int(text))
    return cursor
