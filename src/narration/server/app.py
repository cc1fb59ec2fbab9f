"""`create_app()`: the FastAPI app of DESIGN.md section 4 — jobs, their SSE streams, health."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from .. import __version__
from ..context import current_context
from ..emit import n
from ..ids import is_job_id, new_correlation_id, valid_correlation_id
from ..jobs import Handler, Job, JobFinished, JobManager, JobState, NotAccepting
from ..jobs import UnknownJob as UnknownJobError
from ..operations import Operation, OperationError
from ..propagation.http import NarrationMiddleware
from ..store import LogLimits, Store, open_store
from .cors import install_cors
from .errors import ApiError, checked_job_id, install_error_handlers, unknown_job
from .settings import ServerSettings
from .sse import StreamRegistry
from .stream_route import StreamRoute, document_stream_route
from .ui import install_ui

__all__ = ["ServerState", "create_app"]


@dataclass
class ServerState:
    """What the routes share: settings, the store, the job manager and the open streams."""

    settings: ServerSettings
    store: Store
    jobs: JobManager
    streams: StreamRegistry

    async def begin_shutdown(self) -> None:
        """Refuse new jobs, end the running ones, then let open streams flush and close."""
        await self.jobs.shutdown(self.settings.shutdown_grace_s)
        self.streams.closing.set()


def create_app(
    settings: ServerSettings | None = None,
    *,
    handlers: Mapping[str, Handler] | None = None,
    store: Store | str | None = None,
    hold_unhandled: bool = False,
    **overrides: Any,
) -> FastAPI:
    """A narration server. `overrides` are `ServerSettings` fields (e.g. `retention_s=0`).

    `handlers` map operation names to `async def handler(operation, job)`; `status` has a
    built-in one. With `hold_unhandled`, jobs without a handler stay running until completed
    by hand (the test harness uses this).
    """
    if settings is None:
        settings = ServerSettings.from_env(**overrides)
    elif overrides:
        settings = replace(settings, **overrides)
    limits = LogLimits(settings.max_events, settings.max_bytes)
    backend = (
        store
        if isinstance(store, Store)
        else open_store(store or settings.store, limits, settings.retention_s)
    )

    async def status(_: Any, job: Job) -> None:
        n("status", "Server is up; {} job(s) running", manager.running, running=manager.running)

    manager = JobManager(
        backend,
        {"status": status, **(handlers or {})},
        retention_s=settings.retention_s,
        timeout_s=settings.job_timeout_s,
        max_running=settings.max_running,
        hold_unhandled=hold_unhandled,
        actor=settings.actor,
    )
    state = ServerState(settings, backend, manager, StreamRegistry())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await backend.open()
        try:
            yield
        finally:
            if not state.streams.closing.is_set():
                await state.begin_shutdown()
            await backend.close()

    app = FastAPI(title="narration", version=__version__, lifespan=lifespan)
    app.state.narration = state
    app.add_middleware(NarrationMiddleware)
    app.add_middleware(StreamRoute, state=state)  # streams skip per-request layers
    install_cors(app, settings.cors_origins)  # outermost when on: covers the streams too
    document_stream_route(app)
    install_error_handlers(app)

    _add_routes(app, state)
    install_ui(app)
    return app


def _add_routes(app: FastAPI, state: ServerState) -> None:
    settings, jobs, store = state.settings, state.jobs, state.store

    @app.post("/v1/jobs", status_code=201)
    async def submit_job(request: Request) -> Response:
        body = await _read_json_body(request, settings.max_body_bytes)
        try:
            operation = Operation.parse(body)
        except OperationError as exc:
            raise ApiError(422, exc.code, str(exc)) from None
        ctx = current_context()
        correlation_id = (
            ctx.correlation_id
            or valid_correlation_id(request.headers.get("x-correlation-id"))
            or new_correlation_id()
        )
        parent = request.headers.get("x-parent-job-id")
        try:
            job = await jobs.submit(
                operation,
                correlation_id=correlation_id,
                parent_job_id=parent if parent and is_job_id(parent) else None,
                trace_id=ctx.trace_id,
                span_id=ctx.span_id,
            )
        except NotAccepting as exc:
            raise ApiError(503, "unavailable", str(exc), {"Retry-After": "1"}) from None
        job_id = job.job_id
        body_out = {
            "job_id": job_id,
            "sse_url": f"/v1/jobs/{job_id}/stream",
            "correlation_id": correlation_id,
            "state": job.record.state,
        }
        headers = {"Location": f"/v1/jobs/{job_id}", "X-Correlation-Id": correlation_id}
        return JSONResponse(body_out, status_code=201, headers=headers)

    @app.get("/v1/jobs")
    async def list_jobs(
        state: str | None = None, limit: int = 100, correlation_id: str | None = None
    ) -> Response:
        if state is not None and state not in JobState.__members__.values():
            valid = ", ".join(s.value for s in JobState)
            raise ApiError(422, "invalid_state", f"unknown state {state!r}; valid: {valid}")
        if not 1 <= limit <= 1000:
            raise ApiError(422, "invalid_limit", "limit must be between 1 and 1000")
        if correlation_id is not None and valid_correlation_id(correlation_id) is None:
            raise ApiError(
                422, "invalid_correlation_id", "a correlation id is 1-128 of [A-Za-z0-9._:-]"
            )
        records = await store.list(state, limit, correlation_id)
        summaries = []
        for record in records:
            log = await store.log(record.job_id)
            summaries.append(record.summary(log.count() if log else 0))
        return JSONResponse(summaries)

    @app.get("/v1/jobs/{job_id}")
    async def get_job(job_id: str) -> Response:
        record = await store.get(checked_job_id(job_id))
        if record is None:
            raise unknown_job(job_id)
        log = await store.log(job_id)
        return JSONResponse(record.summary(log.count() if log else 0))

    @app.delete("/v1/jobs/{job_id}")
    async def cancel_job(job_id: str) -> Response:
        try:
            record = await jobs.cancel(checked_job_id(job_id))
        except UnknownJobError:
            raise unknown_job(job_id) from None
        except JobFinished as exc:
            raise ApiError(409, "job_finished", str(exc)) from None
        return JSONResponse({"job_id": record.job_id, "state": record.state})

    @app.get("/health")
    async def health() -> Response:
        return JSONResponse(
            {
                "status": "ok" if jobs.accepting else "shutting_down",
                "jobs_running": jobs.running,
                "version": __version__,
                "streams_open": state.streams.open,
                **store.health(),
            }
        )


async def _read_json_body(request: Request, limit: int) -> Any:
    """The request's JSON body: 415 if not JSON, 413 if over `limit`, 400 if malformed."""
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
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "bad_json", f"body is not valid JSON: {exc}") from None
