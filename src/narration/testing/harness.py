"""`NarrationTestHarness`: a real narration server on an ephemeral 127.0.0.1 port, for tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import httpx
from pydantic import BaseModel
from starlette.types import ASGIApp

from ..client import Gap, JobClient, Terminal, operation_body
from ..context import NarrationContext
from ..events import NarrationEvent
from ..jobs import JobRegistry
from ..protocol import CORRELATION_HEADER
from ..server import NarrationServer, ServerState, create_app, make_server
from ..server.app import server_states

__all__ = ["HarnessStream", "NarrationTestHarness"]

_END = object()


class HarnessStream:
    """One job's SSE stream over a real HTTP connection, opened on first use.

    A background task reads the stream into a queue, so a timed-out `next_event` loses nothing.
    """

    def __init__(
        self,
        client: JobClient,
        job_id: str,
        after: int | None = None,
        on_end: Callable[[HarnessStream], None] | None = None,
    ) -> None:
        self.job_id = job_id
        self._on_end = on_end
        self.terminal: Terminal | None = None
        self.gaps: list[Gap] = []
        self._client, self._after = client, after
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None

    def open(self) -> None:
        """Connect now (otherwise the first `next_event` does); idempotent."""
        if self._pump is None:
            self._pump = asyncio.create_task(self._read(), name=f"harness-stream-{self.job_id}")

    async def _read(self) -> None:
        try:
            async for item in self._client.stream(self.job_id, after=self._after):
                await self._queue.put(item)
        except Exception as exc:
            await self._queue.put(exc)
        finally:
            await self._queue.put(_END)
            self._release()

    def _release(self) -> None:
        """Tell the harness this stream ended, once: it lets go of it."""
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end(self)

    async def next_event(self, timeout: float = 5.0) -> NarrationEvent | None:
        """The next event; None once the terminal arrived; TimeoutError after `timeout` s."""
        self.open()
        while True:
            if self.terminal is not None:
                return None
            try:
                item = await asyncio.wait_for(self._queue.get(), timeout)
            except TimeoutError:
                raise TimeoutError(f"no event on {self.job_id} within {timeout} s") from None
            if isinstance(item, NarrationEvent):
                return item
            if isinstance(item, Gap):
                self.gaps.append(item)
            elif isinstance(item, Terminal):
                self.terminal = item
                self._release()  # read to its end: nothing more to keep it for
            elif isinstance(item, Exception):
                raise item
            elif item is _END:
                raise ConnectionError(f"the stream of {self.job_id} ended without a terminal")

    async def assert_next(
        self, action: str, text: str | None = None, timeout: float = 5.0
    ) -> NarrationEvent:
        """The next event, asserting its action (and that its human text contains `text`)."""
        event = await self.next_event(timeout)
        assert event is not None, f"expected {action!r}, got the terminal {self.terminal}"
        assert event.action == action, (
            f"expected action {action!r}, got {event.action!r}: {event.human!r}"
        )
        if text is not None:
            assert text in event.human, f"expected {text!r} in {event.human!r}"
        return event

    async def collect_until_done(self, timeout: float = 5.0) -> list[NarrationEvent]:
        """Every event up to the terminal (not included); TimeoutError if none comes in time."""
        events: list[NarrationEvent] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no terminal on {self.job_id} within {timeout} s")
            event = await self.next_event(remaining)
            if event is None:
                return events
            events.append(event)

    async def close(self) -> None:
        """Stop reading (closes the HTTP connection)."""
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)


class NarrationTestHarness:
    """A real narration server on 127.0.0.1:<free port>, run in this event loop, for tests.

    `jobs` is your `JobRegistry`: its operations run their handlers, and those it declares
    without a handler are validated, then held open. With no `jobs`, any operation is accepted
    and held. A held job emits nothing until `complete_job`/`fail_job`; test code narrates into
    it with `with narration_context(harness.job_context(job_id)): n(...)`.
    Or give a whole ASGI `app` (e.g. your FastAPI app with `mount_narration(..., prefix=...)`)
    and the `prefix` it serves narration under. `server_options` are `create_app` settings
    (the submission rate limit is off unless given). It serves on loopback, so without API
    keys in the settings auth is off (docs/SECURITY.md); with them, `token` is the API key its
    `http` and `client` send.
    """

    def __init__(
        self,
        jobs: JobRegistry | None = None,
        *,
        app: ASGIApp | None = None,
        prefix: str = "",
        token: str | None = None,
        **server_options: Any,
    ) -> None:
        if app is None:
            server_options.setdefault("submit_rate", "off")  # tests submit in bursts
            app = create_app(jobs, hold_unhandled=True, **server_options)
        elif jobs is not None or server_options:
            raise TypeError("give either app= or jobs/server options, not both")
        states = server_states(app)
        if not states:
            raise ValueError("app runs no narration server (create_app or mount_narration)")
        self.app = app
        self.state: ServerState = states[0]
        self.prefix = prefix.rstrip("/")
        self.token = token
        self.base_url = ""
        self._server: NarrationServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        self._client: JobClient | None = None
        self._streams: set[HarnessStream] = set()

    @classmethod
    async def start(
        cls,
        jobs: JobRegistry | None = None,
        *,
        app: ASGIApp | None = None,
        prefix: str = "",
        token: str | None = None,
        **server_options: Any,
    ) -> NarrationTestHarness:
        """A started harness (call `await harness.stop()` when done, or use `async with`)."""
        harness = cls(jobs, app=app, prefix=prefix, token=token, **server_options)
        await harness._start()
        return harness

    async def _start(self) -> None:
        self._server = make_server(self.app, "127.0.0.1", 0)
        self._task = await self._server.start()
        self.base_url = f"http://127.0.0.1:{self._server.port}{self.prefix}"
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=10.0, headers=headers)
        self._client = JobClient(self.base_url, http_client=self._http)

    async def __aenter__(self) -> NarrationTestHarness:
        await self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def http(self) -> httpx.AsyncClient:
        """An httpx client bound to the server's base URL."""
        assert self._http is not None, "the harness is not started"
        return self._http

    @property
    def client(self) -> JobClient:
        """A `JobClient` for the server."""
        assert self._client is not None, "the harness is not started"
        return self._client

    async def submit_job(
        self,
        operation: str | BaseModel | Mapping[str, Any],
        fields: BaseModel | Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> str:
        """POST the operation over HTTP (as `JobClient.submit` takes it); the new job's id."""
        body = operation_body(operation, fields)
        headers = {CORRELATION_HEADER: correlation_id} if correlation_id else {}
        response = await self.http.post("/v1/jobs", json=body, headers=headers)
        if response.status_code != 201:
            raise AssertionError(f"submit failed: {response.status_code} {response.text}")
        job_id: str = response.json()["job_id"]
        return job_id

    def job_context(self, job_id: str) -> NarrationContext:
        """The context of a live job, to narrate into it: `with narration_context(ctx): ...`."""
        job = self.state.jobs.live.get(job_id)
        if job is None:
            raise KeyError(f"{job_id} is not a live job of this harness")
        return job.context

    async def complete_job(self, job_id: str) -> None:
        """End the job as completed: its stream gets `done`."""
        await self.state.jobs.complete(job_id)

    async def fail_job(self, job_id: str, message: str) -> None:
        """End the job as failed with `message`: its stream gets `error`."""
        await self.state.jobs.fail(job_id, message)

    def get_sse_stream(self, job_id: str, after: int | None = None) -> HarnessStream:
        """The job's stream over a real SSE connection (opened on the first `next_event`)."""
        stream = HarnessStream(self.client, job_id, after, on_end=self._streams.discard)
        self._streams.add(stream)
        return stream

    async def stop(self) -> None:
        """Close every stream and client this harness opened, then stop the server."""
        for stream in list(self._streams):
            await stream.close()
        self._streams.clear()
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
            self._server, self._task = None, None
