"""The correlation page on a real queen -> hive -> worker chain (separate processes, as
`narration demo` runs them): every job of one correlation id, all their events, one timeline.
With NARRATION_SCREENSHOTS set, this test also photographs the three pages for docs/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Page, expect
from viewer_helpers import rows

from conftest import screenshots_dir
from narration.cli.demo import DEMO_MODEL, DEMO_PROMPT
from narration.operations import Operation
from narration.testing import MultiServiceHarness

pytestmark = pytest.mark.browser

CORRELATION = "demo-7f3a9c21e4b0"


@pytest_asyncio.fixture(loop_scope="session")
async def chain() -> AsyncIterator[tuple[MultiServiceHarness, dict[str, list[tuple[str, int]]]]]:
    """A queen and a hive as processes, after a keeper ran the demo's three jobs through them
    under one correlation id: (the services, each queen job's (job id, event id) pairs)."""
    async with MultiServiceHarness() as services, services.client(CORRELATION) as client:
        seen: dict[str, list[tuple[str, int]]] = {}
        for operation in (
            Operation.hive_list(),
            Operation.worker_spawn("localhost", DEMO_MODEL, "cpu"),
            Operation.infer("localhost", DEMO_MODEL, DEMO_PROMPT, max_tokens=12),
        ):
            events, terminal = await client.run(operation)
            assert terminal.state == "completed", services.logs()
            job_id = terminal.job_id
            seen[job_id] = [(job_id, event.id) for event in events]
        yield services, seen


async def test_one_timeline_holds_every_event_of_every_job(
    page: Page, chain: tuple[MultiServiceHarness, dict[str, list[tuple[str, int]]]]
) -> None:
    services, seen = chain
    await page.goto(f"{services.queen_url}/ui/#/correlations/{CORRELATION}")
    timeline = page.locator(".log .row")
    await expect(page.locator(".strip-job")).to_have_count(3)
    await page.wait_for_function(
        "() => narrationViewer.list && narrationViewer.list.rows.filter("
        "r => r.kind === 'terminal').length === 3"
    )
    held = await rows(page)
    events = [row for row in held if row["kind"] == "event"]
    assert sorted((row["job"], row["id"]) for row in events) == sorted(
        pair for pairs in seen.values() for pair in pairs
    )
    assert [row["name"] for row in held if row["kind"] == "terminal"] == ["done"] * 3
    assert {row["actor"] for row in events} == {"queen", "hive", "worker"}
    times = [row["ts"] for row in held]
    assert times == sorted(times)
    assert len(events) > 20
    await expect(timeline.first).to_be_visible()
    await expect(page.locator(".statusbar")).to_have_attribute("data-events", str(len(events)))

    # The hive's own jobs carry the same correlation id and point back at the queen's jobs.
    async with httpx.AsyncClient(base_url=services.hive_url) as http:
        hive_jobs = (await http.get("/v1/jobs", params={"correlation_id": CORRELATION})).json()
    assert len(hive_jobs) == 2  # worker_spawn and infer were forwarded; hive_list was not
    assert {job["parent_job_id"] for job in hive_jobs} <= set(seen)

    # The job filter narrows the timeline to one job.
    infer_job = list(seen)[-1]
    await page.select_option(".f-job", infer_job)
    await page.wait_for_function(
        "n => narrationViewer.list.view.filter(r => r.kind === 'event').length === n",
        arg=len(seen[infer_job]),
    )
    await page.select_option(".f-job", "")

    target = screenshots_dir()
    if target is not None:
        await _photograph(page, services.queen_url, infer_job, target)


async def _photograph(page: Page, base: str, job_id: str, target: Path) -> None:
    """The three pages, as docs/screenshots shows them."""
    await page.locator(".log").evaluate("el => el.scrollTop = 0")
    await page.locator(".log").dispatch_event("scroll")
    await page.screenshot(path=str(target / "correlation.png"))
    await page.goto(f"{base}/ui/#/jobs/{job_id}")
    await expect(page.locator(".banner")).to_have_attribute("data-terminal", "done")
    await page.locator(".log .row.event").nth(4).click()
    await expect(page.locator(".side .details")).to_be_visible()
    await page.screenshot(path=str(target / "job.png"))
    async with httpx.AsyncClient(base_url=base) as http:  # one failure, for the picture
        headers = {"X-Correlation-Id": "keeper-gpu-check"}
        body = {"operation": "hive_get", "alias": "gpu-2"}
        await http.post("/v1/jobs", json=body, headers=headers)
    await page.goto(f"{base}/ui/")
    await expect(page.locator("table.jobs tbody tr")).to_have_count(4)
    await expect(page.locator("table.jobs tbody tr .badge").first).to_have_text("failed")
    await page.screenshot(path=str(target / "jobs.png"))
