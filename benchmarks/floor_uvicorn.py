"""A floor for the stream benchmarks: bare uvicorn, one raw ASGI task per stream, nothing else.

Not a server anyone would ship: no history, no resume, no limits, no auth, no middleware. It
is here to show what uvicorn itself costs per event at low rates, beside narration and the
sse-starlette reference (`bench_stream --latency`, docs/PERFORMANCE.md). It speaks narration's
wire format (the same event JSON and frames, `done` as the terminal), so the same clients
read it. Each event is encoded once (msgspec) and its frame appended to every subscriber's
list; each subscriber's task is woken by a future, joins what is there and sends it.
`/bench/*` control routes go to a FastAPI app beside it (`_stream_server`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["FloorApp", "FloorJob", "done_frame", "event_frame"]

_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-store")]
_encode = msgspec.json.encode


@dataclass(eq=False)
class _Subscriber:
    frames: list[bytes] = field(default_factory=list)
    waiter: asyncio.Future[None] | None = None
    done: bool = False


@dataclass(eq=False)
class FloorJob:
    """A job: its id, its event counter, its subscribers."""

    job_id: str
    seq: int = 0
    subscribers: list[_Subscriber] = field(default_factory=list)


def event_frame(job: FloorJob, action: str, human: str, fields: dict[str, Any]) -> bytes:
    """The next event of `job` as narration's SSE frame (its id the job's next)."""
    job.seq += 1
    data = _encode(
        {
            "id": job.seq,
            "ts": time.time(),
            "level": "info",
            "actor": "benchmarks",
            "action": action,
            "human": human,
            "job_id": job.job_id,
            "fields": fields,
        }
    )
    return b"id: %d\nevent: narration\ndata: %s\n\n" % (job.seq, data)


def done_frame(job: FloorJob) -> bytes:
    """`job`'s `done` terminal frame (its id the job's next)."""
    job.seq += 1
    data = b'{"job_id":"%s","state":"completed","error":null}' % job.job_id.encode()
    return b"id: %d\nevent: done\ndata: %s\n\n" % (job.seq, data)


class FloorApp:
    """ASGI: `GET /v1/jobs/{id}/stream` answered here, anything else by `app`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.jobs: dict[str, FloorJob] = {}
        self.open_streams = 0

    def create_job(self) -> FloorJob:
        job = FloorJob("job-" + str(uuid.uuid4()))
        self.jobs[job.job_id] = job
        return job

    def emit(self, job: FloorJob, action: str, human: str, **fields: Any) -> None:
        self._publish(job, event_frame(job, action, human, fields), False)

    def finish(self, job: FloorJob) -> None:
        self._publish(job, done_frame(job), True)

    def _publish(self, job: FloorJob, frame: bytes, last: bool) -> None:
        for sub in job.subscribers:
            sub.frames.append(frame)
            sub.done = sub.done or last
            waiter = sub.waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.endswith("/stream"):
            await self.app(scope, receive, send)
            return
        job = self.jobs.get(path.split("/")[-2])
        if job is None:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        sub = _Subscriber()
        job.subscribers.append(sub)
        self.open_streams += 1
        loop = asyncio.get_running_loop()
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
            await send(
                {"type": "http.response.body", "body": b"retry: 2000\n\n", "more_body": True}
            )
            while True:
                if not sub.frames:
                    sub.waiter = loop.create_future()
                    await sub.waiter
                    sub.waiter = None
                body, sub.frames = b"".join(sub.frames), []
                if sub.done:
                    await send({"type": "http.response.body", "body": body})
                    return
                await send({"type": "http.response.body", "body": body, "more_body": True})
        finally:
            job.subscribers.remove(sub)
            self.open_streams -= 1
