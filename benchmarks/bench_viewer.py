"""The web viewer with a job of 100,000 events: time to render it and the page's memory.

Run: `python -m benchmarks.bench_viewer` (`--events N` for another size, `--quick` for 10,000).
Not part of `make bench` or `make test`. Needs Debian's Chromium (`make env` installs it).

Two cases, each in a fresh page of one headless Chromium, against a real server on 127.0.0.1:

- replay: the job is finished before the page opens; the page reads all N events and the
  terminal from the stream (time from navigation to the last row counted and the banner shown);
- live: the page is open on a running job while N events are narrated into it in bursts of
  1,000 (time from the first event emitted to the page counting all N).

Then, on the loaded page: the JS heap after a garbage collection (CDP `Performance.getMetrics`,
`JSHeapUsedSize`), the DOM node count (rows on screen only: the list is virtualized), the time
to draw after jumping to 20 scroll positions, and the time to apply a text filter to all rows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from typing import Any

from playwright.async_api import Browser, Page, async_playwright

from narration import n, narration_context
from narration.testing import NarrationTestHarness

CHROMIUM = os.environ.get("NARRATION_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--enable-precise-memory-info",
]
HELD = {"operation": "hive_list"}


def _narrate(harness: NarrationTestHarness, job_id: str, start: int, count: int) -> None:
    with narration_context(harness.job_context(job_id)):
        for i in range(start, start + count):
            n("token", "Generated token {} of the answer: {}", i, "sky", i=i, gpu=0)


async def _wait_loaded(page: Page, events: int, timeout_s: float) -> None:
    await page.wait_for_function(
        "n => document.querySelector('.statusbar')?.dataset.events === String(n)",
        arg=events,
        timeout=timeout_s * 1000,
        polling=50,
    )


async def _metrics(page: Page) -> dict[str, float]:
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("HeapProfiler.enable")
    await cdp.send("HeapProfiler.collectGarbage")
    await cdp.send("Performance.enable")
    raw = await cdp.send("Performance.getMetrics")
    values = {m["name"]: m["value"] for m in raw["metrics"]}
    await cdp.detach()
    return {
        "js_heap_used_mib": values["JSHeapUsedSize"] / 2**20,
        "dom_nodes": values["Nodes"],
    }


async def _scroll_frames(page: Page, jumps: int = 20) -> list[float]:
    """Milliseconds to redraw the list (DOM updated and laid out) after a scroll jump."""
    result: list[float] = await page.evaluate(
        """async (jumps) => {
            const list = narrationViewer.list;
            const el = list.el;
            const times = [];
            for (let i = 0; i < jumps; i++) {
                await new Promise(r => requestAnimationFrame(r));
                const t0 = performance.now();
                el.scrollTop = ((i * 7919) % jumps) / jumps * (el.scrollHeight - el.clientHeight);
                list.render();
                el.getBoundingClientRect(); void el.offsetHeight;
                times.push(performance.now() - t0);
            }
            return times;
        }""",
        jumps,
    )
    return result


async def _filter_ms(page: Page) -> float:
    elapsed: float = await page.evaluate(
        """() => {
            const list = narrationViewer.list;
            const t0 = performance.now();
            list.setFilter({text: 'token 99'});
            const shown = list.view.length;
            list.setFilter({text: ''});
            return (performance.now() - t0) / 2 + shown * 0;
        }"""
    )
    return elapsed


async def _case(browser: Browser, events: int, live: bool) -> dict[str, Any]:
    harness = await NarrationTestHarness.start(max_events=max(events, 100_000))
    context = await browser.new_context(viewport={"width": 1280, "height": 760})
    page = await context.new_page()
    try:
        job_id = await harness.submit_job(HELD)
        url = f"{harness.base_url}/ui/#/jobs/{job_id}"
        if live:
            await page.goto(url)
            await page.wait_for_selector(".statusbar[data-connection='live']")
            start = time.perf_counter()
            for first in range(0, events, 1000):
                _narrate(harness, job_id, first, min(1000, events - first))
                await asyncio.sleep(0)  # let the server write between bursts
            await _wait_loaded(page, events, 300)
            elapsed = time.perf_counter() - start
            await harness.complete_job(job_id)
            await page.wait_for_selector(".banner[data-terminal='done']")
        else:
            _narrate(harness, job_id, 0, events)
            await harness.complete_job(job_id)
            start = time.perf_counter()
            await page.goto(url)
            await _wait_loaded(page, events, 300)
            await page.wait_for_selector(".banner[data-terminal='done']")
            elapsed = time.perf_counter() - start
        ids: list[int] = await page.evaluate(
            "narrationViewer.list.rows.map(r => r.event ? r.event.id : 0)"
        )
        assert ids == list(range(1, events + 1)), "rows missing or out of order"
        frames = await _scroll_frames(page)
        return {
            "case": "live" if live else "replay",
            "events": events,
            "render_s": round(elapsed, 3),
            "events_per_s": round(events / elapsed),
            **{k: round(v, 1) for k, v in (await _metrics(page)).items()},
            "scroll_frame_ms_median": round(statistics.median(frames), 1),
            "scroll_frame_ms_max": round(max(frames), 1),
            "text_filter_ms": round(await _filter_ms(page), 1),
        }
    finally:
        await context.close()
        await harness.stop()


async def run(events: int) -> list[dict[str, Any]]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            results = [await _case(browser, events, live=False)]
            results.append(await _case(browser, events, live=True))
            results.append({"chromium": browser.version})
            return results
        finally:
            await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="10,000 events")
    options = parser.parse_args()
    events = 10_000 if options.quick else options.events
    for result in asyncio.run(run(events)):
        print(json.dumps(result))


if __name__ == "__main__":
    main()
