"""Test helpers: per-context event capture, a real-server harness, and (`.sse`) an SSE parser."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .capture import CapturedEvents, capture

__all__ = ["CapturedEvents", "MultiServiceHarness", "NarrationTestHarness", "capture"]

if TYPE_CHECKING:
    from .harness import NarrationTestHarness
    from .multiservice import MultiServiceHarness


def __getattr__(name: str) -> Any:
    # The harness pulls in the server stack; import it only when asked for.
    if name == "NarrationTestHarness":
        from .harness import NarrationTestHarness

        return NarrationTestHarness
    if name == "MultiServiceHarness":
        from .multiservice import MultiServiceHarness

        return MultiServiceHarness
    raise AttributeError(name)
