"""Reading the viewer's pages from a test: what the page shows, and what it holds."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page

from narration import n, narration_context
from narration.testing import NarrationTestHarness


async def open_job(page: Page, base_url: str, job_id: str) -> None:
    """Open the job page and wait until it reads the job's stream (or says why it cannot)."""
    await page.goto(f"{base_url}/ui/#/jobs/{job_id}")
    await page.wait_for_selector(".job-page .statusbar, .notice-warn, .notice-error")


async def wait_events(page: Page, count: int, timeout: float = 15_000) -> None:
    """Wait until the page's status bar counts `count` events."""
    await page.wait_for_function(
        "n => document.querySelector('.statusbar')?.dataset.events === String(n)",
        arg=count,
        timeout=timeout,
    )


async def rows(page: Page) -> list[dict[str, Any]]:
    """Every row the page's event list holds (drawn or not): kind, job, id, actor, ts, name."""
    result: list[dict[str, Any]] = await page.evaluate("narrationViewer.list.snapshot()")
    return result


async def event_ids(page: Page) -> list[int]:
    """The ids of the event rows, in display order."""
    return [row["id"] for row in await rows(page) if row["kind"] == "event"]


async def drawn_ids(page: Page) -> list[int]:
    """The ids of the event rows on screen (in the DOM), top to bottom."""
    ids: list[int] = await page.evaluate(
        """() => [...document.querySelectorAll('.log .row.event:not([hidden])')]
            .sort((a, b) => a.index - b.index).map(r => Number(r.dataset.id))"""
    )
    return ids


def emit(harness: NarrationTestHarness, job_id: str, count: int, start: int = 0) -> None:
    """Narrate `count` events into the job: `step i` with field `i`."""
    with narration_context(harness.job_context(job_id)):
        for i in range(start, start + count):
            n("step", "step {}", i, i=i)
