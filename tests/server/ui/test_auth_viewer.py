"""The viewer on a server with API keys, in Chromium: it asks for a key, keeps it for the tab,
follows a job with EventSource through a stream token, and a token reads its own job only,
until it expires."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, Request, expect
from viewer_helpers import emit, event_ids, open_job, wait_events

from auth_helpers import ALICE, BOB, SPECS
from narration.testing import NarrationTestHarness

pytestmark = pytest.mark.browser

HELD = {"operation": "hive_list"}

# Opens an EventSource on `url` in the page; resolves with what it got before its first
# connection error (or its terminal): the events' data, and whether it failed.
_EVENT_SOURCE = """async (url) => new Promise((resolve) => {
  const got = [];
  const source = new EventSource(url);
  const stop = (failed) => { source.close(); resolve({ got, failed }); };
  source.addEventListener("narration", (m) => got.push(JSON.parse(m.data).human));
  source.addEventListener("done", () => stop(false));
  source.onerror = () => stop(true);
  setTimeout(() => stop(true), 8000);
})"""


async def test_the_viewer_asks_for_a_key_and_streams_with_a_token(page: Page) -> None:
    async with NarrationTestHarness(api_keys=SPECS, stream_token_ttl_s=2) as harness:
        job_id = (await _submit(harness, ALICE)).json()["job_id"]
        streams: list[Request] = []
        page.on("request", lambda r: streams.append(r) if "/stream" in r.url else None)
        await open_job(page, harness.base_url, job_id)
        form = page.locator("form.key-form")
        await expect(form.locator("h2")).to_have_text("API key needed")
        await page.fill("#api-key", ALICE.key)
        await form.locator("button").click()
        await expect(page.locator(".statusbar")).to_have_attribute("data-connection", "live")
        emit(harness, job_id, 20)
        await wait_events(page, 20)
        await harness.complete_job(job_id)
        await expect(page.locator(".banner")).to_have_attribute("data-terminal", "done")
        assert await event_ids(page) == list(range(1, 21))
        live = [r for r in streams if r.resource_type == "eventsource"]
        assert live and all("token=" in r.url for r in live)
        assert all("authorization" not in r.headers for r in live)  # EventSource cannot
        stored = await page.evaluate("sessionStorage.getItem('narration.apiKey')")
        assert stored == ALICE.key
        await expect(page.locator("#forget-key")).to_be_visible()


async def test_a_stream_token_opens_its_own_job_only_until_it_expires(page: Page) -> None:
    # 3 s: long enough for the page to load and read under a loaded CI machine (1 s was not).
    async with NarrationTestHarness(api_keys=SPECS, stream_token_ttl_s=3) as harness:
        mine = (await _submit(harness, ALICE)).json()
        other = (await _submit(harness, BOB)).json()
        emit(harness, mine["job_id"], 3)
        await harness.complete_job(mine["job_id"])
        await page.goto(f"{harness.base_url}/ui/")  # a page of the server's origin
        token = mine["sse_url"].split("token=", 1)[1]
        read: dict[str, Any] = await page.evaluate(_EVENT_SOURCE, mine["sse_url"])
        foreign_url = f"/v1/jobs/{other['job_id']}/stream?token={token}"
        foreign: dict[str, Any] = await page.evaluate(_EVENT_SOURCE, foreign_url)
        expired: dict[str, Any] = {"failed": False}
        for _ in range(40):  # bounded (~12 s): tokens are checked to the second (3-4 s here)
            expired = await page.evaluate(_EVENT_SOURCE, mine["sse_url"])
            if expired["failed"]:
                break
            await page.wait_for_timeout(300)
    assert read == {"got": ["step 0", "step 1", "step 2"], "failed": False}
    assert foreign == {"got": [], "failed": True}
    assert expired == {"got": [], "failed": True}


async def _submit(harness: NarrationTestHarness, key: Any) -> Any:
    response = await harness.http.post("/v1/jobs", json=HELD, headers=key.headers)
    assert response.status_code == 201, response.text
    return response


async def test_the_correlation_page_streams_every_job_of_the_tenant(page: Page) -> None:
    async with NarrationTestHarness(api_keys=SPECS) as harness:
        headers = {**ALICE.headers, "X-Correlation-Id": "corr-auth-1"}
        ids = []
        for _ in range(2):
            response = await harness.http.post("/v1/jobs", json=HELD, headers=headers)
            ids.append(response.json()["job_id"])
        bobs = await harness.http.post(
            "/v1/jobs", json=HELD, headers={**BOB.headers, "X-Correlation-Id": "corr-auth-1"}
        )
        await page.add_init_script(f"sessionStorage.setItem('narration.apiKey', '{ALICE.key}')")
        await page.goto(f"{harness.base_url}/ui/#/correlations/corr-auth-1")
        await expect(page.locator(".strip-job")).to_have_count(2)  # not bob's job
        for job_id in ids:
            emit(harness, job_id, 3)
            await harness.complete_job(job_id)
        await page.wait_for_function(
            "() => narrationViewer.list && narrationViewer.list.rows.filter("
            "r => r.kind === 'terminal').length === 2"
        )
        held = await page.evaluate("narrationViewer.list.snapshot()")
        await harness.complete_job(bobs.json()["job_id"])
    events = sorted((row["job"], row["id"]) for row in held if row["kind"] == "event")
    assert events == sorted((job_id, i) for job_id in ids for i in (1, 2, 3))
