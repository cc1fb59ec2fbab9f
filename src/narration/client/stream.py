"""`ResumableStream`: one job's SSE stream, read to its terminal across dropped connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import aclosing
from typing import Final

import httpx
from httpx_sse import EventSource, ServerSentEvent, SSEError

from .._backoff import Backoff
from ..protocol import EVENT_GAP, EVENT_NARRATION, LAST_EVENT_ID_HEADER
from .decode import TERMINAL_STATES, decode_gap, decode_narration, decode_terminal
from .errors import JobClientError, error_from_response
from .models import StreamItem, Terminal

__all__ = ["RETRYABLE_STATUS", "ResumableStream"]

RETRYABLE_STATUS: Final = frozenset({502, 503, 504})
"""Stream responses worth a reconnect (a proxy or replica restarting), not an error yet."""

Connect = Callable[[Mapping[str, str]], Awaitable[httpx.Response]]
"""Opens the stream with these extra headers; the response is not read yet."""

Failure = JobClientError | httpx.TransportError


class ResumableStream:
    """Yields a job's events and gaps once each, then exactly one `Terminal`.

    Every connection asks for what follows the last id seen (`Last-Event-ID`); an event seen
    before a reconnect is skipped, and a gap moves the cursor past the events it covers. A
    connection that fails, drops, ends before the terminal or is answered 502/503/504 is
    retried after a backoff; after `max_retries` consecutive retries without progress,
    `JobClientError` is raised (the last failure's, or `stream_interrupted`). A resume answered
    204 means the stream is over: the terminal then comes from `ended()` (the job's status).
    """

    def __init__(
        self,
        job_id: str,
        after: int | None,
        *,
        connect: Connect,
        ended: Callable[[], Awaitable[Terminal]],
        max_retries: int,
        backoff: Backoff,
    ) -> None:
        self.job_id = job_id
        self.last_id = after
        """The cursor: the last id yielded (or skipped by a gap); a resume starts after it."""
        self._connect = connect
        self._ended = ended
        self._max_retries = max_retries
        self._backoff = backoff
        self._over = False  # the terminal was yielded
        self._failure: Failure | None = None  # why the last connection did not reach the end

    async def items(self) -> AsyncIterator[StreamItem]:
        """The stream's items, connection after connection, until the terminal."""
        while True:
            async with aclosing(self._connection()) as items:
                async for item in items:
                    yield item
            if self._over:
                return
            await self._back_off()

    async def _connection(self) -> AsyncGenerator[StreamItem, None]:
        """What one connection brings; it ends with `_over` set, or `_failure` saying why not."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        if self.last_id is not None:
            headers[LAST_EVENT_ID_HEADER] = str(self.last_id)
        try:
            response = await self._connect(headers)
        except (JobClientError, httpx.TransportError) as error:  # no base URL answered
            self._failure = error
            return
        try:
            async with aclosing(self._read(response)) as items:
                async for item in items:
                    yield item
        except SSEError as error:  # not an event stream
            raise JobClientError(response.status_code, "invalid_response", str(error)) from None
        except httpx.TransportError as error:  # the connection dropped mid-stream
            self._failure = error
        finally:
            await response.aclose()

    async def _read(self, response: httpx.Response) -> AsyncGenerator[StreamItem, None]:
        """The items of one response: its events up to the terminal, or what its status means."""
        if response.status_code == 204:  # nothing after the cursor: the job is over
            self._over = True
            yield await self._ended()
            return
        if not response.is_success:
            await response.aread()
            self._failure = error_from_response(response)
            if response.status_code not in RETRYABLE_STATUS:
                raise self._failure
            return
        async with aclosing(EventSource(response).aiter_sse()) as events:
            async for sse in events:
                item = self._accept(sse)
                if item is not None:
                    yield item
                if self._over:
                    return
        self._failure = JobClientError(
            None, "stream_interrupted", "the stream ended before its terminal"
        )

    def _accept(self, sse: ServerSentEvent) -> StreamItem | None:
        """The item an SSE event brings (None: already seen, or not one of ours), the cursor
        moved past it."""
        name = sse.event
        if name == EVENT_NARRATION:
            event = decode_narration(sse.data, sse.id)
            if self.last_id is not None and event.id <= self.last_id:
                return None  # already yielded before a reconnect
            self.last_id = event.id
            self._backoff.reset()
            return event
        if name == EVENT_GAP:
            gap = decode_gap(sse.data)
            if self.last_id is None or gap.next_id - 1 > self.last_id:
                self.last_id = gap.next_id - 1  # a resume must not repeat it
            self._backoff.reset()
            return gap
        if name in TERMINAL_STATES:
            self._over = True
            return decode_terminal(self.job_id, name, sse.data, sse.id)
        return None  # anything else (the `retry:` preamble, unknown events) is ignored

    async def _back_off(self) -> None:
        """Wait before the next connection, or give up after `max_retries` in a row."""
        failure = self._failure
        assert failure is not None  # every connection that did not reach the end says why
        delay = self._backoff.next_delay()
        if self._backoff.attempts > self._max_retries:
            raise self._gave_up(failure) from failure
        await asyncio.sleep(delay)

    def _gave_up(self, failure: Failure) -> JobClientError:
        """The error raised when reconnecting did not help: the last failure's, or
        `stream_interrupted` for a dropped connection."""
        where = f"job {self.job_id} after {self._max_retries} reconnects (last id {self.last_id})"
        if isinstance(failure, JobClientError):
            message = f"{failure.message}; gave up on {where}"
            return JobClientError(failure.status_code, failure.code, message)
        detail = str(failure) or type(failure).__name__
        return JobClientError(None, "stream_interrupted", f"{detail}; gave up on {where}")
