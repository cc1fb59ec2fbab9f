"""The pytest plugin (entry point `pytest11`): `narration_capture` and `narration_harness`.

`narration_harness` is an async fixture that works in every async test style:

- pytest-asyncio in its default strict mode (`@pytest.mark.asyncio` tests) and in auto mode;
- anyio's pytest plugin (`@pytest.mark.anyio` tests, asyncio backend: uvicorn needs asyncio),
  with pytest-asyncio absent or in strict mode (in auto mode pytest-asyncio claims every async
  fixture, yours too, for its own event loop).

It serves no operations of yours: submitted operations are held open (see
`NarrationTestHarness`). For your registry, start one in your own fixture:
`async with NarrationTestHarness(jobs) as harness: yield harness`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .capture import CapturedEvents, capture

if TYPE_CHECKING:
    from .harness import NarrationTestHarness

_ASYNC_FIXTURES = frozenset({"narration_harness"})


@pytest.fixture
def narration_capture() -> Iterator[CapturedEvents]:
    """The events emitted by this test (its own context only)."""
    with capture() as captured:
        yield captured


async def _narration_harness() -> AsyncIterator[NarrationTestHarness]:
    """A real narration server on an ephemeral 127.0.0.1 port, stopped after the test."""
    from .harness import NarrationTestHarness

    async with NarrationTestHarness() as harness:
        yield harness


# pytest-asyncio's mark for fixtures it runs even in strict mode (what @pytest_asyncio.fixture
# sets), without a hard dependency on pytest-asyncio.
_narration_harness._force_asyncio_fixture = True  # type: ignore[attr-defined]
_narration_harness._loop_scope = None  # type: ignore[attr-defined]
narration_harness = pytest.fixture(_narration_harness, name="narration_harness")


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_fixture_setup(fixturedef: Any, request: Any) -> Generator[None, Any, None]:
    """Under anyio, leave this plugin's async fixtures to anyio's plugin (which runs them in
    the test's own event loop) rather than to pytest-asyncio."""
    func = fixturedef.func
    if fixturedef.argname not in _ASYNC_FIXTURES or "anyio_backend" not in request.fixturenames:
        yield
        return
    del func._force_asyncio_fixture
    try:
        yield
    finally:
        func._force_asyncio_fixture = True
