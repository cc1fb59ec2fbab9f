"""The jobs page: live (new jobs appear, states change without a reload), filters, links."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect
from viewer_helpers import emit

from narration.testing import NarrationTestHarness

pytestmark = pytest.mark.browser


async def test_a_job_created_after_the_page_loaded_appears_and_changes_state(
    page: Page, harness: NarrationTestHarness
) -> None:
    await page.goto(f"{harness.base_url}/")
    assert page.url == f"{harness.base_url}/ui/"
    await expect(page.locator(".empty")).to_contain_text("No jobs yet")

    job_id = await harness.submit_job({"operation": "hive_list"}, correlation_id="corr-live-1")
    row = page.locator(f'tr[data-job-id="{job_id}"]')
    await expect(row.locator(".badge")).to_have_text("running")
    await expect(row.locator(".c-corr")).to_have_text("corr-live-1")
    await expect(row.locator(".op-name")).to_have_text("hive_list")
    emit(harness, job_id, 7)
    await expect(row.locator(".c-events")).to_have_text("7")
    await harness.complete_job(job_id)
    await expect(row.locator(".badge")).to_have_text("completed")
    await expect(page.locator(".page-head .muted")).to_have_text("1 job · 0 running")

    await row.locator(".c-op").click()
    await expect(page.locator(".job-page h1")).to_have_text("hive_list")
    assert page.url.endswith(f"/ui/#/jobs/{job_id}")


async def test_newest_first_and_filters_by_state_and_operation(
    page: Page, harness: NarrationTestHarness
) -> None:
    held = await harness.submit_job({"operation": "hive_list"})
    status = await harness.submit_job({"operation": "status"})  # completes by itself
    failed = await harness.submit_job({"operation": "hive_list"})
    await harness.fail_job(failed, "no hives")
    await page.goto(f"{harness.base_url}/ui/")
    rows = page.locator("table.jobs tbody tr")
    await expect(rows).to_have_count(3)
    assert [await r.get_attribute("data-job-id") for r in await rows.all()] == [
        failed,
        status,
        held,
    ]
    await page.select_option(".f-state", "completed")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-job-id", status)
    await page.select_option(".f-state", "")
    await expect(rows).to_have_count(3)
    await page.select_option(".f-operation", "hive_list")
    await expect(rows).to_have_count(2)
    await expect(rows.locator(".badge")).to_have_text(["failed", "running"])
    await page.select_option(".f-state", "cancelled")
    await expect(page.locator(".empty")).to_have_text("No jobs match these filters.")

    await page.goto(f"{harness.base_url}/ui/#/no/such/page")
    await expect(page.locator(".notice-warn h2")).to_have_text("No such page")
