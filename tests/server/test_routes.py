"""The HTTP contract of docs/ARCHITECTURE.md section 4: every status code and JSON error body."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import BaseModel

from narration import n, narration_context
from narration.jobs import Job, JobRegistry
from narration.operations import REFERENCE_OPERATIONS, Operation
from narration.server.app import server_state
from narration.testing import NarrationTestHarness
from stream_helpers import emit

pytestmark = pytest.mark.e2e

UNKNOWN = "job-00000000-0000-4000-8000-000000000000"


@pytest.fixture
async def narration_harness() -> AsyncIterator[NarrationTestHarness]:
    """A harness that knows the reference operations' models: validated, then held open."""
    async with NarrationTestHarness(REFERENCE_OPERATIONS) as harness:
        yield harness


class Work(BaseModel):
    """A test operation: its handler is given per test."""

    label: str = "w"


def _error(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    return response.status_code, body["error"]["code"]


async def test_submit_answers_201_with_location(narration_harness: NarrationTestHarness) -> None:
    response = await narration_harness.http.post("/v1/jobs", json={"operation": "hive_list"})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"job_id", "sse_url", "correlation_id", "state"}
    assert body["job_id"].startswith("job-") and body["state"] == "running"
    assert response.headers["location"] == f"/v1/jobs/{body['job_id']}"
    assert body["sse_url"] == f"/v1/jobs/{body['job_id']}/stream"


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "invalid_json"),
        (b"\xff\xfe", "application/json", 400, "invalid_json"),
        (b'{"operation": "hive_list"}', "text/plain", 415, "unsupported_media_type"),
        (b'{"operation": "no_such_op"}', "application/json", 422, "unknown_operation"),
        (b'{"hive_id": "x"}', "application/json", 422, "unknown_operation"),
        (b'{"operation": "infer", "hive_id": "h"}', "application/json", 422, "invalid_fields"),
        (b"[1, 2, 3]", "application/json", 422, "unknown_operation"),
        (
            b'{"operation": "hive_get", "alias": "' + b"a" * (1024 * 1024) + b'"}',
            "application/json",
            413,
            "body_too_large",
        ),
    ],
)
async def test_bad_submissions_get_documented_errors(
    narration_harness: NarrationTestHarness,
    content: bytes,
    content_type: str,
    status: int,
    code: str,
) -> None:
    response = await narration_harness.http.post(
        "/v1/jobs", content=content, headers={"content-type": content_type}
    )
    assert _error(response) == (status, code)
    assert narration_harness.state.jobs.running == 0  # nothing was started


async def test_unknown_operation_lists_valid_ones(narration_harness: NarrationTestHarness) -> None:
    response = await narration_harness.http.post("/v1/jobs", json={"operation": "nope"})
    message = response.json()["error"]["message"]
    for name in ("status", "hive_list", "hive_check", "worker_spawn", "infer"):
        assert name in message


@pytest.mark.parametrize("job_id", [UNKNOWN, "nope", "job-123", "job-" + "a" * 500])
async def test_unknown_or_malformed_ids_are_404(
    narration_harness: NarrationTestHarness, job_id: str
) -> None:
    http = narration_harness.http
    assert _error(await http.get(f"/v1/jobs/{job_id}")) == (404, "unknown_job")
    assert _error(await http.get(f"/v1/jobs/{job_id}/stream")) == (404, "unknown_job")
    assert _error(await http.delete(f"/v1/jobs/{job_id}")) == (404, "unknown_job")


async def test_cancel_then_cancel_again_is_409(narration_harness: NarrationTestHarness) -> None:
    job_id = await narration_harness.submit_job(Operation.hive_list())
    stream = narration_harness.get_sse_stream(job_id)
    response = await narration_harness.http.delete(f"/v1/jobs/{job_id}")
    assert response.status_code == 200
    assert response.json() == {"job_id": job_id, "state": "cancelled"}
    assert _error(await narration_harness.http.delete(f"/v1/jobs/{job_id}")) == (
        409,
        "job_finished",
    )
    assert await stream.collect_until_done() == []
    assert stream.terminal is not None and stream.terminal.state == "cancelled"


async def test_cancel_stops_a_running_handler() -> None:
    started = asyncio.Event()

    jobs = JobRegistry()

    @jobs.operation("forever")
    async def forever(op: Work, job: Job) -> None:
        n("waiting", "Waiting forever")
        started.set()
        await asyncio.Event().wait()

    async with NarrationTestHarness(jobs) as harness:
        job_id = await harness.submit_job("forever")
        await asyncio.wait_for(started.wait(), 5)
        assert (await harness.http.delete(f"/v1/jobs/{job_id}")).status_code == 200
        stream = harness.get_sse_stream(job_id)
        events = await stream.collect_until_done()
        assert [e.action for e in events] == ["waiting"]
        assert stream.terminal is not None and stream.terminal.state == "cancelled"
        status = (await harness.http.get(f"/v1/jobs/{job_id}")).json()
        assert status["state"] == "cancelled" and status["finished_at"] is not None


