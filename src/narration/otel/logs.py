"""Every narration event as an OpenTelemetry log record, emitted through the SDK's LoggerProvider.

A record's body is the event's human text; its severity comes from the level; its trace and
span ids (and so its place in the trace) are the event's; its attributes are the event's
fields plus `narration.*` ids, the action, the actor and `code.function.name`. Records are made
on the sink's own thread (a bounded queue: `n()` only appends to it, never blocks; overflow is
counted and reported as one warning record), and the SDK's processor batches and exports them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import Logger, LoggerProvider, SeverityNumber, get_logger_provider
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from .. import __version__
from ..events import Level, NarrationEvent
from ..sinks._writer import QueuedSink

__all__ = ["SEVERITY", "OtelLogSink"]

SEVERITY: dict[Level, SeverityNumber] = {
    Level.TRACE: SeverityNumber.TRACE,
    Level.DEBUG: SeverityNumber.DEBUG,
    Level.INFO: SeverityNumber.INFO,
    Level.WARN: SeverityNumber.WARN,
    Level.ERROR: SeverityNumber.ERROR,
    Level.FATAL: SeverityNumber.FATAL,
}
_EMPTY = Context()
_PRIMITIVES = (str, bool, int, float)


class OtelLogSink(QueuedSink):
    """A narration sink that turns events into OpenTelemetry log records (off the emit path)."""

    thread_name = "narration-otel-logs"

    def __init__(self, provider: LoggerProvider | None = None) -> None:
        self.logger: Logger = (provider or get_logger_provider()).get_logger(
            "narration", __version__
        )
        super().__init__()

    def _write(self, batch: Sequence[NarrationEvent]) -> None:
        emit = self.logger.emit
        for event in batch:
            emit(
                timestamp=round(event.ts * 1e6) * 1000,  # ts holds whole microseconds
                context=_span_context(event.trace_id, event.span_id),
                severity_number=SEVERITY[event.level],
                severity_text=event.level.value.upper(),
                body=event.human,
                attributes=attributes_of(event),
            )

    def _report_drop(self, count: int) -> None:
        self.logger.emit(
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            body=f"narration: OpenTelemetry log export fell behind, {count} events not exported",
            attributes={"narration.dropped": count},
        )


def attributes_of(event: NarrationEvent) -> dict[str, Any]:
    """The log record attributes of `event`: its fields, then its ids and names."""
    attributes: dict[str, Any] = {}
    for key, value in (event.fields or {}).items():
        attributes[str(key)] = _attribute(value)
    attributes["narration.action"] = event.action
    attributes["narration.actor"] = event.actor
    for name in ("job_id", "correlation_id", "target", "origin"):
        value = getattr(event, name)
        if value is not None:
            attributes[f"narration.{name}"] = value
    if event.id:
        attributes["narration.event_id"] = event.id
    if event.fn_name:
        attributes["code.function.name"] = event.fn_name
    return attributes


def _attribute(value: Any) -> Any:
    """An OpenTelemetry attribute value: primitives and lists of one primitive as they are,
    anything else as JSON (or its repr)."""
    if value is None or isinstance(value, _PRIMITIVES):
        return value if value is not None else ""
    if isinstance(value, (list, tuple)) and value:
        kind = type(value[0])
        if kind in _PRIMITIVES and all(type(item) is kind for item in value):
            return list(value)
    try:
        return json.dumps(value, default=repr, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


_spans: dict[tuple[str, str], Context] = {}


def _span_context(trace_id: str | None, span_id: str | None) -> Context:
    """A context whose span is the event's (so the record carries its trace and span ids)."""
    if not trace_id or not span_id:
        return _EMPTY
    key = (trace_id, span_id)
    found = _spans.get(key)
    if found is not None:
        return found
    try:
        span = NonRecordingSpan(
            SpanContext(
                int(trace_id, 16),
                int(span_id, 16),
                is_remote=False,
                trace_flags=TraceFlags(TraceFlags.SAMPLED),
            )
        )
    except ValueError:
        return _EMPTY
    if len(_spans) >= 4096:
        _spans.clear()
    context = trace.set_span_in_context(span, _EMPTY)
    _spans[key] = context
    return context
