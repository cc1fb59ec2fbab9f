"""`GET /v1/jobs/{job_id}/events`: a job's events as NDJSON (narration.frames), live or archived.

The body is streamed a batch at a time from the job's log (never the whole job in memory), and
gzipped when the request accepts it. The same filters as the stream apply (`level`, `actor`,
`action`, `q`), and `after` skips ids up to it. For a job still running it is what the log
holds now (no terminal line yet); an archived, unfiltered whole job is sent as stored.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from typing import IO, TYPE_CHECKING

from fastapi import FastAPI, Request
from starlette.responses import Response, StreamingResponse

from ..archive import ArchivedEventLog
from ..filters import EventFilter
from ..frames import frame_to_line, parse_frame, split_frames
from ..store.base import EventLog
from .auth import Reader, visible
from .errors import ApiError, checked_job_id, unknown_job
from .lookup import find_log, find_record

if TYPE_CHECKING:
    from .app import ServerState

__all__ = ["NDJSON", "accepts_gzip", "add_download_route"]

NDJSON = "application/x-ndjson"
_FILE_CHUNK = 64 * 1024
_THREAD_COMPRESS = 64 * 1024  # bigger chunks are compressed in a worker thread


def add_download_route(app: FastAPI, server: ServerState) -> None:
    """Add `GET /v1/jobs/{job_id}/events` to `app`."""

    @app.get(
        "/v1/jobs/{job_id}/events",
        summary="Download a job's events (NDJSON)",
        operation_id="download_job_events",
        response_class=StreamingResponse,
        responses={200: {"content": {NDJSON: {}}, "description": "one JSON value per line"}},
    )
    async def download_events(
        request: Request, job_id: str, principal: Reader, after: int = 0
    ) -> Response:
        """Every event of the job as one JSON line each (gaps and the terminal as lines with
        an `event` key), gzipped on `Accept-Encoding: gzip`. Filters: `level` (at least),
        `actor`, `action` (repeated or comma-separated), `q` (text contains)."""
        record = await find_record(server, checked_job_id(job_id))
        if record is None or not visible(principal, record):
            raise unknown_job(job_id)
        log = await find_log(server, job_id)
        if log is None:
            raise unknown_job(job_id)
        if after < 0:
            raise ApiError(400, "invalid_cursor", "after must be >= 0")
        try:
            wanted = EventFilter.from_query(request.query_params.getlist)
        except ValueError as exc:
            raise ApiError(400, "invalid_filter", str(exc)) from None
        headers = {
            "Content-Disposition": f'attachment; filename="{job_id}.ndjson"',
            "Cache-Control": "no-store",
            "Vary": "Accept-Encoding",
        }
        zipped = accepts_gzip(request.headers.get("accept-encoding", ""))
        if zipped:
            headers["Content-Encoding"] = "gzip"
        if zipped and wanted is None and after == 0 and isinstance(log, ArchivedEventLog):
            stored = await asyncio.to_thread(log.archived_file)
            if stored is not None:
                return StreamingResponse(_file_chunks(stored), media_type=NDJSON, headers=headers)
        body = _ndjson(log, after, wanted)
        if zipped:
            body = _gzip(body)
        return StreamingResponse(body, media_type=NDJSON, headers=headers)


def accepts_gzip(header: str) -> bool:
    """True when an `Accept-Encoding` value accepts gzip (not `gzip;q=0`)."""
    for item in header.lower().split(","):
        name, _, params = item.strip().partition(";")
        if name.strip() in ("gzip", "*"):
            quality = params.strip().removeprefix("q=")
            return not (params and quality.replace(".", "").strip("0") == "")
    return False


async def _ndjson(log: EventLog, after: int, wanted: EventFilter | None) -> AsyncIterator[bytes]:
    """The log's lines after `after`, a read batch at a time, until its terminal (or, for a
    running job, until what it holds now)."""
    cursor = after
    try:
        while True:
            result = await log.read(cursor, 0.0)
            frames = wanted.apply(result.frames) if wanted else list(split_frames(result.frames))
            lines = [frame_to_line(frame) for raw in frames if (frame := parse_frame(raw))]
            if lines:
                yield b"".join(lines)
            if result.done or result.cursor == cursor:
                return
            cursor = result.cursor
    finally:
        if isinstance(log, ArchivedEventLog):
            log.close()


async def _gzip(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: the gzip format
    async for chunk in body:
        if len(chunk) >= _THREAD_COMPRESS:
            data = await asyncio.to_thread(compressor.compress, chunk)
        else:
            data = compressor.compress(chunk)
        if data:
            yield data
    yield compressor.flush()


async def _file_chunks(stored: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(stored.read, _FILE_CHUNK):
            yield chunk
    finally:
        stored.close()
