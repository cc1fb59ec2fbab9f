"""Each job is a span: started when the job is submitted, active while its handler runs, ended
with its final state. Without an OpenTelemetry SDK the job still gets a span id of its own (the
W3C parent-id of what it calls), only no span is recorded.

Attributes: `narration.job_id`, `narration.operation`, `narration.correlation_id`, and at the
end `narration.state` (plus `narration.error`); a failed job's span has status ERROR.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from ..context import NarrationContext
from ..propagation.tracecontext import new_span_id, trace_flags_for, tracestate_for
from . import bridge

__all__ = ["JOB_SPAN_PREFIX", "end_job_span", "enter_job_span", "exit_job_span", "start_job_span"]

JOB_SPAN_PREFIX = "narration.job"


def start_job_span(
    context: NarrationContext, job_id: str, operation: str
) -> tuple[NarrationContext, Span | None]:
    """The job's context with its own span id, and its OpenTelemetry span (None without SDK).

    The span's parent is the active OpenTelemetry span (the request's), else the span named by
    `context` (the request as narration knows it).
    """
    if bridge.tracing():
        parent = bridge.parent_context(
            context.trace_id, context.span_id, trace_flags_for(context), tracestate_for(context)
        )
        span, ids = bridge.start_span(
            f"{JOB_SPAN_PREFIX} {operation}",
            SpanKind.INTERNAL,
            parent,
            {
                "narration.job_id": job_id,
                "narration.operation": operation,
                "narration.correlation_id": context.correlation_id or "",
            },
        )
        return context.with_trace(ids.trace_id, ids.span_id), span
    if context.trace_id is None:
        return context, None
    return context.with_trace(context.trace_id, new_span_id()), None


def enter_job_span(span: Span | None) -> Any:
    """Make the job's span the active one while its handler runs (token for `exit_job_span`)."""
    return bridge.activate(span) if span is not None else None


def exit_job_span(token: Any) -> None:
    """Undo `enter_job_span`."""
    if token is not None:
        bridge.deactivate(token)


def end_job_span(span: Span | None, state: str, error: str | None) -> None:
    """End the job's span with its final state (status ERROR when it failed)."""
    if span is None:
        return
    span.set_attribute("narration.state", str(state))
    if error is not None:
        span.set_attribute("narration.error", error)
    if str(state) == "failed":
        span.set_status(Status(StatusCode.ERROR, error))
    span.end()
