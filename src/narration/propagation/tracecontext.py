"""W3C Trace Context (Level 2): parse and build `traceparent`, mint ids, keep flags and state.

Kept free of heavy imports: a child process reads `TRACEPARENT` with this module alone, and the
HTTP middleware uses the same parser (`tracestate` has its own module, `tracestate.py`).

Rules kept here:

- every hop that sends a request (an outgoing HTTP call, a child process) names a new span id
  as the parent-id: the id of *that* request as the caller knows it;
- trace flags: the sampled (0x01) and random-trace-id (0x02) bits are passed on unchanged for a
  trace received from a caller; the other bits are sent as zero; a trace narration starts is
  sampled (narration records every event) and random (its trace id is 128 random bits): `03`.

The flags and `tracestate` of a trace are not part of `NarrationContext`; they live in their
own ContextVar, tagged with the trace id they belong to, so they are only ever sent along with
that trace (a context whose trace came from elsewhere gets the defaults: sampled, no state).
"""

from __future__ import annotations

import contextvars
import re
from random import getrandbits
from typing import NamedTuple

from ..context import NarrationContext
from .tracestate import MAX_TRACESTATE_CHARS, parse_tracestate

__all__ = [
    "FLAG_RANDOM",
    "FLAG_SAMPLED",
    "NEW_TRACE_FLAGS",
    "TraceParent",
    "bind_trace",
    "format_traceparent",
    "new_span_id",
    "new_trace_id",
    "parse_traceparent",
    "parse_traceparent_flags",
    "trace_flags_for",
    "tracestate_for",
]

FLAG_SAMPLED = 0x01
FLAG_RANDOM = 0x02
KNOWN_FLAGS = FLAG_SAMPLED | FLAG_RANDOM  # the others are reserved: sent as zero
NEW_TRACE_FLAGS = FLAG_SAMPLED | FLAG_RANDOM  # a trace narration starts
DEFAULT_FLAGS = FLAG_SAMPLED  # a trace whose flags are unknown here
MAX_TRACEPARENT_CHARS = 512  # what opentelemetry-api accepts
# version-traceid-parentid-flags, then (future versions only) "-" and anything printable.
_TRACEPARENT_RE = re.compile(
    r"[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:(-.*)|[ \t]*)"
)
_TRACE_ID_RE = re.compile(r"[0-9a-f]{32}")
_SPAN_ID_RE = re.compile(r"[0-9a-f]{16}")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_TRACESTATE_RE = re.compile(r"[\x20-\x7e]*")  # printable ASCII (the W3C alphabet is narrower)


class TraceParent(NamedTuple):
    """A parsed `traceparent`: the trace, the caller's span (our parent) and the trace flags."""

    trace_id: str
    span_id: str
    flags: int


# (trace_id, flags, tracestate header) of the trace in force; see `trace_flags_for`.
_trace: contextvars.ContextVar[tuple[str, int, str | None] | None] = contextvars.ContextVar(
    "narration_trace", default=None
)


def new_trace_id() -> str:
    """A random, non-zero W3C trace id: 32 lowercase hex digits."""
    value = getrandbits(128)
    while not value:  # pragma: no cover - one chance in 2**128
        value = getrandbits(128)
    return f"{value:032x}"


def new_span_id() -> str:
    """A random, non-zero W3C span (parent) id: 16 lowercase hex digits."""
    value = getrandbits(64)
    while not value:  # pragma: no cover - one chance in 2**64
        value = getrandbits(64)
    return f"{value:016x}"


def parse_traceparent_flags(value: str | None) -> TraceParent | None:
    """The parsed W3C `traceparent` value, or None when it is not valid.

    The W3C rules: `version-traceid-parentid-flags` in lowercase hex of 2, 32, 16 and 2 digits;
    version `ff` is invalid; version `00` has nothing after the flags, while a later version
    may add `-` and more (ignored); an all-zero trace id or parent id
    is invalid. Surrounding spaces and tabs are allowed (HTTP OWS). An invalid header is to be
    ignored, and a new trace started. `flags` keeps the known bits only (sampled, random).
    """
    if not value or len(value) > MAX_TRACEPARENT_CHARS:
        return None
    match = _TRACEPARENT_RE.fullmatch(value)
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return TraceParent(trace_id, span_id, int(flags, 16) & KNOWN_FLAGS)


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """`(trace_id, span_id)` of a W3C `traceparent` value, or None when it is not valid.

    See `parse_traceparent_flags` for the rules (and the flags).
    """
    parsed = parse_traceparent_flags(value)
    return None if parsed is None else (parsed.trace_id, parsed.span_id)


def format_traceparent(
    trace_id: str, span_id: str, sampled: bool = True, *, flags: int | None = None
) -> str:
    """`00-<trace_id>-<span_id>-<flags>`: `flags` (known bits only) when given, else `01`
    when `sampled` and `00` when not."""
    if flags is None:
        flags = FLAG_SAMPLED if sampled else 0
    return f"00-{trace_id}-{span_id}-{flags & KNOWN_FLAGS:02x}"


def valid_trace_id(value: str | None) -> bool:
    """True for 32 lowercase hex digits, not all zero."""
    return value is not None and value != _ZERO_TRACE and _TRACE_ID_RE.fullmatch(value) is not None


def valid_span_id(value: str | None) -> bool:
    """True for 16 lowercase hex digits, not all zero."""
    return value is not None and value != _ZERO_SPAN and _SPAN_ID_RE.fullmatch(value) is not None


def clean_tracestate(value: str | None) -> str | None:
    """`value` parsed and limited as a received `tracestate` (None when absent or invalid)."""
    if not value or len(value) > 8 * MAX_TRACESTATE_CHARS or not _TRACESTATE_RE.fullmatch(value):
        return None
    return parse_tracestate(value)


def trace_flags_for(ctx: NarrationContext) -> int:
    """The trace flags to send with `ctx`'s trace: those it came or started with, else `01`."""
    held = _trace.get()
    if held is not None and ctx.trace_id is not None and held[0] == ctx.trace_id:
        return held[1]
    return DEFAULT_FLAGS


def tracestate_for(ctx: NarrationContext) -> str | None:
    """The `tracestate` received with `ctx`'s trace, if any (never one of another trace)."""
    held = _trace.get()
    if held is not None and ctx.trace_id is not None and held[0] == ctx.trace_id:
        return held[2]
    return None


def bind_trace(
    trace_id: str | None, flags: int = DEFAULT_FLAGS, tracestate: str | None = None
) -> contextvars.Token[tuple[str, int, str | None] | None]:
    """Keep `flags` and `tracestate` as those of `trace_id` here; reset with the token."""
    held = (trace_id, flags & KNOWN_FLAGS, tracestate or None) if trace_id else None
    return _trace.set(held)


def bind_tracestate(
    trace_id: str | None, tracestate: str | None
) -> contextvars.Token[tuple[str, int, str | None] | None]:
    """Keep `tracestate` as the one of `trace_id` (flags unchanged); reset with the token."""
    held = _trace.get()
    flags = held[1] if held is not None and held[0] == trace_id else DEFAULT_FLAGS
    return bind_trace(trace_id, flags, tracestate)


def unbind_trace(token: contextvars.Token[tuple[str, int, str | None] | None]) -> None:
    """Restore the trace flags and state in force before `bind_trace`."""
    _trace.reset(token)


unbind_tracestate = unbind_trace
