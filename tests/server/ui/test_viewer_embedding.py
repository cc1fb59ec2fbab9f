"""The viewer where it is embedded or where jobs relay each other on one server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Page, expect
from starlette.applications import Starlette
from starlette.routing import Mount
from viewer_helpers import event_ids, rows, wait_events

from narration import n, narration_context
from narration.emit import relay
from narration.server import create_app, make_server
from narration.testing import NarrationTestHarness, capture

pytestmark = pytest.mark.browser


@pytest_asyncio.fixture(loop_scope="session")
async def mounted() -> AsyncIterator[str]:
    """A host app with the narration app mounted at /tools/narration: its base URL."""
    narration = create_app()
    host = Starlette(routes=[Mount("/tools/narration", app=narration)])
    server = make_server(host, "127.0.0.1", 0)
    task = await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}/tools/narration"
    finally:
        server.should_exit = True
        await task


async def test_the_viewer_works_under_a_mount_prefix(page: Page, mounted: str) -> None:
    await page.goto(f"{mounted}/")
    assert page.url == f"{mounted}/ui/"
    await expect(page.locator(".empty")).to_contain_text("No jobs yet")
    await expect(page.locator(".empty pre")).to_contain_text(f"{mounted}/v1/jobs")
    await page.evaluate(
        """base => fetch(base + '/v1/jobs', {method: 'POST',
            headers: {'Content-Type': 'application/json'}, body: '{"operation": "status"}'})""",
        mounted,
    )
    row = page.locator("table.jobs tbody tr")
    await expect(row.locator(".badge")).to_have_text("completed")
    await row.locator(".c-op").click()
    await expect(page.locator(".banner")).to_have_attribute("data-terminal", "done")
    assert await event_ids(page) == [1]
    await expect(page.locator(".log .row.event .human")).to_contain_text("Server is up")


async def test_a_relayed_event_shows_once_when_its_own_job_is_on_the_page(
    page: Page, harness: NarrationTestHarness
) -> None:
    parent = await harness.submit_job({"operation": "hive_list"}, correlation_id="relay-1")
    response = await harness.http.post(
        "/v1/jobs",
        json={"operation": "hive_list"},
        headers={"X-Correlation-Id": "relay-1", "X-Parent-Job-Id": parent},
    )
    child = response.json()["job_id"]
    with capture() as captured, narration_context(harness.job_context(child)):
        n("work", "Working in the child")
    with narration_context(harness.job_context(parent)):
        n("forward", "Forwarded to the child")
        relay(captured.events[0], origin=f"hive:{child}#1")
    await harness.complete_job(child)
    await harness.complete_job(parent)
    assert [job["events"] for job in (await harness.http.get("/v1/jobs")).json()] == [1, 2]

    await page.goto(f"{harness.base_url}/ui/#/correlations/relay-1")
    await wait_events(page, 2)
    await page.wait_for_function(
        "() => narrationViewer.list.rows.filter(r => r.kind === 'terminal').length === 2"
    )
    events = [(row["job"], row["id"]) for row in await rows(page) if row["kind"] == "event"]
    assert sorted(events) == sorted([(parent, 1), (child, 1)])
    # The jobs strip nests the child under its parent.
    strip = page.locator(".strip-job")
    await expect(strip).to_have_count(2)
    await expect(strip.nth(0)).to_have_attribute("data-job-id", parent)
    await expect(strip.nth(1)).to_have_attribute("data-job-id", child)
    assert await strip.nth(1).evaluate("el => el.style.getPropertyValue('--depth')") == "1"


async def test_an_unknown_correlation_says_so(page: Page, harness: NarrationTestHarness) -> None:
    await page.goto(f"{harness.base_url}/ui/#/correlations/no-such-correlation")
    notice = page.locator(".notice-warn")
    await expect(notice.locator("h2")).to_have_text("No jobs for this correlation id")
    await expect(notice).to_contain_text("no-such-correlation")
