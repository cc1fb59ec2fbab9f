"""JobClient against a small scripted SSE server (Starlette on a real uvicorn, 127.0.0.1:0).

The fake server serves one job's stream from a script of SSE frames; each connection can be
told to drop after some frames (cleanly, or by aborting the connection), and every request's
resume headers are recorded so the tests can check what the client asked for.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from narration._backoff import Backoff
from narration.client import (
    Gap,
    JobClient,
    JobClientError,
    StreamItem,
    Submitted,
    Terminal,
    backoff_delay,
)
from narration.events import Level, NarrationEvent, encode_event
from narration.operations import Operation

pytestmark = pytest.mark.unit

JOB = "job-5b0f3c1e-0d1f-4a7e-9a59-0b7d6a1c2e3f"
CORRELATION = "corr-123"


# --------------------------------------------------------------------------- frames


def event(i: int, human: str | None = None) -> NarrationEvent:
    return NarrationEvent(
        id=i,
        ts=1764103678.0 + i / 1000,
        level=Level.INFO,
        actor="queen",
        action="step",
        human=human if human is not None else f"step {i}",
        job_id=JOB,
        correlation_id=CORRELATION,
        fields={"n": i},
    )


@dataclass(frozen=True)
class Frame:
    """One SSE frame and the resume cursor it covers (a client past `cursor` skips it)."""

    cursor: int
    data: bytes


def narration_frame(item: NarrationEvent) -> Frame:
    return Frame(item.id, b"id: %d\nevent: narration\ndata: %s\n\n" % (item.id, encode_event(item)))


def gap_frame(missed: int, next_id: int) -> Frame:
    body = json.dumps({"missed": missed, "next_id": next_id}).encode()
    return Frame(next_id - 1, b"event: gap\ndata: %s\n\n" % body)


def terminal_frame(name: str, i: int, state: str, error: str | None = None) -> Frame:
    body = json.dumps({"job_id": JOB, "state": state, "error": error}).encode()
    return Frame(i, b"id: %d\nevent: %s\ndata: %s\n\n" % (i, name.encode(), body))


# --------------------------------------------------------------------------- fake server


@dataclass
class Connection:
    """How one stream connection behaves: drop after `frames` frames (None: send all)."""

    frames: int | None = None
    drop: Literal["close", "abort"] = "close"
    status: int | None = None  # answer this status (with a JSON error body) instead


class ScriptedDrop(Exception):
    """Raised inside the fake stream to abort the connection mid-body."""


@dataclass
class FakeJobServer:
    """The state and script of the fake job API; `app` serves it."""

    frames: list[Frame] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)
    status_body: dict[str, Any] = field(default_factory=dict)
    stream_requests: list[tuple[str | None, str | None]] = field(default_factory=list)
    posts: list[tuple[dict[str, Any], str | None]] = field(default_factory=list)
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    jobs_in_an_object: bool = False  # answer GET /v1/jobs with {"jobs": [...]}, not a list

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/jobs", self.create, methods=["POST"]),
                Route("/v1/jobs", self.list_jobs, methods=["GET"]),
                Route("/v1/jobs/{job_id}", self.get_job, methods=["GET"]),
                Route("/v1/jobs/{job_id}", self.cancel_job, methods=["DELETE"]),
                Route("/v1/jobs/{job_id}/stream", self.stream, methods=["GET"]),
                Route("/broken", self.broken, methods=["GET"]),
            ]
        )

    def _log(self, request: Request) -> None:
        self.requests.append(
            (request.method, request.url.path, request.headers.get("x-correlation-id", ""))
        )

    @staticmethod
    def unknown(job_id: str) -> JSONResponse:
        error = {"code": "unknown_job", "message": f"no job {job_id!r}"}
        return JSONResponse({"error": error}, status_code=404)

    async def create(self, request: Request) -> Response:
        self._log(request)
        body = await request.json()
        self.posts.append((body, request.headers.get("x-correlation-id")))
        if body.get("operation") == "nope":
            error = {"code": "unknown_operation", "message": "unknown operation 'nope'"}
            return JSONResponse({"error": error}, status_code=422)
        answer = {
            "job_id": JOB,
            "sse_url": f"/v1/jobs/{JOB}/stream",
            "correlation_id": request.headers.get("x-correlation-id", "generated-1"),
            "state": "running",
        }
        return JSONResponse(answer, status_code=201, headers={"Location": f"/v1/jobs/{JOB}"})

    async def list_jobs(self, request: Request) -> Response:
        self._log(request)
        query = dict(request.query_params)
        jobs = [{"job_id": JOB, "state": "running", "query": query}]
        return JSONResponse({"jobs": jobs} if self.jobs_in_an_object else jobs)

    async def get_job(self, request: Request) -> Response:
        self._log(request)
        job_id = request.path_params["job_id"]
        if job_id != JOB:
            return self.unknown(job_id)
        return JSONResponse(self.status_body)

    async def cancel_job(self, request: Request) -> Response:
        self._log(request)
        error = {"code": "job_finished", "message": f"job {JOB} already finished"}
        return JSONResponse({"error": error}, status_code=409)

    async def broken(self, request: Request) -> Response:
        return PlainTextResponse("upstream exploded", status_code=500)

    async def stream(self, request: Request) -> Response:
        self._log(request)
        job_id = request.path_params["job_id"]
        last_event_id = request.headers.get("last-event-id")
        self.stream_requests.append((last_event_id, request.headers.get("accept")))
        if job_id != JOB:
            return self.unknown(job_id)
        index = len(self.stream_requests) - 1
        plan = self.connections[index] if index < len(self.connections) else Connection()
        if plan.status is not None:
            error = {"code": "busy", "message": "try again"}
            return JSONResponse({"error": error}, status_code=plan.status)
        cursor = int(last_event_id) if last_event_id is not None else 0
        if self.frames and cursor >= self.frames[-1].cursor:
            return Response(status_code=204)
        pending = [frame.data for frame in self.frames if frame.cursor > cursor]
        if plan.frames is not None:
            pending = pending[: plan.frames]

        async def body() -> AsyncIterator[bytes]:
            yield b"retry: 2000\n\n"
            for data in pending:
                yield data
            if plan.frames is not None and plan.drop == "abort":
                raise ScriptedDrop("connection aborted by the script")

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


@dataclass
class Running:
    fake: FakeJobServer
    base_url: str


async def serve(app: Starlette) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):  # start-up only: bounded poll
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, task, f"http://127.0.0.1:{port}"


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    fake = FakeJobServer()
    server, task, base_url = await serve(fake.app())
    try:
        yield Running(fake, base_url)
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A 127.0.0.1 URL whose port is bound but not listening: connections are refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


async def collect(client: JobClient, job_id: str = JOB, after: int | None = None) -> list[Any]:
    return [item async for item in client.stream(job_id, after=after)]


async def collect_into(seen: list[StreamItem], stream: AsyncIterator[StreamItem]) -> None:
    async for item in stream:
        seen.append(item)


# --------------------------------------------------------------------------- streaming


async def test_stream_yields_events_in_order_with_ids_then_terminal(running: Running) -> None:
    events = [event(i) for i in (1, 2, 3)]
    running.fake.frames = [*map(narration_frame, events), terminal_frame("done", 4, "completed")]
    async with JobClient(running.base_url, correlation_id=CORRELATION) as client:
        items = await collect(client)
    assert items == [*events, Terminal(job_id=JOB, state="completed", error=None, id=4)]
    assert [item.id for item in items] == [1, 2, 3, 4]
    assert running.fake.stream_requests == [(None, "text/event-stream")]
    assert running.fake.requests == [("GET", f"/v1/jobs/{JOB}/stream", CORRELATION)]


async def test_terminal_is_decided_by_event_name_not_data(running: Running) -> None:
    tricky = [event(1, "done"), event(2, '{"state": "failed"} error cancelled')]
    fake_terminal = Frame(2, b'data: {"job_id": "x", "state": "completed"}\n\n')  # a `message`
    unknown = Frame(2, b'event: progress\ndata: {"state": "completed"}\n\n')
    running.fake.frames = [
        *map(narration_frame, tricky),
        fake_terminal,
        unknown,
        terminal_frame("cancelled", 3, "completed", error="cancelled by user"),
    ]
    async with JobClient(running.base_url) as client:
        items = await collect(client)
    assert items == [*tricky, Terminal(JOB, "cancelled", "cancelled by user", 3)]


@pytest.mark.parametrize(
    ("name", "state"), [("done", "completed"), ("error", "failed"), ("cancelled", "cancelled")]
)
async def test_each_terminal_name_maps_to_its_state(
    running: Running, name: str, state: str
) -> None:
    error = None if name == "done" else "boom"
    running.fake.frames = [narration_frame(event(1)), terminal_frame(name, 2, state, error)]
    async with JobClient(running.base_url) as client:
        items = await collect(client)
    assert items == [event(1), Terminal(JOB, state, error, 2)]
    assert items[-1].ok is (state == "completed")


async def test_gap_is_yielded_as_gap(running: Running) -> None:
    running.fake.frames = [
        narration_frame(event(1)),
        gap_frame(missed=5, next_id=7),
        narration_frame(event(7)),
        terminal_frame("done", 8, "completed"),
    ]
    async with JobClient(running.base_url) as client:
        items = await collect(client)
    assert items == [
        event(1),
        Gap(missed=5, next_id=7),
        event(7),
        Terminal(JOB, "completed", None, 8),
    ]


@pytest.mark.parametrize("drop", ["close", "abort"])
async def test_reconnects_with_last_event_id_without_loss_or_duplicates(
    running: Running, drop: Literal["close", "abort"]
) -> None:
    events = [event(i) for i in range(1, 7)]
    running.fake.frames = [*map(narration_frame, events), terminal_frame("error", 7, "failed", "x")]
    running.fake.connections = [Connection(frames=3, drop=drop), Connection()]
    async with JobClient(running.base_url) as client:
        items = await collect(client)
    assert items == [*events, Terminal(JOB, "failed", "x", 7)]
    assert running.fake.stream_requests == [(None, "text/event-stream"), ("3", "text/event-stream")]


async def test_reconnects_repeatedly_and_resumes_after_a_gap(running: Running) -> None:
    running.fake.frames = [
        narration_frame(event(1)),
        gap_frame(missed=3, next_id=5),
        narration_frame(event(5)),
        narration_frame(event(6)),
        terminal_frame("done", 7, "completed"),
    ]
    running.fake.connections = [
        Connection(frames=2, drop="abort"),  # event 1 and the gap
        Connection(frames=0, drop="close"),  # nothing new: a reconnect that makes no progress
        Connection(frames=1, drop="abort"),  # event 5
        Connection(),
    ]
    async with JobClient(running.base_url, backoff_initial=0.001) as client:
        items = await collect(client)
    assert items == [
        event(1),
        Gap(missed=3, next_id=5),
        event(5),
        event(6),
        Terminal(JOB, "completed", None, 7),
    ]
    assert [last for last, _ in running.fake.stream_requests] == [None, "4", "4", "5"]


async def test_resume_answered_204_builds_terminal_from_status(running: Running) -> None:
    running.fake.frames = [
        narration_frame(event(1)),
        narration_frame(event(2)),
        terminal_frame("error", 3, "failed", "boom"),
    ]
    # a resume at the terminal's id: the server answers 204, the client asks for the status
    running.fake.status_body = {"job_id": JOB, "state": "failed", "error": "worker crashed"}
    async with JobClient(running.base_url) as client:
        items = await collect(client, after=3)
    assert items == [Terminal(JOB, "failed", "worker crashed", None)]
    assert running.fake.stream_requests == [("3", "text/event-stream")]
    assert [(method, path) for method, path, _ in running.fake.requests] == [
        ("GET", f"/v1/jobs/{JOB}/stream"),
        ("GET", f"/v1/jobs/{JOB}"),
    ]


async def test_reconnect_answered_204_ends_the_stream(running: Running) -> None:
    running.fake.frames = [narration_frame(event(1)), narration_frame(event(2))]
    # the stream's last frame is event 2: after it, a resume from 2 gets 204 (the terminal
    # was lost with the connection); the client then asks for the job's status
    running.fake.connections = [Connection(frames=2, drop="abort")]
    running.fake.status_body = {"job_id": JOB, "state": "completed", "error": None}
    async with JobClient(running.base_url) as client:
        items = await collect(client)
    assert items == [event(1), event(2), Terminal(JOB, "completed", None, None)]
    assert running.fake.stream_requests == [(None, "text/event-stream"), ("2", "text/event-stream")]


async def test_stream_retries_a_503_then_continues(running: Running) -> None:
    running.fake.frames = [narration_frame(event(1)), terminal_frame("done", 2, "completed")]
    running.fake.connections = [Connection(status=503), Connection()]
    async with JobClient(running.base_url, backoff_initial=0.001) as client:
        items = await collect(client)
    assert items == [event(1), Terminal(JOB, "completed", None, 2)]
    assert len(running.fake.stream_requests) == 2


async def test_stream_gives_up_after_max_retries(running: Running) -> None:
    running.fake.frames = [narration_frame(event(1)), terminal_frame("done", 2, "completed")]
    running.fake.connections = [
        Connection(frames=1),
        Connection(frames=0),
        Connection(frames=0),
    ]
    seen: list[StreamItem] = []
    async with JobClient(running.base_url, max_retries=2, backoff_initial=0.001) as client:
        with pytest.raises(JobClientError) as caught:
            await collect_into(seen, client.stream(JOB))
    assert seen == [event(1)]
    assert (caught.value.status_code, caught.value.code) == (None, "stream_interrupted")
    assert caught.value.message == (
        f"the stream ended before its terminal; gave up on job {JOB} after 2 reconnects (last id 1)"
    )
    assert [last for last, _ in running.fake.stream_requests] == [None, "1", "1"]


async def test_stream_of_unknown_job_raises_404_without_retrying(running: Running) -> None:
    async with JobClient(running.base_url) as client:
        with pytest.raises(JobClientError) as caught:
            await collect(client, "job-missing")
    assert (caught.value.status_code, caught.value.code, caught.value.message) == (
        404,
        "unknown_job",
        "no job 'job-missing'",
    )
    assert str(caught.value) == "HTTP 404 unknown_job: no job 'job-missing'"
    assert len(running.fake.stream_requests) == 1


def test_backoff_doubles_from_a_tenth_and_caps_at_two_seconds() -> None:
    assert [backoff_delay(n) for n in range(1, 8)] == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]


def test_backoff_counts_failures_until_a_reset() -> None:
    backoff = Backoff(initial=0.05, cap=1.0)
    assert [backoff.next_delay() for _ in range(7)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert backoff.attempts == 7
    backoff.reset()
    assert (backoff.next_delay(), backoff.attempts) == (0.05, 1)


# --------------------------------------------------------------------------- failover


async def test_fails_over_to_the_next_base_url(running: Running, refused_url: str) -> None:
    running.fake.frames = [narration_frame(event(1)), terminal_frame("done", 2, "completed")]
    async with JobClient([refused_url, running.base_url], correlation_id=CORRELATION) as c:
        assert c.base_url == refused_url
        submitted = await c.submit(Operation.hive_list())
        assert c.base_url == running.base_url
        items = await collect(c, submitted.job_id)
    assert submitted.job_id == JOB
    assert items == [event(1), Terminal(JOB, "completed", None, 2)]
    assert running.fake.posts == [({"operation": "hive_list"}, CORRELATION)]


async def test_stream_fails_over_too(running: Running, refused_url: str) -> None:
    running.fake.frames = [narration_frame(event(1)), terminal_frame("done", 2, "completed")]
    async with JobClient([refused_url, running.base_url]) as client:
        items = await collect(client)
    assert items == [event(1), Terminal(JOB, "completed", None, 2)]
    assert len(running.fake.stream_requests) == 1


async def test_every_url_refusing_raises_connection_failed(refused_url: str) -> None:
    async with JobClient([refused_url, refused_url + "/"]) as client:
        with pytest.raises(JobClientError) as caught:
            await client.status(JOB)
    assert (caught.value.status_code, caught.value.code) == (None, "connection_failed")
    assert caught.value.message.startswith(f"could not connect to {refused_url} (")
    assert caught.value.message.count(refused_url) == 2


# --------------------------------------------------------------------------- requests


async def test_submit_returns_submitted_and_sends_correlation_id(running: Running) -> None:
    op = Operation.infer("gpu-box", "llama", "Hi", max_tokens=8)
    async with JobClient(running.base_url, correlation_id=CORRELATION) as client:
        submitted = await client.submit(op)
        from_dict = await client.submit({"operation": "status"})
    assert submitted == Submitted(
        job_id=JOB,
        sse_url=f"{running.base_url}/v1/jobs/{JOB}/stream",
        correlation_id=CORRELATION,
        state="running",
    )
    assert from_dict == submitted
    assert running.fake.posts == [
        (op.to_dict(), CORRELATION),
        ({"operation": "status"}, CORRELATION),
    ]


async def test_submit_without_correlation_id_sends_none(running: Running) -> None:
    async with JobClient(running.base_url, headers={"X-Extra": "1"}) as client:
        submitted = await client.submit(Operation.status())
    assert submitted.correlation_id == "generated-1"
    assert running.fake.posts == [({"operation": "status"}, None)]


async def test_submit_error_carries_the_servers_code_and_message(running: Running) -> None:
    async with JobClient(running.base_url) as client:
        with pytest.raises(JobClientError) as caught:
            await client.submit({"operation": "nope"})
    assert (caught.value.status_code, caught.value.code, caught.value.message) == (
        422,
        "unknown_operation",
        "unknown operation 'nope'",
    )


async def test_status_cancel_and_list_jobs(running: Running) -> None:
    running.fake.status_body = {"job_id": JOB, "state": "running", "events": 3}
    async with JobClient(running.base_url, correlation_id=CORRELATION) as client:
        assert await client.status(JOB) == {"job_id": JOB, "state": "running", "events": 3}
        assert await client.list_jobs() == [{"job_id": JOB, "state": "running", "query": {}}]
        assert await client.list_jobs(state="running", limit=5) == [
            {"job_id": JOB, "state": "running", "query": {"state": "running", "limit": "5"}}
        ]
        with pytest.raises(JobClientError) as caught:
            await client.cancel(JOB)
        with pytest.raises(JobClientError) as missing:
            await client.status("job-missing")
    assert (caught.value.status_code, caught.value.code, caught.value.message) == (
        409,
        "job_finished",
        f"job {JOB} already finished",
    )
    assert (missing.value.status_code, missing.value.code, missing.value.message) == (
        404,
        "unknown_job",
        "no job 'job-missing'",
    )
    assert running.fake.requests == [
        ("GET", f"/v1/jobs/{JOB}", CORRELATION),
        ("GET", "/v1/jobs", CORRELATION),
        ("GET", "/v1/jobs", CORRELATION),
        ("DELETE", f"/v1/jobs/{JOB}", CORRELATION),
        ("GET", "/v1/jobs/job-missing", CORRELATION),
    ]


async def test_list_jobs_takes_only_the_list_the_server_sends(running: Running) -> None:
    running.fake.jobs_in_an_object = True
    async with JobClient(running.base_url) as client:
        with pytest.raises(JobClientError) as caught:
            await client.list_jobs()
    assert (caught.value.status_code, caught.value.code, caught.value.message) == (
        200,
        "invalid_response",
        "expected a list of jobs",
    )


async def test_non_json_error_body_becomes_http_code(running: Running) -> None:
    async with JobClient(running.base_url) as client:
        with pytest.raises(JobClientError) as caught:
            await client._request("GET", "/broken")
    assert (caught.value.status_code, caught.value.code, caught.value.message) == (
        500,
        "http_500",
        "upstream exploded",
    )


async def test_run_submits_and_collects(running: Running) -> None:
    running.fake.frames = [
        narration_frame(event(1)),
        gap_frame(missed=1, next_id=4),
        narration_frame(event(4)),
        terminal_frame("done", 5, "completed"),
    ]
    async with JobClient(running.base_url) as client:
        collected, terminal = await client.run(Operation.hive_check())
    assert collected == [event(1), event(4)]
    assert terminal == Terminal(JOB, "completed", None, 5)
    assert running.fake.posts == [({"operation": "hive_check", "alias": "localhost"}, None)]


async def test_injected_http_client_is_used_and_left_open(running: Running) -> None:
    running.fake.status_body = {"job_id": JOB, "state": "queued"}
    async with httpx.AsyncClient() as http:
        async with JobClient(running.base_url, http_client=http) as client:
            assert await client.status(JOB) == {"job_id": JOB, "state": "queued"}
        assert not http.is_closed
        assert (await http.get(f"{running.base_url}/v1/jobs/{JOB}")).status_code == 200


async def test_owned_http_client_is_closed() -> None:
    client = JobClient("http://127.0.0.1:1")
    async with client:
        pass
    assert client._http.is_closed


def test_base_url_is_required() -> None:
    with pytest.raises(ValueError, match="base_url"):
        JobClient([])
