"""The job page: events as they arrive, in order, one terminal banner, gaps, filters, scroll."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect
from viewer_helpers import drawn_ids, emit, event_ids, open_job, rows, wait_events

from narration import Level, n, narration_context
from narration.testing import NarrationTestHarness

pytestmark = pytest.mark.browser

HELD = {"operation": "hive_list"}  # the harness holds jobs without a handler open


@pytest.mark.parametrize("terminal", ["done", "error", "cancelled"])
async def test_a_thousand_live_events_in_order_then_one_terminal_banner(
    page: Page, harness: NarrationTestHarness, terminal: str
) -> None:
    job_id = await harness.submit_job(HELD)
    await open_job(page, harness.base_url, job_id)
    await expect(page.locator(".statusbar")).to_have_attribute("data-connection", "live")
    emit(harness, job_id, 1000)
    await wait_events(page, 1000)
    if terminal == "done":
        await harness.complete_job(job_id)
    elif terminal == "error":
        await harness.fail_job(job_id, "worker exited with code 3")
    else:
        response = await harness.http.delete(f"/v1/jobs/{job_id}")
        assert response.status_code == 200
    banner = page.locator(".banner")
    await expect(banner).to_have_attribute("data-terminal", terminal)
    await expect(page.locator(".statusbar")).to_have_attribute("data-connection", "closed")
    assert await banner.count() == 1
    text = await banner.inner_text()
    if terminal == "error":
        assert "Error" in text and "worker exited with code 3" in text
    elif terminal == "cancelled":
        assert "Cancelled" in text
    else:
        assert "Done" in text
    assert await event_ids(page) == list(range(1, 1001))
    # Following the newest: the last rows are on screen, in order.
    drawn = await drawn_ids(page)
    assert drawn[-1] == 1000 and drawn == list(range(drawn[0], 1001))
    state = {"done": "completed", "error": "failed", "cancelled": "cancelled"}[terminal]
    await expect(page.locator(".title-row .badge")).to_have_text(state)


async def test_a_finished_job_loads_whole_with_its_banner(
    page: Page, harness: NarrationTestHarness
) -> None:
    job_id = await harness.submit_job(HELD)
    emit(harness, job_id, 1000)
    await harness.complete_job(job_id)
    await open_job(page, harness.base_url, job_id)
    await expect(page.locator(".banner")).to_have_attribute("data-terminal", "done")
    assert await event_ids(page) == list(range(1, 1001))
    assert await page.locator(".banner").count() == 1


async def test_a_gap_shows_as_a_row_counting_the_events_not_kept(page: Page) -> None:
    harness = await NarrationTestHarness.start(max_events=100)
    try:
        job_id = await harness.submit_job(HELD)
        emit(harness, job_id, 250)
        await harness.complete_job(job_id)
        await open_job(page, harness.base_url, job_id)
        await expect(page.locator(".banner")).to_have_attribute("data-terminal", "done")
        kinds = [row["kind"] for row in await rows(page)]
        assert kinds == ["gap"] + ["event"] * 100
        assert await event_ids(page) == list(range(151, 251))
        await page.locator(".log").evaluate("el => el.scrollTop = 0")
        gap = page.locator(".row.gap")
        await expect(gap).to_contain_text("150 events not kept")
        await expect(gap).to_contain_text("next is #151")
    finally:
        await harness.stop()


async def test_an_unknown_job_says_so(page: Page, harness: NarrationTestHarness) -> None:
    unknown = "job-00000000-0000-4000-8000-000000000000"
    await open_job(page, harness.base_url, unknown)
    notice = page.locator(".notice-warn")
    await expect(notice.locator("h2")).to_have_text("Job not found")
    await expect(notice).to_contain_text(unknown)
    await expect(notice).to_contain_text("expired")
    await page.goto(f"{harness.base_url}/ui/#/jobs/not-a-job-id")
    await expect(page.locator(".notice-warn h2")).to_have_text("Job not found")


async def test_filters_by_level_actor_and_text_and_modes_switch_the_text(
    page: Page, harness: NarrationTestHarness
) -> None:
    job_id = await harness.submit_job(HELD)
    with narration_context(harness.job_context(job_id)):
        n("boot", "Booting the hive", cute="The hive wakes up 🐝", story="Once, a hive woke")
        n("spawn", "Spawning worker on GPU {}", 0, level=Level.WARN, gpu=0)
        with narration_context(actor="worker"):
            n("load", "Loading model ünïcødé 模型", level=Level.ERROR, model="tiny")
            n("token", '<img src=x onerror="window.pwned=1"> is text')
    await harness.complete_job(job_id)
    await open_job(page, harness.base_url, job_id)
    await wait_events(page, 4)
    log = page.locator(".log .row.event")
    await expect(log).to_have_count(4)

    await page.select_option(".f-level", "warn")
    await expect(log).to_have_count(2)
    await expect(page.locator(".statusbar .counts")).to_have_text("4 events · 2 shown")
    await page.select_option(".f-level", "trace")
    await page.select_option(".f-actor", "worker")
    await expect(log).to_have_count(2)
    await expect(log.locator(".actor")).to_have_text(["worker", "worker"])
    await page.select_option(".f-actor", "")
    await page.fill(".f-text", "GPU")
    await expect(log).to_have_count(1)
    await expect(log.locator(".human")).to_have_text("Spawning worker on GPU 0")
    await page.fill(".f-text", "")
    await expect(log).to_have_count(4)

    # Unicode and markup stay text inside their event.
    await expect(log.nth(2).locator(".human")).to_have_text("Loading model ünïcødé 模型")
    markup = '<img src=x onerror="window.pwned=1"> is text'
    await expect(log.nth(3).locator(".human")).to_have_text(markup)
    assert await page.evaluate("window.pwned === undefined && !document.querySelector('.log img')")

    await page.select_option(".f-mode", "cute")
    await expect(log.first.locator(".human")).to_have_text("The hive wakes up 🐝")
    await expect(log.nth(1).locator(".human")).to_have_text("Spawning worker on GPU 0")
    await page.select_option(".f-mode", "story")
    await expect(log.first.locator(".human")).to_have_text("Once, a hive woke")

    # Fields on demand: a column, and every key in the detail panel of a clicked row.
    await page.check(".f-fields")
    await expect(log.nth(1).locator(".fields")).to_have_text("gpu=0")
    await log.nth(2).click()
    details = page.locator(".side .details")
    await expect(details.locator("h3")).to_have_text("Event #3")
    await expect(details).to_contain_text('"model": "tiny"')
    await expect(details).to_contain_text(job_id)


async def test_auto_scroll_pauses_when_the_reader_scrolls_up(
    page: Page, harness: NarrationTestHarness
) -> None:
    job_id = await harness.submit_job(HELD)
    emit(harness, job_id, 500)
    await open_job(page, harness.base_url, job_id)
    await wait_events(page, 500)
    assert (await drawn_ids(page))[-1] == 500
    await page.locator(".log").evaluate("el => el.scrollTop = 0")
    await page.locator(".log").dispatch_event("scroll")
    await expect(page.locator(".log .row.event").first).to_have_attribute("data-id", "1")
    emit(harness, job_id, 50, start=500)
    await wait_events(page, 550)
    jump = page.locator(".jump")
    await expect(jump).to_have_text("↓ 50 new events")
    assert await page.locator(".log").evaluate("el => el.scrollTop") == 0
    assert (await drawn_ids(page))[0] == 1
    await jump.click()
    await expect(jump).to_be_hidden()
    await page.wait_for_function(
        "() => [...document.querySelectorAll('.log .row.event:not([hidden])')]"
        ".some(r => r.dataset.id === '550')"
    )
    emit(harness, job_id, 10, start=550)
    await wait_events(page, 560)
    await page.wait_for_function(
        "() => [...document.querySelectorAll('.log .row.event:not([hidden])')]"
        ".some(r => r.dataset.id === '560')"
    )
    await harness.complete_job(job_id)
    await expect(page.locator(".banner")).to_have_attribute("data-terminal", "done")
    # The backlog was read with fetch, the rest live with EventSource: each event once.
    assert await event_ids(page) == list(range(1, 561))
