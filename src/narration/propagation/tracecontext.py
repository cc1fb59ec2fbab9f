"""W3C Trace Context ids: parse and build `traceparent`, mint ids, and keep `tracestate`.

Kept free of heavy imports: a child process reads `TRACEPARENT` with this module alone. The
HTTP middleware extracts headers with opentelemetry-api's propagator, which applies the same
rules (a test holds the two to each other).

`tracestate` is vendor data that must travel with the trace but is not part of
`NarrationContext`; it lives in its own ContextVar, tagged with the trace id it belongs to, so
it is only ever sent along with that trace.
"""

from __future__ import annotations

import contextvars
import re
from random import getrandbits

from ..context import NarrationContext

__all__ = [
    "format_traceparent",
    "new_span_id",
    "new_trace_id",
    "parse_traceparent",
    "tracestate_for",
]

MAX_TRACEPARENT_CHARS = 512  # what opentelemetry-api accepts
MAX_TRACESTATE_CHARS = 512  # W3C: 32 members; vendors may cut beyond 512 chars
# version-traceid-parentid-flags, then (future versions only) "-" and anything printable.
_TRACEPARENT_RE = re.compile(
    r"[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:(-.*)|[ \t]*)"
)
_TRACE_ID_RE = re.compile(r"[0-9a-f]{32}")
_SPAN_ID_RE = re.compile(r"[0-9a-f]{16}")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_TRACESTATE_RE = re.compile(r"[\x20-\x7e]*")  # printable ASCII (the W3C alphabet is narrower)

# (trace_id, tracestate header) of the trace in force; see `tracestate_for`.
_tracestate: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "narration_tracestate", default=None
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


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """`(trace_id, span_id)` of a W3C `traceparent` value, or None when it is not valid.

    The W3C rules: `version-traceid-parentid-flags` in lowercase hex of 2, 32, 16 and 2 digits;
    version `ff` is invalid; version `00` has nothing after the flags, while a later version may
    add `-` and more (ignored); an all-zero trace id or parent id is invalid. Surrounding spaces
    and tabs are allowed (HTTP OWS). An invalid header is to be ignored, and a new trace started.
    """
    if not value or len(value) > MAX_TRACEPARENT_CHARS:
        return None
    match = _TRACEPARENT_RE.fullmatch(value)
    if match is None:
        return None
    version, trace_id, span_id, _flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return trace_id, span_id


def format_traceparent(trace_id: str, span_id: str, sampled: bool = True) -> str:
    """`00-<trace_id>-<span_id>-01` (`-00` when not sampled)."""
    return f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}"


def valid_trace_id(value: str | None) -> bool:
    """True for 32 lowercase hex digits, not all zero."""
    return value is not None and value != _ZERO_TRACE and _TRACE_ID_RE.fullmatch(value) is not None


def valid_span_id(value: str | None) -> bool:
    """True for 16 lowercase hex digits, not all zero."""
    return value is not None and value != _ZERO_SPAN and _SPAN_ID_RE.fullmatch(value) is not None


def clean_tracestate(value: str | None) -> str | None:
    """`value` stripped, when it is non-empty printable ASCII of at most 512 chars, else None."""
    if not value:
        return None
    value = value.strip(" \t")
    if not value or len(value) > MAX_TRACESTATE_CHARS or not _TRACESTATE_RE.fullmatch(value):
        return None
    return value


def tracestate_for(ctx: NarrationContext) -> str | None:
    """The `tracestate` received with `ctx`'s trace, if any (never one of another trace)."""
    held = _tracestate.get()
    if held is not None and ctx.trace_id is not None and held[0] == ctx.trace_id:
        return held[1]
    return None


def bind_tracestate(
    trace_id: str | None, tracestate: str | None
) -> contextvars.Token[tuple[str, str] | None]:
    """Keep `tracestate` as the one of `trace_id` in this context; reset with the token."""
    held = (trace_id, tracestate) if trace_id and tracestate else None
    return _tracestate.set(held)


def unbind_tracestate(token: contextvars.Token[tuple[str, str] | None]) -> None:
    _tracestate.reset(token)
