"""Dropped connections, as a browser lives them: EventSource resumes with Last-Event-ID and the
page shows every event exactly once, also after reading a backlog with fetch first."""

from __future__ import annotations

import re

import pytest
from dropping_proxy import DroppingProxy
from playwright.async_api import Page, expect
from viewer_helpers import emit, event_ids, open_job, wait_events

from narration.testing import NarrationTestHarness

pytestmark = pytest.mark.browser


def _cursor(head: str) -> tuple[str | None, str | None]:
    """(the `after` query value, the Last-Event-ID header) of a stream request."""
    after = re.search(r"[?&]after=(\d+)", head.split("\r\n", 1)[0])
    last = re.search(r"(?im)^last-event-id: *(\d+)", head)
    return (after.group(1) if after else None, last.group(1) if last else None)


async def test_two_dropped_connections_resume_without_duplicate_or_missing_rows(
    page: Page, harness: NarrationTestHarness
) -> None:
    backlog = 150
    proxy = await DroppingProxy(int(harness.base_url.rsplit(":", 1)[1])).start()
    try:
        job_id = await harness.submit_job({"operation": "hive_list"})
        emit(harness, job_id, backlog)  # a backlog is read with fetch, then EventSource follows
        await open_job(page, proxy.url, job_id)
        status = page.locator(".statusbar")
        await expect(status).to_have_attribute("data-connection", "live")
        emit(harness, job_id, 300 - backlog, start=backlog)
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
        cursors = [_cursor(head) for head in proxy.stream_requests()]
        # The backlog read with fetch, EventSource from ?after=150, then the browser's own
        # resumes with Last-Event-ID.
        assert cursors == [(None, None), ("150", None), ("150", "300"), ("150", "600")]
    finally:
        await proxy.stop()


def _port(harness: NarrationTestHarness) -> int:
    return int(harness.base_url.rsplit(":", 1)[1])


async def test_a_server_restarted_without_the_job_shows_it_is_gone(
    page: Page, harness: NarrationTestHarness
) -> None:
    proxy = await DroppingProxy(_port(harness)).start()
    fresh = await NarrationTestHarness.start()  # the "restarted" server: no such job
    try:
        job_id = await harness.submit_job({"operation": "hive_list"})
        await open_job(page, proxy.url, job_id)
        await expect(page.locator(".statusbar")).to_have_attribute("data-connection", "live")
        emit(harness, job_id, 10)
        await wait_events(page, 10)
        proxy.upstream_port = _port(fresh)
        proxy.drop()
        banner = page.locator(".banner")
        await expect(banner).to_have_class("banner banner-gone")
        await expect(banner).to_contain_text("no longer on the server")
        assert await event_ids(page) == list(range(1, 11))  # what was read stays readable
        await expect(page.locator(".statusbar")).to_have_attribute("data-connection", "closed")
    finally:
        await proxy.stop()
        await fresh.stop()


@pytest.mark.redis
async def test_a_restarted_server_on_redis_continues_the_stream(page: Page, redis_url: str) -> None:
    first = await NarrationTestHarness.start(store=redis_url)
    second = await NarrationTestHarness.start(store=redis_url)  # the server after the restart
    proxy = await DroppingProxy(_port(first)).start()
    try:
        job_id = await first.submit_job({"operation": "hive_list"})
        await open_job(page, proxy.url, job_id)
        await expect(page.locator(".statusbar")).to_have_attribute("data-connection", "live")
        emit(first, job_id, 200)
        await wait_events(page, 200)
        proxy.upstream_port = _port(second)
        proxy.drop()
        emit(first, job_id, 200, start=200)
        await wait_events(page, 400)
        await first.complete_job(job_id)
        await expect(page.locator(".banner")).to_have_attribute("data-terminal", "done")
        assert await event_ids(page) == list(range(1, 401))
        assert [_cursor(head) for head in proxy.stream_requests()] == [
            (None, None),
            (None, "200"),
        ]
    finally:
        await proxy.stop()
        await second.stop()
        await first.stop()
