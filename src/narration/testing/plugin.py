"""The pytest plugin (entry point `pytest11`): `narration_capture` and `narration_harness`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest

from .capture import CapturedEvents, capture

if TYPE_CHECKING:
    from .harness import NarrationTestHarness


@pytest.fixture
def narration_capture() -> Iterator[CapturedEvents]:
    """The events emitted by this test (its own context only)."""
    with capture() as captured:
        yield captured


@pytest.fixture
async def narration_harness() -> AsyncIterator[NarrationTestHarness]:
    """A real narration server on an ephemeral 127.0.0.1 port, stopped after the test."""
    from .harness import NarrationTestHarness

    harness = await NarrationTestHarness.start()
    try:
        yield harness
    finally:
        await harness.stop()
