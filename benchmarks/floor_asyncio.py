"""The lowest floor for the stream benchmarks: a raw asyncio Protocol, one write per event.

No HTTP library and no ASGI: it reads a request's head, answers `GET /v1/jobs/{id}/stream`
with a chunked `text/event-stream` response, and `emit` writes each event's frame (one chunk)
straight to the transport of every subscriber of its job; anything else gets 404. It speaks
narration's wire format (`floor_uvicorn.event_frame`), so the same clients read it. This is
what one loopback write per event per stream costs in Python, beside bare uvicorn
(`floor_uvicorn.py`), narration and sse-starlette (`bench_stream --latency N --floor`). The
`/bench/*` control routes stay on a FastAPI app on the process's main port
(`_stream_server --impl raw`); this server listens on a port of its own, which
`/bench/stats` reports as `stream_port`.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from .floor_uvicorn import FloorJob, done_frame, event_frame

__all__ = ["RawFloor"]

_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-store\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
)
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_MAX_HEAD = 16 * 1024


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@dataclass(eq=False)
class _RawJob(FloorJob):
    transports: list[asyncio.Transport] = field(default_factory=list)


class _StreamProtocol(asyncio.Protocol):
    """One connection: its request head, then, for a known job, its subscription."""

    def __init__(self, floor: RawFloor) -> None:
        self.floor = floor
        self.head = b""
        self.transport: asyncio.Transport | None = None
        self.job: _RawJob | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        if self.job is not None or transport is None:
            return  # nothing is read after the head
        self.head += data
        if b"\r\n\r\n" not in self.head:
            if len(self.head) > _MAX_HEAD:
                transport.close()
            return
        parts = self.head.split(b"\r\n", 1)[0].split(b" ")
        path = parts[1].decode("latin-1") if len(parts) > 1 else ""
        job = self.floor.jobs.get(path.split("/")[-2]) if path.endswith("/stream") else None
        if job is None:
            transport.write(_NOT_FOUND)
            transport.close()
            return
        self.job = job
        transport.write(_HEAD + _chunk(b"retry: 2000\n\n"))
        job.transports.append(transport)
        self.floor.open_streams += 1

    def connection_lost(self, exc: Exception | None) -> None:
        job, transport = self.job, self.transport
        if job is not None and transport is not None and transport in job.transports:
            job.transports.remove(transport)
            self.floor.open_streams -= 1


class RawFloor:
    """Jobs and their subscribed transports; `start` listens for streams."""

    def __init__(self) -> None:
        self.jobs: dict[str, _RawJob] = {}
        self.open_streams = 0
        self.port = 0

    async def start(self, host: str) -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _StreamProtocol(self), host, 0, backlog=4096)
        self.port = server.sockets[0].getsockname()[1]

    def create_job(self) -> _RawJob:
        job = _RawJob("job-" + str(uuid.uuid4()))
        self.jobs[job.job_id] = job
        return job

    def emit(self, job: FloorJob, action: str, human: str, **fields: Any) -> None:
        chunk = _chunk(event_frame(job, action, human, fields))
        for transport in job.transports:  # type: ignore[attr-defined]
            transport.write(chunk)

    def finish(self, job: FloorJob) -> None:
        end = _chunk(done_frame(job)) + b"0\r\n\r\n"
        for transport in list(job.transports):  # type: ignore[attr-defined]
            transport.write(end)
            transport.close()
