"""Your own operations, mounted inside your own FastAPI app, served by plain uvicorn.

The app is tests/apps/embedded.py: a host with its own route and its own NarrationMiddleware,
narration mounted under `/narration` with two operations of its own (one async, one sync).
It runs as `python -m uvicorn tests.apps.embedded:app` in a child process, so shutdown is a
real SIGTERM to a real server that knows nothing of narration.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from narration._process import ServiceProcess
from narration.client import JobClient, Terminal
from narration.events import NarrationEvent

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PREFIX = "/narration"


def _host(grace: float = 1.0) -> ServiceProcess:
    return ServiceProcess(
        "embedded",
        ["tests.apps.embedded:app", "--log-level", "info", "--timeout-graceful-shutdown", "10"],
        module="uvicorn",
        health_path=f"{PREFIX}/health",
        env={"PYTHONPATH": str(REPO), "NARRATION_SHUTDOWN_GRACE_S": str(grace)},
    )


@pytest.fixture(scope="module")
def host() -> Iterator[ServiceProcess]:
    with _host().running() as service:
        yield service


async def _run(
    url: str, name: str, fields: dict[str, object]
) -> tuple[list[NarrationEvent], Terminal]:
    async with JobClient(url + PREFIX) as client:
        return await client.run(name, fields)


async def test_an_async_operation_of_your_own_streams_to_done(host: ServiceProcess) -> None:
    events, terminal = await _run(host.url, "build_report", {"report_id": "r-7", "pages": 2})
    assert terminal.state == "completed"
    assert [(e.action, e.human) for e in events] == [
        ("start", "Building report r-7"),
        ("render", "Rendering page 1 of 2"),
        ("render", "Rendering page 2 of 2"),
        ("built", "Report r-7 is ready"),
    ]
    assert [e.id for e in events] == [1, 2, 3, 4]
    assert {e.job_id for e in events} == {terminal.job_id}


async def test_a_sync_operation_runs_in_a_thread_inside_the_job(host: ServiceProcess) -> None:
    events, terminal = await _run(host.url, "resize_images", {"count": 3, "width": 320})
    assert terminal.state == "completed"
    assert [e.human for e in events] == [
        "Resized image 1 of 3 to 320 px",
        "Resized image 2 of 3 to 320 px",
        "Resized image 3 of 3 to 320 px",
        "Resized 3 images",
    ]
    assert {e.job_id for e in events} == {terminal.job_id}  # the worker thread kept the context
    assert all(e.fn_name == "tests.apps.embedded.resize_images" for e in events)


async def test_urls_carry_the_prefix_and_one_correlation_id_per_request(
    host: ServiceProcess,
) -> None:
    async with httpx.AsyncClient(base_url=host.url) as http:
        created = await http.post(
            f"{PREFIX}/v1/jobs", json={"operation": "build_report", "report_id": "r-1"}
        )
        assert created.status_code == 201, created.text
        body = created.json()
        job_id = body["job_id"]
        assert body["sse_url"] == f"{PREFIX}/v1/jobs/{job_id}/stream"
        assert created.headers["location"] == f"{PREFIX}/v1/jobs/{job_id}"
        # Two NarrationMiddleware layers (the host's and narration's): still one id.
        assert created.headers["x-correlation-id"] == body["correlation_id"]
        followed = await http.get(body["sse_url"])
        assert followed.status_code == 200 and "event: done" in followed.text
        status = await http.get(created.headers["location"])
        assert status.json()["correlation_id"] == body["correlation_id"]
        hello = await http.get("/hello")
        assert hello.status_code == 200 and hello.json()["hello"] == "world"
        assert (await http.get("/v1/jobs")).status_code == 404  # only under the prefix


async def test_bad_bodies_for_your_operations_get_the_documented_errors(
    host: ServiceProcess,
) -> None:
    async with httpx.AsyncClient(base_url=host.url + PREFIX) as http:
        unknown = await http.post("/v1/jobs", json={"operation": "nope"})
        assert unknown.status_code == 422
        assert unknown.json()["error"] == {
            "code": "unknown_operation",
            "message": "unknown operation 'nope'; valid operations: status, build_report, "
            "resize_images, wait_for_stop",
        }
        strict = await http.post(
            "/v1/jobs", json={"operation": "build_report", "report_id": "r", "pages": "3"}
        )
        assert strict.status_code == 422
        assert strict.json()["error"]["code"] == "invalid_fields"
        assert "pages: Input should be a valid integer" in strict.json()["error"]["message"]
        extra = await http.post(
            "/v1/jobs", json={"operation": "build_report", "report_id": "r", "colour": "red"}
        )
        assert extra.status_code == 422
        assert "colour: Extra inputs are not permitted" in extra.json()["error"]["message"]
        deep = await http.post(
            "/v1/jobs", content=b"[" * 1000, headers={"content-type": "application/json"}
        )
        assert deep.status_code == 400 and deep.json()["error"]["code"] == "invalid_json"


async def test_openapi_documents_each_operation_as_a_discriminated_union(
    host: ServiceProcess,
) -> None:
    async with httpx.AsyncClient(base_url=host.url + PREFIX) as http:
        schema = (await http.get("/openapi.json")).json()
    body = schema["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]
    refs = {option["$ref"].rsplit("/", 1)[1] for option in body["schema"]["oneOf"]}
    assert refs == {"ServerStatus", "BuildReport", "ResizeImages", "WaitForStop"}
    assert set(body["schema"]["discriminator"]["mapping"]) == {
        "status",
        "build_report",
        "resize_images",
        "wait_for_stop",
    }
    report = schema["components"]["schemas"]["BuildReport"]
    assert report["required"] == ["operation", "report_id"]  # the server needs it to choose
    assert report["properties"]["operation"]["const"] == "build_report"
    assert body["examples"]["build_report"]["value"] == {
        "operation": "build_report",
        "report_id": "r-42",
        "pages": 2,
    }
    assert body["examples"]["resize_images"]["value"] == {
        "operation": "resize_images",
        "count": 0,
        "width": 640,
    }


async def test_sigterm_ends_a_running_job_with_its_terminal_and_exits_cleanly() -> None:
    service = _host(grace=0.5).start()
    try:
        await service.wait_healthy_async(30.0)
        async with JobClient(service.url + PREFIX) as client:
            submitted = await client.submit("wait_for_stop")
            seen: list[NarrationEvent] = []
            terminal: Terminal | None = None
            stopped_at = 0.0
            async for item in client.stream(submitted.job_id):
                if isinstance(item, NarrationEvent):
                    seen.append(item)
                    if len(seen) == 3:
                        stopped_at = time.monotonic()
                        os.kill(service.pid or 0, 15)  # SIGTERM, as a process manager would
                else:
                    assert isinstance(item, Terminal)
                    terminal = item
        assert terminal is not None and terminal.state == "cancelled"
        assert terminal.error == "server stopped"
        code = await _exit_code(service, timeout=10.0)
        assert code in (0, -15)  # uvicorn re-raises the SIGTERM it handled, after its shutdown
        assert time.monotonic() - stopped_at < 8.0  # grace 0.5 s, well inside uvicorn's 10 s
        log = service.log()
        assert "Traceback" not in log and "ERROR" not in log, log
        assert "Finished server process" in log  # a graceful stop, not a kill
        beats = [e.fields["beat"] for e in seen if e.fields]
        assert beats == list(range(1, len(beats) + 1))  # every heartbeat, in order
    finally:
        service.stop()
        service.remove_log()


async def _exit_code(service: ServiceProcess, timeout: float) -> int | None:
    import asyncio

    process = service.process
    assert process is not None
    return await asyncio.wait_for(asyncio.to_thread(process.wait), timeout)
