"""The job API routes: submit, list, get and cancel jobs, and the health check.

(The stream route is answered ahead of FastAPI's routing: see `stream_route`; the download
route is in `download`.) Every route but `/health` takes its principal from `require(scope)`; a
job of another tenant answers 404.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from fastapi import FastAPI, Query, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import JSONResponse, Response

from .. import __version__
from ..context import current_context
from ..ids import is_job_id, new_correlation_id, valid_correlation_id
from ..jobs import JobFinishedError, JobState, NotAcceptingError, OperationError, UnknownJobError
from ..jobs.bodies import load_json
from ..protocol import CORRELATION_HEADER, PARENT_JOB_HEADER
from ..store.base import JobRecord
from .auth import Canceller, Principal, Reader, Submitter, visible
from .download import add_download_route
from .errors import ApiError, checked_job_id, unknown_job
from .listing import list_page, parse_query
from .lookup import find_record, find_summary
from .tokens import TOKEN_PARAM

if TYPE_CHECKING:
    from .app import ServerState

__all__ = ["HeldOperation", "add_job_routes", "read_body", "stream_url"]


# What the query parameters take, for the OpenAPI document (the route checks them itself, with
# errors of its own: invalid_state, invalid_limit, invalid_correlation_id).
_STATES = [state.value for state in JobState]
_CORRELATION = {"pattern": "^[A-Za-z0-9._:-]{1,128}$"}
_TIME = {"description": "creation time, ISO 8601 or Unix seconds (an empty value: not given)"}


class HeldOperation(BaseModel):
    """An operation the registry does not know, accepted by a test harness and held open."""

    model_config = ConfigDict(extra="allow", frozen=True)

    operation: str


def add_job_routes(app: FastAPI, server: ServerState) -> None:
    """Add `POST/GET /v1/jobs`, `GET/DELETE /v1/jobs/{id}`, `GET /v1/operations` and
    `GET /health` to `app`."""
    settings, jobs, store = server.settings, server.jobs, server.store

    @app.post("/v1/jobs", status_code=201, summary="Submit a job", operation_id="submit_job")
    async def submit_job(request: Request, principal: Submitter) -> Response:
        raw = await read_body(request, settings.max_body_bytes)
        operation = _parse_operation(server, raw)
        await server.rate.check(principal.name)
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
                tenant=principal.tenant,
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
            "sse_url": stream_url(server, request, job_id),
            "correlation_id": correlation_id,
            "state": job.record.state,
        }
        headers = {"Location": f"{root}/v1/jobs/{job_id}", CORRELATION_HEADER: correlation_id}
        return JSONResponse(body_out, status_code=201, headers=headers)

    @app.get("/v1/jobs", summary="List jobs, newest first", operation_id="list_jobs")
    async def list_jobs(
        request: Request,
        state: Annotated[str | None, Query(json_schema_extra={"enum": _STATES})] = None,
        limit: Annotated[int, Query(json_schema_extra={"minimum": 1, "maximum": 1000})] = 100,
        correlation_id: Annotated[str | None, Query(json_schema_extra=_CORRELATION)] = None,
        operation: Annotated[str | None, Query(max_length=64)] = None,
        since: Annotated[str | None, Query(json_schema_extra=_TIME)] = None,
        until: Annotated[str | None, Query(json_schema_extra=_TIME)] = None,
        cursor: str | None = None,
        *,
        principal: Reader,
    ) -> Response:
        """Live and archived jobs of your tenant (all, for admin), newest first. Filters:
        `state`, `correlation_id`, `operation`, `since`/`until` (creation time: Unix seconds or
        ISO 8601). The next page's cursor is in `X-Next-Cursor` (and `Link: rel="next"`)."""
        query = parse_query(state, limit, correlation_id, operation, since, until, cursor)
        query = replace(query, tenant=None if principal.is_admin else principal.tenant or "")
        summaries, next_cursor = await list_page(server, query)
        headers: dict[str, str] = {}
        if next_cursor is not None:
            params = {k: v for k, v in request.query_params.items() if k != "cursor"}
            link = f"{request.url.path}?{urlencode({**params, 'cursor': next_cursor})}"
            headers = {"X-Next-Cursor": next_cursor, "Link": f'<{link}>; rel="next"'}
        return JSONResponse(summaries, headers=headers)

    async def visible_record(job_id: str, principal: Principal) -> JobRecord:
        """The job's record if `principal` may see it; 404 otherwise (unknown or not theirs)."""
        record = await find_record(server, checked_job_id(job_id))
        if record is None or not visible(principal, record):
            raise unknown_job(job_id)
        return record

    @app.get("/v1/jobs/{job_id}", summary="A job's state", operation_id="get_job")
    async def get_job(job_id: str, request: Request, principal: Reader) -> Response:
        summary = await find_summary(server, checked_job_id(job_id), principal)
        if summary is None:
            raise unknown_job(job_id)
        if server.auth.enabled:  # a fresh stream token, for a page opened on this job
            summary["sse_url"] = stream_url(server, request, job_id)
        return JSONResponse(summary)

    @app.delete("/v1/jobs/{job_id}", summary="Cancel a job", operation_id="cancel_job")
    async def cancel_job(job_id: str, principal: Canceller) -> Response:
        await visible_record(job_id, principal)
        try:
            record = await jobs.cancel(job_id)
        except UnknownJobError:
            raise unknown_job(job_id) from None
        except JobFinishedError as exc:
            raise ApiError(409, "job_finished", str(exc)) from None
        return JSONResponse({"job_id": record.job_id, "state": record.state})

    @app.get("/v1/operations", summary="The operations this server runs")
    async def list_operations(_: Reader) -> Response:
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
        # What it says is public: errors and addresses are logged, not shown.
        archiver = server.archiver
        troubles = [store.trouble(), archiver.trouble() if archiver is not None else None]
        trouble = "; ".join(t for t in troubles if t)
        status = "shutting_down" if not jobs.accepting else "degraded" if trouble else "ok"
        return JSONResponse(
            {
                "status": status,
                **({"why": trouble} if trouble else {}),
                "jobs_running": jobs.running,
                "jobs_finished_retained": jobs.retained_finished,
                "max_finished_jobs": jobs.max_finished,
                "jobs_evicted": jobs.evicted,
                "version": __version__,
                "streams_open": server.streams.open,
                "auth": "on" if server.auth.enabled else "off",
                **_public_health(store.health()),
                **(archiver.health() if archiver is not None else {}),
            }
        )


def stream_url(server: ServerState, request: Request, job_id: str) -> str:
    """The job's stream path (under the mount prefix), with a stream token when auth is on."""
    root = request.scope.get("root_path", "").rstrip("/")
    url = f"{root}/v1/jobs/{job_id}/stream"
    if server.auth.enabled:
        url += f"?{TOKEN_PARAM}={server.tokens.issue(job_id)}"
    return url


_PRIVATE_HEALTH = ("error", "url", "address")


def _public_health(facts: dict[str, Any]) -> dict[str, Any]:
    """The store's health facts without addresses or error texts (those go to the log)."""
    public: dict[str, Any] = {}
    for key, value in facts.items():
        if key in _PRIVATE_HEALTH:
            continue
        public[key] = _public_health(value) if isinstance(value, dict) else value
    return public


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
