"""The viewer's HTTP side: pages at /ui/ (also under a mount prefix), the correlation filter,
CORS as a setting (preflights, the SSE stream), and the CLI pointing at the viewer."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from narration._process import ServiceProcess
from narration.server import ServerSettings, create_app, make_server
from narration.testing import NarrationTestHarness
from stream_helpers import read_stream

pytestmark = pytest.mark.e2e

APP = "http://app.test"


async def test_the_viewer_is_served_with_a_strict_content_security_policy(
    narration_harness: NarrationTestHarness,
) -> None:
    http = narration_harness.http
    root = await http.get("/")
    assert root.status_code == 307 and root.headers["location"] == "/ui/"
    bare = await http.get("/ui")
    assert bare.status_code in (307, 308) and bare.headers["location"].endswith("/ui/")
    page = await http.get("/ui/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="js/app.js">' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    script = await http.get("/ui/js/app.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    missing = await http.get("/ui/js/no-such-module.js")
    assert missing.status_code == 404
    schema = (await http.get("/openapi.json")).json()
    assert "/" not in schema["paths"] and not any(p.startswith("/ui") for p in schema["paths"])


async def test_the_viewer_works_under_a_mount_prefix() -> None:
    outer = Starlette(routes=[Mount("/narration", app=create_app())])
    server = make_server(outer, "127.0.0.1", 0)
    task = await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            root = await http.get("/narration/")
            assert root.status_code == 307
            assert root.headers["location"] == "/narration/ui/"
            page = await http.get("/narration/ui/")
            assert page.status_code == 200 and "js/app.js" in page.text
            assert (await http.get("/narration/ui/js/api.js")).status_code == 200
    finally:
        server.should_exit = True
        await task


async def test_jobs_filter_by_correlation_id_and_show_their_parent(store_url: str) -> None:
    async with NarrationTestHarness(store=store_url) as harness:
        http = harness.http
        parent = await harness.submit_job({"operation": "hive_list"}, correlation_id="c-1")
        child = await http.post(
            "/v1/jobs",
            json={"operation": "hive_list"},
            headers={"X-Correlation-Id": "c-1", "X-Parent-Job-Id": parent},
        )
        other = await harness.submit_job({"operation": "hive_list"}, correlation_id="c-2")
        listed = (await http.get("/v1/jobs", params={"correlation_id": "c-1"})).json()
        assert [job["job_id"] for job in listed] == [child.json()["job_id"], parent]
        assert listed[0]["parent_job_id"] == parent and "parent_job_id" not in listed[1]
        only = (await http.get("/v1/jobs", params={"correlation_id": "c-2"})).json()
        assert [job["job_id"] for job in only] == [other]
        # The filter applies before the limit: the newest job of c-1, not the newest job.
        newest = (await http.get("/v1/jobs", params={"correlation_id": "c-1", "limit": 1})).json()
        assert [job["job_id"] for job in newest] == [child.json()["job_id"]]
        none = await http.get("/v1/jobs", params={"correlation_id": "c-3", "state": "running"})
        assert none.json() == []
        bad = await http.get("/v1/jobs", params={"correlation_id": "no spaces"})
        assert bad.status_code == 422
        assert bad.json()["error"]["code"] == "invalid_correlation_id"


def _preflight(method: str, origin: str = APP) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type",
    }


async def test_cors_allows_the_configured_origin_on_the_api_and_the_stream() -> None:
    async with NarrationTestHarness(cors_origins=[APP]) as harness:
        http = harness.http
        for method, path in (("POST", "/v1/jobs"), ("DELETE", f"/v1/jobs/job-{'0' * 8}")):
            response = await http.options(path, headers=_preflight(method))
            assert response.status_code == 200
            assert response.headers["access-control-allow-origin"] == APP
            assert method in response.headers["access-control-allow-methods"]
            assert "content-type" in response.headers["access-control-allow-headers"].lower()
        submitted = await http.post(
            "/v1/jobs", json={"operation": "status"}, headers={"Origin": APP}
        )
        assert submitted.status_code == 201
        assert submitted.headers["access-control-allow-origin"] == APP
        exposed = submitted.headers["access-control-expose-headers"].lower()
        assert "location" in exposed and "x-correlation-id" in exposed
        job_id = submitted.json()["job_id"]
        async with http.stream(
            "GET", f"/v1/jobs/{job_id}/stream", headers={"Origin": APP}
        ) as stream:
            assert stream.status_code == 200
            assert stream.headers["access-control-allow-origin"] == APP
            assert stream.headers["content-type"].startswith("text/event-stream")
            body = (await stream.aread()).decode()
        assert "event: done" in body

        refused = await http.options("/v1/jobs", headers=_preflight("POST", "http://evil.test"))
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers
        unknown = await http.get(
            "/v1/jobs/job-00000000-0000-4000-8000-000000000000/stream",
            headers={"Origin": "http://evil.test"},
        )
        assert unknown.status_code == 404
        assert "access-control-allow-origin" not in unknown.headers


async def test_cors_is_off_by_default(narration_harness: NarrationTestHarness) -> None:
    http = narration_harness.http
    preflight = await http.options("/v1/jobs", headers=_preflight("POST"))
    assert preflight.status_code == 405
    assert "access-control-allow-origin" not in preflight.headers
    job_id = await narration_harness.submit_job({"operation": "status"})
    status, frames = await read_stream(http, job_id, headers={"Origin": APP})
    assert status == 200 and frames[-1]["event"] == "done"
    response = await http.get("/v1/jobs", headers={"Origin": APP})
    assert "access-control-allow-origin" not in response.headers


def test_cors_origins_come_from_the_environment_and_are_checked() -> None:
    env = {"NARRATION_CORS_ORIGINS": " http://a.test, https://b.test:8443 ,"}
    settings = ServerSettings.from_env(env)
    assert settings.cors_origins == ("http://a.test", "https://b.test:8443")
    assert ServerSettings.from_env({}).cors_origins == ()
    with pytest.raises(ValueError, match=r"cors origin 'http://a.test/app' is not an origin"):
        create_app(cors_origins=["http://a.test/app"])
    with pytest.raises(ValueError, match=r"cors origin 'a.test' is not an origin"):
        create_app(cors_origins=["a.test"])


async def test_serve_prints_the_viewer_url_and_takes_cors_origins() -> None:
    service = ServiceProcess("server", ["serve", "--quiet", "--cors-origin", APP])
    service.start()
    try:
        await service.wait_healthy_async(20.0)
        assert f"  viewer: {service.url}/ui/" in service.log()
        async with httpx.AsyncClient(base_url=service.url) as http:
            response = await http.options("/v1/jobs", headers=_preflight("POST"))
        assert response.headers["access-control-allow-origin"] == APP
    finally:
        service.stop()
        service.remove_log()


async def test_a_bad_cors_origin_flag_is_a_usage_error() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "narration.cli",
        "serve",
        "--cors-origin",
        "app.test",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 2
    assert "cors origin 'app.test' is not an origin" in output.decode()


async def test_submit_open_opens_the_job_page(
    narration_harness: NarrationTestHarness, tmp_path: Path
) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n')
    browser.chmod(0o755)
    env = {**os.environ, "BROWSER": str(browser)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "narration.cli",
        "submit",
        "status",
        "--queen",
        narration_harness.base_url,
        "--open",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0, output.decode()
    jobs = (await narration_harness.http.get("/v1/jobs")).json()
    url = f"{narration_harness.base_url}/ui/#/jobs/{jobs[0]['job_id']}"
    assert opened.read_text().split() == [url]
    assert f"viewer: {url}" in output.decode()