async def test_stream_of_finished_job_replays_and_resume_past_end_is_204(
    narration_harness: NarrationTestHarness,
) -> None:
    job_id = await narration_harness.submit_job(Operation.hive_list())
    emit(narration_harness, job_id, 3)
    await narration_harness.fail_job(job_id, "it broke")
    http = narration_harness.http
    full = await http.get(f"/v1/jobs/{job_id}/stream")
    assert full.status_code == 200
    assert full.headers["content-type"].startswith("text/event-stream")
    assert full.headers["cache-control"] == "no-store"
    assert full.headers["x-accel-buffering"] == "no"
    text = full.text
    assert text.startswith("retry: 2000\n\n")
    assert text.count("event: narration") == 3 and text.count("event: error") == 1
    assert text.rstrip().endswith('"state":"failed","error":"it broke"}')
    resumed = await http.get(f"/v1/jobs/{job_id}/stream", headers={"Last-Event-ID": "2"})
    assert resumed.text.count("event: narration") == 1 and "id: 3\n" in resumed.text
    assert (await http.get(f"/v1/jobs/{job_id}/stream?after=3")).text.count("narration") == 0
    assert (await http.get(f"/v1/jobs/{job_id}/stream?after=4")).status_code == 204
    assert (
        await http.get(f"/v1/jobs/{job_id}/stream", headers={"Last-Event-ID": "9"})
    ).status_code == 204


@pytest.mark.parametrize("bad", ["abc", "-1", "1.5", "9" * 40])
async def test_bad_resume_cursor_is_400(narration_harness: NarrationTestHarness, bad: str) -> None:
    job_id = await narration_harness.submit_job(Operation.hive_list())
    response = await narration_harness.http.get(
        f"/v1/jobs/{job_id}/stream", headers={"Last-Event-ID": bad}
    )
    assert _error(response) == (400, "invalid_cursor")


async def test_failed_job_never_streams_done() -> None:
    jobs = JobRegistry()

    @jobs.operation("broken")
    async def broken(op: Work, job: Job) -> None:
        n("trying", "Trying")
        raise RuntimeError("disk on fire")

    async with NarrationTestHarness(jobs) as harness:
        job_id = await harness.submit_job("broken")
        stream = harness.get_sse_stream(job_id)
        events = await stream.collect_until_done()
        assert [e.action for e in events] == ["trying", "job_failed"]
        assert stream.terminal is not None
        assert (stream.terminal.state, stream.terminal.error) == (
            "failed",
            "RuntimeError: disk on fire",
        )
        status = (await harness.http.get(f"/v1/jobs/{job_id}")).json()
        assert status["state"] == "failed" and status["events"] == 2


async def test_job_timeout_fails_the_job() -> None:
    jobs = JobRegistry()

    @jobs.operation("slow")
    async def slow(op: Work, job: Job) -> None:
        await asyncio.Event().wait()

    async with NarrationTestHarness(jobs, job_timeout_s=0.2) as harness:
        job_id = await harness.submit_job("slow")
        stream = harness.get_sse_stream(job_id)
        events = await stream.collect_until_done()
        assert [e.action for e in events] == ["job_timeout"]
        assert stream.terminal is not None and stream.terminal.error == "timed out after 0.2 s"


async def test_list_jobs_newest_first_with_filters(narration_harness: NarrationTestHarness) -> None:
    ids = [await narration_harness.submit_job(Operation.hive_list()) for _ in range(3)]
    await narration_harness.complete_job(ids[0])
    listed = (await narration_harness.http.get("/v1/jobs")).json()
    assert [j["job_id"] for j in listed] == ids[::-1]
    running = (await narration_harness.http.get("/v1/jobs?state=running")).json()
    assert [j["job_id"] for j in running] == ids[:0:-1]
    assert [
        j["job_id"] for j in (await narration_harness.http.get("/v1/jobs?limit=1")).json()
    ] == ids[2:]
    assert _error(await narration_harness.http.get("/v1/jobs?state=bogus")) == (
        422,
        "invalid_state",
    )
    assert _error(await narration_harness.http.get("/v1/jobs?limit=0")) == (422, "invalid_limit")


async def test_health(narration_harness: NarrationTestHarness) -> None:
    await narration_harness.submit_job(Operation.hive_list())
    body = (await narration_harness.http.get("/health")).json()
    assert body["status"] == "ok" and body["jobs_running"] == 1
    assert body["version"]


async def test_capacity_limit_is_503() -> None:
    async with NarrationTestHarness(max_running=2) as harness:
        for _ in range(2):
            await harness.submit_job(Operation.hive_list())
        response = await harness.http.post("/v1/jobs", json={"operation": "hive_list"})
        assert _error(response) == (503, "unavailable")
        assert response.headers["retry-after"] == "1"


async def test_unknown_route_is_json_404(narration_harness: NarrationTestHarness) -> None:
    assert _error(await narration_harness.http.get("/v2/nothing")) == (404, "not_found")
    assert _error(await narration_harness.http.put("/v1/jobs")) == (405, "method_not_allowed")


