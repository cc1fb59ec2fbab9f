"""A page on another origin: works with `cors_origins` set (submit, stream, each terminal,
cancel), is blocked without it. The page is the documented example, docs/examples/."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Page, expect
from starlette.applications import Starlette
from starlette.staticfiles import StaticFiles

from narration.server import make_server
from narration.testing import NarrationTestHarness

pytestmark = pytest.mark.browser

EXAMPLES = Path(__file__).parents[3] / "docs" / "examples"
JOB_ID = re.compile(r"^job-[0-9a-f-]{36}$")


@pytest_asyncio.fixture(loop_scope="session")
async def other_origin() -> AsyncIterator[str]:
    """A plain web server for the example page, on another port: another origin."""
    app = Starlette()
    app.mount("/", StaticFiles(directory=EXAMPLES))
    server = make_server(app, "127.0.0.1", 0)
    task = await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.should_exit = True
        await task


async def _open(page: Page, origin: str, server: str, **params: str) -> None:
    query = "&".join(f"{key}={value}" for key, value in {"server": server, **params}.items())
    await page.goto(f"{origin}/cross-origin.html?{query}")


async def test_allowed_origin_submits_follows_and_ends_done(page: Page, other_origin: str) -> None:
    harness = await NarrationTestHarness.start(cors_origins=[other_origin])
    try:
        await _open(page, other_origin, harness.base_url, operation="status")
        await expect(page.locator("body")).to_have_attribute("data-result", "done")
        await expect(page.locator("#events li")).to_have_count(1)
        await expect(page.locator("#events li")).to_contain_text("#1 [info] ")
        await expect(page.locator("#events li")).to_contain_text("Server is up")
    finally:
        await harness.stop()


@pytest.mark.parametrize("terminal", ["error", "cancelled"])
async def test_allowed_origin_handles_error_and_cancel(
    page: Page, other_origin: str, terminal: str
) -> None:
    harness = await NarrationTestHarness.start(cors_origins=[other_origin, "https://other.test"])
    try:
        params = {"operation": "hive_list"}
        if terminal == "cancelled":
            params["cancel"] = "1"  # the page sends DELETE (preflighted) once the stream opens
        await _open(page, other_origin, harness.base_url, **params)
        body = page.locator("body")
        await expect(body).to_have_attribute("data-job-id", JOB_ID)
        if terminal == "error":
            job_id = await body.get_attribute("data-job-id")
            assert job_id is not None
            await harness.fail_job(job_id, "hive fell over")
        await expect(body).to_have_attribute("data-result", terminal)
        if terminal == "error":
            await expect(page.locator("#state")).to_have_text("error: hive fell over")
        jobs = (await harness.http.get("/v1/jobs")).json()
        assert [job["state"] for job in jobs] == ["failed" if terminal == "error" else "cancelled"]
    finally:
        await harness.stop()


@pytest.mark.parametrize("origins", [(), ("https://someone-else.test",)])
async def test_other_origins_are_blocked(
    page: Page, other_origin: str, origins: tuple[str, ...]
) -> None:
    harness = await NarrationTestHarness.start(cors_origins=origins)
    try:
        await _open(page, other_origin, harness.base_url, operation="status")
        await expect(page.locator("body")).to_have_attribute("data-result", "blocked")
        await expect(page.locator("#state")).to_contain_text("cannot submit: Failed to fetch")
        # The preflight failed, so the POST never reached the server.
        assert (await harness.http.get("/v1/jobs")).json() == []
    finally:
        await harness.stop()
