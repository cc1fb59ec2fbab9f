"""The job API routes: submit, list, get and cancel jobs, and the health check.

(The stream route is answered ahead of FastAPI's routing: see `stream_route`; the download
route is in `download`.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import JSONResponse, Response

from .. import __version__
from ..context import current_context
from ..ids import is_job_id, new_correlation_id, valid_correlation_id
from ..jobs import JobFinishedError, NotAcceptingError, OperationError, UnknownJobError
from ..jobs.registry import load_json
from ..protocol import CORRELATION_HEADER, PARENT_JOB_HEADER
from .download import add_download_route
from .errors import ApiError, checked_job_id, unknown_job
from .listing import list_page, parse_query
from .lookup import find_summary

if TYPE_CHECKING:
    from .app import ServerState

__all__ = ["HeldOperation", "add_job_routes", "read_body"]


class HeldOperation(BaseModel):
    """An operation the registry does not know, accepted by a test harness and held open."""

    model_config = ConfigDict(extra="allow", frozen=True)

    operation: str


def add_job_routes(app: FastAPI, server: ServerState) -> None:
    """Add `POST/GET /v1/jobs`, `GET/DELETE /v1/jobs/{id}`, `GET /v1/operations` and
    `GET /health` to `app`."""
    settings, jobs, store = server.settings, server.jobs, server.store

    @app.post("/v1/jobs", status_code=201, summary="Submit a job", operation_id="submit_job")
    async def submit_job(request: Request) -> Response:
        raw = await read_body(request, settings.max_body_bytes)
        operation = _parse_operation(server, raw)
        ctx = current_context()
        correlation_id = (
            ctx.correlation_id
            or valid_correlation_id(request.headers.get(CORRELATION_HEADER))
            or new_correlation_id()
        )
        parent = request.headers.get(PARENT_JOB_HEADER)
        try:
            job = await jobs.submit(
                operation,
                correlation_id=correlation_id,
                parent_job_id=parent if parent and is_job_id(parent) else None,
                trace_id=ctx.trace_id,
                span_id=ctx.span_id,
            )
        except NotAcceptingError as exc:
            raise ApiError(503, "unavailable", str(exc), {"Retry-After": "1"}) from None
        job_id = job.job_id
        root = request.scope.get("root_path", "").rstrip("/")
        body_out = {
            "job_id": job_id,
            "sse_url": f"{root}/v1/jobs/{job_id}/stream",
            "correlation_id": correlation_id,
            "state": job.record.state,
        }
        headers = {"Location": f"{root}/v1/jobs/{job_id}", CORRELATION_HEADER: correlation_id}
        return JSONResponse(body_out, status_code=201, headers=headers)

    @app.get("/v1/jobs", summary="List jobs, newest first", operation_id="list_jobs")
    async def list_jobs(
        request: Request,
        state: str | None = None,
        limit: int = 100,
        correlation_id: str | None = None,
        operation: str | None = None,
        since: str | None = None,
        until: str | None = None,
        cursor: str | None = None,
    ) -> Response:
        """Live and archived jobs, newest first. Filters: `state`, `correlation_id`,
        `operation`, `since`/`until` (creation time: Unix seconds or ISO 8601). The next
        page's cursor is in `X-Next-Cursor` (and `Link: rel="next"`)."""
        query = parse_query(state, limit, correlation_id, operation, since, until, cursor)
        summaries, next_cursor = await list_page(server, query)
        headers: dict[str, str] = {}
        if next_cursor is not None:
            params = {k: v for k, v in request.query_params.items() if k != "cursor"}
            link = f"{request.url.path}?{urlencode({**params, 'cursor': next_cursor})}"
            headers = {"X-Next-Cursor": next_cursor, "Link": f'<{link}>; rel="next"'}
        return JSONResponse(summaries, headers=headers)

    @app.get("/v1/jobs/{job_id}", summary="A job's state", operation_id="get_job")
    async def get_job(job_id: str) -> Response:
        summary = await find_summary(server, checked_job_id(job_id))
        if summary is None:
            raise unknown_job(job_id)
        return JSONResponse(summary)

    @app.delete("/v1/jobs/{job_id}", summary="Cancel a job", operation_id="cancel_job")
    async def cancel_job(job_id: str) -> Response:
        try:
            record = await jobs.cancel(checked_job_id(job_id))
        except UnknownJobError:
            raise unknown_job(job_id) from None
        except JobFinishedError as exc:
            raise ApiError(409, "job_finished", str(exc)) from None
        return JSONResponse({"job_id": record.job_id, "state": record.state})

    @app.get("/v1/operations", summary="The operations this server runs")
    async def list_operations() -> Response:
        listing: dict[str, Any] = {}
        for spec in server.registry:
            entry = {"summary": spec.summary, "schema": spec.model.model_json_schema()}
            if spec.retry is not None:
                entry["retry"] = spec.retry.describe()
            listing[spec.name] = entry
        return JSONResponse(listing)

    add_download_route(app, server)

    @app.get("/health", summary="Health check")
    async def health() -> Response:
        archiver = server.archiver
        troubles = [store.trouble(), archiver.trouble() if archiver is not None else None]
        trouble = "; ".join(t for t in troubles if t)
        status = "shutting_down" if not jobs.accepting else "degraded" if trouble else "ok"
        return JSONResponse(
            {
                "status": status,
                **({"why": trouble} if trouble else {}),
                "jobs_running": jobs.running,
                "version": __version__,
                "streams_open": server.streams.open,
                **store.health(),
                **(archiver.health() if archiver is not None else {}),
            }
        )


def _parse_operation(server: ServerState, raw: bytes) -> BaseModel:
    """The request body as a registered operation: 400 `invalid_json`, 422 `unknown_operation`
    or `invalid_fields` (the messages list the valid operations / every bad field)."""
    try:
        data = load_json(raw)
        name = data.get("operation") if isinstance(data, dict) else None
        if server.hold_unknown and isinstance(name, str) and name not in server.registry:
            return HeldOperation.model_validate(data)
        return server.registry.parse(raw)
    except OperationError as exc:
        status = 400 if exc.code == "invalid_json" else 422
        raise ApiError(status, exc.code, str(exc)) from None


async def read_body(request: Request, limit: int) -> bytes:
    """The request's JSON body bytes: 415 if not JSON, 413 if over `limit` bytes."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", "send the operation as application/json")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "body_too_large", f"body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", f"body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
