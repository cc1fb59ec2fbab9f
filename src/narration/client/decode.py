"""The data of a job stream's SSE events, decoded: `narration` events, `gap`s and terminals."""

from __future__ import annotations

import json

import msgspec

from ..events import NarrationEvent, decode_event
from ..protocol import TERMINAL_STATES
from .errors import JobClientError
from .models import Gap, Terminal

__all__ = ["TERMINAL_STATES", "decode_gap", "decode_narration", "decode_terminal", "sse_id"]


def sse_id(raw: str) -> int | None:
    """The numeric SSE id, or None when absent or not a number."""
    return int(raw) if raw.isdigit() else None


def decode_narration(data: str, raw_id: str) -> NarrationEvent:
    """Decode an `event: narration` payload; its `id` is the SSE id (the stream's number)."""
    try:
        event = decode_event(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise JobClientError(
            None, "invalid_event", f"undecodable narration event: {error}"
        ) from None
    number = sse_id(raw_id)
    if number is not None and number != event.id:
        event = msgspec.structs.replace(event, id=number)
    return event


def decode_gap(data: str) -> Gap:
    """Decode an `event: gap` payload, `{"missed": n, "next_id": id}`."""
    try:
        payload = json.loads(data)
        return Gap(missed=int(payload["missed"]), next_id=int(payload["next_id"]))
    except (ValueError, TypeError, KeyError) as error:
        raise JobClientError(None, "invalid_event", f"undecodable gap event: {error}") from None


def decode_terminal(job_id: str, name: str, data: str, raw_id: str) -> Terminal:
    """The `Terminal` of a `done`/`error`/`cancelled` event: the state comes from its name."""
    try:
        payload = json.loads(data) if data else {}
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    error = payload.get("error")
    return Terminal(
        job_id=str(payload.get("job_id") or job_id),
        state=TERMINAL_STATES[name],
        error=None if error is None else str(error),
        id=sse_id(raw_id),
    )
