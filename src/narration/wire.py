"""The SSE wire form: frames are built here once per event and sent as they are to every reader."""

from __future__ import annotations

import msgspec

from .events import NarrationEvent, encode_event
from .protocol import EVENT_GAP, EVENT_NARRATION, TERMINAL_EVENTS
from .redact import redact_event
from .safe_encode import escape_separators

__all__ = [
    "KEEPALIVE_FRAME",
    "RETRY_FRAME",
    "TERMINAL_EVENTS",
    "event_frame",
    "event_frame_from_json",
    "gap_frame",
    "terminal_data",
    "terminal_frame",
    "terminal_frame_from_json",
]

RETRY_FRAME = b"retry: 2000\n\n"
_NARRATION = EVENT_NARRATION.encode()
_GAP = EVENT_GAP.encode()
KEEPALIVE_FRAME = b": keepalive\n\n"


def event_frame(event_id: int, event: NarrationEvent) -> bytes:
    """`id: N / event: narration / data: {json}` for one event, its secrets redacted
    (unbounded: stores encode with `safe_encode` instead)."""
    data = escape_separators(encode_event(redact_event(event), event_id))
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, _NARRATION, data)


def event_frame_from_json(event_id: int, data: bytes) -> bytes:
    """The same frame from an event's JSON already numbered `event_id` (Redis entries)."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, _NARRATION, data)


def gap_frame(missed: int, next_id: int) -> bytes:
    """`event: gap` (no id line): `missed` events were dropped by retention before this reader."""
    return b'event: %s\ndata: {"missed":%d,"next_id":%d}\n\n' % (_GAP, missed, next_id)


def terminal_data(job_id: str, state: str, error: str | None) -> bytes:
    """The JSON of a terminal event (the Redis store passes it to its Lua scripts as is)."""
    return escape_separators(
        msgspec.json.encode({"job_id": job_id, "state": state, "error": error})
    )


def terminal_frame(event_id: int, job_id: str, state: str, error: str | None) -> bytes:
    """`id: N / event: done|error|cancelled / data: {job_id, state, error}`."""
    name = TERMINAL_EVENTS[state].encode()
    return terminal_frame_from_json(event_id, name, terminal_data(job_id, state, error))


def terminal_frame_from_json(event_id: int, name: bytes, data: bytes) -> bytes:
    """The same frame from a stored terminal: its event `name` and its `terminal_data` JSON."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, name, data)
