"""Browser tests: Debian's Chromium, headless, driven by Playwright, against real servers.

One browser for the whole session (its own event loop, shared by these tests); each test gets a
fresh context and page, and fails if the page logged an error (a content security policy
violation, an exception). Chromium is /usr/bin/chromium (`make env` installs it) or
$NARRATION_CHROMIUM.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

from narration.testing import NarrationTestHarness

CHROMIUM = os.environ.get("NARRATION_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 760}
_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run every browser test in the session's event loop, where the browser lives."""
    for item in items:
        if _HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.asyncio(loop_scope="session"), append=False)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Chromium, once per session."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"no Chromium at {CHROMIUM}: `make env` installs Debian's chromium "
            "(or set NARRATION_CHROMIUM to a Chromium binary)"
        )
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page; the test fails if the page reported an error."""
    context = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    tab = await context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    tab.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" and not _expected(msg.text)
            else None
        ),
    )
    try:
        yield tab
    finally:
        await context.close()
    assert not problems, "\n".join(problems)


def _expected(text: str) -> bool:
    """Console errors a test provokes on purpose: failed loads (404, dropped connections, CORS)."""
    return text.startswith(("Failed to load resource", "Access to fetch", "Access to resource"))


@pytest_asyncio.fixture(loop_scope="session")
async def harness() -> AsyncIterator[NarrationTestHarness]:
    """A narration server in the session loop (jobs stay open until the test ends them)."""
    server = await NarrationTestHarness.start()
    try:
        yield server
    finally:
        await server.stop()


def screenshots_dir() -> Path | None:
    """Where to save screenshots (`make screenshots` sets NARRATION_SCREENSHOTS), or None."""
    target = os.environ.get("NARRATION_SCREENSHOTS")
    if not target:
        return None
    path = Path(target)
    path.mkdir(parents=True, exist_ok=True)
    return path
