"""Dropped connections, as a browser lives them: EventSource resumes with Last-Event-ID and the
page shows every event exactly once."""

from __future__ import annotations

import re

from dropping_proxy import DroppingProxy
from playwright.async_api import Page, expect
from viewer_helpers import emit, event_ids, open_job, wait_events

from narration.testing import NarrationTestHarness


async def test_two_dropped_connections_resume_without_duplicate_or_missing_rows(
    page: Page, harness: NarrationTestHarness
) -> None:
    proxy = await DroppingProxy(int(harness.base_url.rsplit(":", 1)[1])).start()
    try:
        job_id = await harness.submit_job({"operation": "hive_list"})
        await open_job(page, proxy.url, job_id)
        status = page.locator(".statusbar")
        await expect(status).to_have_attribute("data-connection", "live")
        emit(harness, job_id, 300)
        await wait_events(page, 300)

        proxy.drop()  # mid-stream: the job goes on while the browser is away
        await expect(status).to_have_attribute("data-connection", "reconnecting")
        emit(harness, job_id, 300, start=300)
        await wait_events(page, 600)

        proxy.drop()
        emit(harness, job_id, 400, start=600)
        await harness.complete_job(job_id)
        await expect(page.locator(".banner")).to_have_attribute("data-terminal", "done")
        await wait_events(page, 1000)

        assert await event_ids(page) == list(range(1, 1001))
        assert await page.locator(".banner").count() == 1
        heads = proxy.stream_requests()
        resumed = [re.search(r"(?im)^last-event-id: *(\d+)", head) for head in heads]
        assert len(heads) == 3, heads
        assert resumed[0] is None
        assert [m.group(1) for m in resumed[1:] if m] == ["300", "600"]
    finally:
        await proxy.stop()
