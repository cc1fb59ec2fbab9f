"""The peer a user would build instead: FastAPI + sse-starlette, one bounded queue per subscriber.

This is what a typical "live job events over SSE" service looks like when written by hand
with the popular library (and orjson, for speed): each job keeps a set of subscriber queues;
`emit()` builds the event dict and `publish()` puts it into every subscriber's bounded
`asyncio.Queue` (awaiting when one is full, so no event is lost: the producer is slowed down
to the slowest subscriber instead); each subscriber's `EventSourceResponse` generator takes
events off its queue and yields them as dicts, so the event is JSON-encoded once per
subscriber and sse-starlette sends one ASGI message (one socket write) per event.

It speaks the same wire format as narration (same event JSON, `event: narration` with ids,
`done` as the terminal), so the same clients read both. It keeps no history: a subscriber only
sees events published after it subscribed (narration also replays, resumes and bounds memory;
the reference does none of that, so it does strictly less work per event).

Kept in benchmarks/, not in the package: it exists to be measured against.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import FastAPI, HTTPException, Request
from sse_starlette import EventSourceResponse

__all__ = ["QUEUE_SIZE", "RefJob", "RefServer", "create_reference_app"]

QUEUE_SIZE = 1024
_END = object()


@dataclass(eq=False)
class RefJob:
    """A job: its id, its event counter and the queues of its live subscribers."""

    job_id: str
    correlation_id: str
    seq: int = 0
    subscribers: set[asyncio.Queue[Any]] = field(default_factory=set)
    state: str = "running"


class RefServer:
    """The jobs of one reference server, and the emit/publish functions a handler would call."""

    def __init__(self, queue_size: int = QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self.jobs: dict[str, RefJob] = {}

    @property
    def open_streams(self) -> int:
        return sum(len(job.subscribers) for job in self.jobs.values())

    def create_job(self, correlation_id: str | None = None) -> RefJob:
        job_id = f"job-{uuid.uuid4()}"
        job = RefJob(job_id, correlation_id or uuid.uuid4().hex)
        self.jobs[job_id] = job
        return job

    async def publish(self, job: RefJob, item: Any) -> None:
        """Hand `item` to every subscriber of `job` (waits while a queue is full)."""
        for queue in list(job.subscribers):
            await queue.put(item)

    async def emit(self, job: RefJob, action: str, human: str, **fields: Any) -> None:
        """The event a handler narrates: the same keys narration puts on the wire."""
        job.seq += 1
        event = {
            "id": job.seq,
            "ts": time.time(),
            "level": "info",
            "actor": "benchmarks",
            "action": action,
            "human": human,
            "job_id": job.job_id,
            "correlation_id": job.correlation_id,
            "fn_name": "benchmarks.reference_sse_starlette.emit",
            "fields": fields,
        }
        await self.publish(job, event)

    async def finish(self, job: RefJob, state: str = "completed") -> None:
        """End the job: every subscriber gets the terminal `done` after its last event."""
        job.state = state
        await self.publish(job, _END)

    async def events(self, job: RefJob, queue: asyncio.Queue[Any]) -> AsyncIterator[dict[str, Any]]:
        """A subscriber's SSE events, as sse-starlette wants them (dicts)."""
        try:
            while True:
                event = await queue.get()
                if event is _END:
                    terminal = {"job_id": job.job_id, "state": job.state, "error": None}
                    yield {
                        "event": "done",
                        "id": str(job.seq + 1),
                        "data": orjson.dumps(terminal).decode(),
                    }
                    return
                yield {
                    "event": "narration",
                    "id": str(event["id"]),
                    "data": orjson.dumps(event).decode(),
                }
        finally:
            job.subscribers.discard(queue)


def create_reference_app(server: RefServer | None = None) -> FastAPI:
    """A FastAPI app with `POST /v1/jobs` and `GET /v1/jobs/{job_id}/stream` (sse-starlette)."""
    ref = server or RefServer()
    app = FastAPI(title="reference: sse-starlette")
    app.state.ref = ref

    @app.post("/v1/jobs", status_code=201)
    async def submit(request: Request) -> dict[str, Any]:
        job = ref.create_job(request.headers.get("x-correlation-id"))
        return {"job_id": job.job_id, "sse_url": f"/v1/jobs/{job.job_id}/stream"}

    @app.get("/v1/jobs/{job_id}/stream")
    async def stream(job_id: str) -> EventSourceResponse:
        job = ref.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, "unknown job")
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=ref.queue_size)
        job.subscribers.add(queue)
        return EventSourceResponse(ref.events(job, queue))

    return app
