"""OpenTelemetry in: narration's ids are those of real OpenTelemetry spans when there are any.

Uses opentelemetry-api only (a core dependency); it does nothing visible until an
OpenTelemetry SDK is configured or an OpenTelemetry span is active:

- `active_span_ids()`: the ids of the span active here (FastAPI/httpx instrumentation, or the
  user's own `tracer.start_as_current_span`), read at the boundaries: request, job, outgoing
  call;
- `tracing()`: True once a real tracer provider (the SDK's) is set; narration then makes spans
  of its own where no instrumentation does (a request, a job, an outgoing call), so every span
  id it writes into an event is a span a collector receives;
- `follow_spans()`: from then on `n()` itself reads the active span, so an event emitted inside
  a user's span carries that span's id. Switched on the first time a boundary meets an active
  span (or by `narration.otel.configure_otel`); until then `n()` pays nothing for it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.span import TraceState

from .. import emit
from ..context import NarrationContext, current_context
from ..propagation.tracestate import parse_tracestate_members

__all__ = [
    "SpanIds",
    "active_span_ids",
    "follow_spans",
    "following",
    "parent_context",
    "start_span",
    "tracing",
]

TRACER_NAME = "narration"
_KNOWN_FLAGS = 0x03
# The tracer of the provider in force, made again if the provider is replaced (tests do).
_tracer: tuple[Any, trace.Tracer] | None = None
_following = False


class SpanIds(NamedTuple):
    """A span as W3C sees it: hex trace id, hex span id, trace flags, `tracestate` header."""

    trace_id: str
    span_id: str
    flags: int
    tracestate: str | None


def ids_of(span_context: SpanContext) -> SpanIds:
    """The W3C ids of an OpenTelemetry span context."""
    state = span_context.trace_state.to_header() if span_context.trace_state else None
    return SpanIds(
        f"{span_context.trace_id:032x}",
        f"{span_context.span_id:016x}",
        int(span_context.trace_flags) & _KNOWN_FLAGS,
        state or None,
    )


def active_span_ids() -> SpanIds | None:
    """The ids of the OpenTelemetry span active here, or None when there is none."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    follow_spans()
    return ids_of(span_context)


def tracing() -> bool:
    """True when a real OpenTelemetry tracer provider (an SDK) is configured."""
    provider = trace.get_tracer_provider()
    return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def parent_context(
    trace_id: str | None, span_id: str | None, flags: int, tracestate: str | None
) -> Any:
    """An OpenTelemetry context whose parent is the active span, else the given remote one.

    None (a root) when there is neither.
    """
    current = otel_context.get_current()
    if trace.get_current_span(current).get_span_context().is_valid:
        return current
    if not trace_id or not span_id:
        return None
    members = parse_tracestate_members(tracestate) or []
    remote = SpanContext(
        int(trace_id, 16),
        int(span_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(flags & _KNOWN_FLAGS),
        trace_state=TraceState(members),
    )
    return trace.set_span_in_context(NonRecordingSpan(remote))


def start_span(
    name: str,
    kind: SpanKind,
    parent: Any,
    attributes: dict[str, Any] | None = None,
) -> tuple[Span, SpanIds]:
    """Start (not activate) a narration span under `parent` (see `parent_context`)."""
    global _tracer
    provider = trace.get_tracer_provider()
    if _tracer is None or _tracer[0] is not provider:
        _tracer = (provider, provider.get_tracer(TRACER_NAME))
    span = _tracer[1].start_span(name, context=parent, kind=kind, attributes=attributes)
    return span, ids_of(span.get_span_context())


def activate(span: Span) -> object:
    """Make `span` the active OpenTelemetry span here; give the token to `deactivate`."""
    return otel_context.attach(trace.set_span_in_context(span))


def deactivate(token: object) -> None:
    """Undo `activate`."""
    otel_context.detach(token)  # type: ignore[arg-type]


def following() -> bool:
    """True once `n()` reads the active OpenTelemetry span."""
    return _following


def follow_spans() -> None:
    """Make `n()` take its trace and span ids from the active OpenTelemetry span, if any."""
    global _following
    if not _following:
        _following = True
        emit.set_context_source(_context_following_spans)


def stop_following_spans() -> None:
    """Undo `follow_spans` (tests; `n()` goes back to reading narration's context only)."""
    global _following
    _following = False
    emit.set_context_source(None)


_get_current = otel_context.get_current
_SPAN_KEY: str | None
try:  # the key OpenTelemetry keeps the active span under: read directly, it is the hot path
    from opentelemetry.trace.propagation import _SPAN_KEY
except ImportError:  # pragma: no cover - a future API that renames it: the public, slower way
    _SPAN_KEY = None
# The last (span context, narration context) seen and the context made of them: events come in
# runs from the same span and context.
_last: tuple[Any, Any, NarrationContext | None] = (None, None, None)


def _context_following_spans() -> NarrationContext:
    """Narration's context, with the active OpenTelemetry span's ids when there is one."""
    global _last
    ctx = current_context()
    if _SPAN_KEY is not None:
        span: Any = _get_current().get(_SPAN_KEY)
        if span is None:
            return ctx
    else:  # pragma: no cover
        span = trace.get_current_span()
    span_context = span.get_span_context()
    last = _last
    if last[0] is span_context and last[1] is ctx:
        return last[2]  # type: ignore[return-value]
    if not span_context.is_valid:
        return ctx
    trace_id, span_id = f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}"
    if ctx.span_id == span_id and ctx.trace_id == trace_id:
        made = ctx
    else:  # the constructor, not dataclasses.replace: this runs on every event
        made = NarrationContext(
            ctx.job_id, ctx.correlation_id, ctx.actor, trace_id, span_id, ctx.fields
        )
    _last = (span_context, ctx, made)
    return made