async def test_graceful_shutdown_ends_open_streams_with_a_terminal() -> None:
    harness = await NarrationTestHarness.start()
    job_id = await harness.submit_job(Operation.hive_list())
    stream = harness.get_sse_stream(job_id)
    with narration_context(harness.job_context(job_id)):
        n("before", "Before shutdown")
    assert (await stream.next_event()) is not None
    await harness.state.begin_shutdown()
    assert await stream.collect_until_done() == []
    assert stream.terminal is not None and stream.terminal.state == "cancelled"
    response = await harness.http.post("/v1/jobs", json={"operation": "hive_list"})
    assert _error(response) == (503, "unavailable")
    await harness.stop()


async def test_stream_responses_echo_the_correlation_id(
    narration_harness: NarrationTestHarness,
) -> None:
    job_id = await narration_harness.submit_job(Operation.hive_list())
    await narration_harness.complete_job(job_id)
    http = narration_harness.http
    sent = {"X-Correlation-Id": "stream-corr-1"}
    full = await http.get(f"/v1/jobs/{job_id}/stream", headers=sent)
    assert full.status_code == 200 and full.headers["x-correlation-id"] == "stream-corr-1"
    past = await http.get(f"/v1/jobs/{job_id}/stream?after=1", headers=sent)
    assert past.status_code == 204 and past.headers["x-correlation-id"] == "stream-corr-1"
    missing = await http.get(f"/v1/jobs/{UNKNOWN}/stream", headers={"X-Correlation-Id": "bad id"})
    assert _error(missing) == (404, "unknown_job")
    generated = missing.headers["x-correlation-id"]
    assert generated and generated != "bad id"


async def test_stream_path_rejects_other_methods(narration_harness: NarrationTestHarness) -> None:
    job_id = await narration_harness.submit_job(Operation.hive_list())
    response = await narration_harness.http.post(f"/v1/jobs/{job_id}/stream")
    assert _error(response) == (405, "method_not_allowed")
    assert response.headers["allow"] == "GET"


async def test_stream_query_keeps_the_last_after_and_ignores_other_keys(
    narration_harness: NarrationTestHarness,
) -> None:
    job_id = await narration_harness.submit_job(Operation.hive_list())
    emit(narration_harness, job_id, 3)
    await narration_harness.complete_job(job_id)
    response = await narration_harness.http.get(f"/v1/jobs/{job_id}/stream?x=1&after=0&after=2")
    assert response.text.count("event: narration") == 1 and "id: 3\n" in response.text


async def test_streams_work_when_the_app_is_mounted_under_a_prefix() -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from narration.server import create_app, make_server

    inner = create_app(hold_unhandled=True)
    outer = Starlette(routes=[Mount("/narration", app=inner)])
    server = make_server(outer, "127.0.0.1", 0)
    task = await server.start()
    try:
        base = f"http://127.0.0.1:{server.port}/narration"
        async with httpx.AsyncClient(base_url=base) as http:
            created = await http.post("/v1/jobs", json={"operation": "hive_list"})
            job_id = created.json()["job_id"]
            with narration_context(server_state(inner).jobs.live[job_id].context):
                n("mounted", "Streamed through a mount")
            await server_state(inner).jobs.complete(job_id)
            response = await http.get(f"/v1/jobs/{job_id}/stream")
        assert response.status_code == 200
        assert response.text.count("event: narration") == 1 and "event: done" in response.text
    finally:
        server.should_exit = True
        await task


async def test_an_unhandled_error_is_a_json_500_with_the_correlation_id() -> None:
    from narration.ids import valid_correlation_id
    from narration.server import create_app, make_server

    app = create_app()

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaput")

    server = make_server(app, "127.0.0.1", 0)
    task = await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            named = await http.get("/boom", headers={"X-Correlation-Id": "req-boom-1"})
            unnamed = await http.get("/boom")
    finally:
        server.should_exit = True
        await task
    assert _error(named) == (500, "internal_error")
    assert named.json()["error"]["message"] == (
        "internal server error; the server's log has it under correlation id req-boom-1"
    )
    assert "kaput" not in named.text and "RuntimeError" not in named.text
    assert named.headers["X-Correlation-Id"] == "req-boom-1"
    assert _error(unnamed) == (500, "internal_error")
    generated = unnamed.headers["X-Correlation-Id"]
    assert valid_correlation_id(generated) == generated


async def test_the_stream_route_is_in_the_openapi_schema(
    narration_harness: NarrationTestHarness,
) -> None:
    response = await narration_harness.http.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert set(paths) == {
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/stream",
        "/v1/jobs/{job_id}/events",
        "/v1/operations",
        "/health",
    }
    stream = paths["/v1/jobs/{job_id}/stream"]["get"]
    assert set(stream["responses"]) == {"200", "204", "400", "401", "403", "404", "405"}
    assert "text/event-stream" in stream["responses"]["200"]["content"]
    assert [p["name"] for p in stream["parameters"]] == [
        "job_id",
        "after",
        "Last-Event-ID",
        "token",
        "level",
        "actor",
        "action",
        "q",
    ]
    assert response.json()["components"]["schemas"]["Error"]["required"] == ["error"]
