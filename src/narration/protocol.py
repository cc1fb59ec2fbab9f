"""The names on the wire, once: HTTP headers, SSE event names, and terminal event <-> job state.

`wire.py` builds the frames from these; servers, clients, the viewer's tests and the stores
import the names from here rather than spelling them again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = [
    "CORRELATION_HEADER",
    "EVENT_GAP",
    "EVENT_NARRATION",
    "LAST_EVENT_ID_HEADER",
    "PARENT_JOB_HEADER",
    "TERMINAL_EVENTS",
    "TERMINAL_STATES",
    "TRACEPARENT_HEADER",
    "TRACESTATE_HEADER",
    "raw_header",
]

CORRELATION_HEADER: Final = "X-Correlation-Id"
"""The request's correlation id: kept when valid, made when absent, echoed on every answer."""
PARENT_JOB_HEADER: Final = "X-Parent-Job-Id"
"""The caller's job, when a job calls another service."""
TRACEPARENT_HEADER: Final = "traceparent"
TRACESTATE_HEADER: Final = "tracestate"
LAST_EVENT_ID_HEADER: Final = "Last-Event-ID"
"""What a reconnecting SSE client sends: the id of the last event it read."""

EVENT_NARRATION: Final = "narration"
"""The SSE event name of a narration event (every event is named: `onmessage` never fires)."""
EVENT_GAP: Final = "gap"
"""The SSE event name saying the log dropped events this reader had not read."""

TERMINAL_EVENTS: Final[Mapping[str, str]] = {
    "completed": "done",
    "failed": "error",
    "cancelled": "cancelled",
}
"""A job's final state -> the SSE event name that ends its stream."""
TERMINAL_STATES: Final[Mapping[str, str]] = {name: state for state, name in TERMINAL_EVENTS.items()}
"""The terminal SSE event name -> the final state it announces (what clients decide by)."""


def raw_header(name: str) -> bytes:
    """`name` as an ASGI header name: lowercase bytes."""
    return name.lower().encode("latin-1")
