"""OpenTelemetry in and out, piece by piece: spans adopted by `n()`, job spans, log records."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.trace import StatusCode

from narration import Level, n, narration_context
from narration import emit as emit_module
from narration.context import _current
from narration.jobs import Job, JobManager, JobRegistry
from narration.operations import HiveList
from narration.otel import OtelLogSink, bridge, otel_from_env
from narration.propagation import NarrationMiddleware, outgoing_headers
from narration.store import open_store
from otel_helpers import Exported

pytestmark = pytest.mark.unit

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


async def _through_middleware(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen["ctx"] = _current.get()
        seen["outgoing"] = outgoing_headers()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> Any:
        return {"type": "http.request"}

    async def send(_: Any) -> None:
        return None

    scope = {"type": "http", "method": "GET", "path": "/x", "headers": headers}
    await NarrationMiddleware(app)(scope, receive, send)
    return seen


async def test_without_an_sdk_nothing_is_made_and_n_reads_the_contextvar_only() -> None:
    assert not bridge.tracing() and not bridge.following()
    seen = await _through_middleware([(b"traceparent", f"00-{TRACE}-{SPAN}-01".encode())])
    assert seen["ctx"].trace_id == TRACE and seen["ctx"].span_id != SPAN
    assert emit_module._context == _current.get  # the emit path is untouched
    assert not bridge.following()


async def test_the_middleware_makes_the_server_span_when_no_instrumentation_does(
    otel: Exported,
) -> None:
    seen = await _through_middleware([(b"traceparent", f"00-{TRACE}-{SPAN}-01".encode())])
    otel.setup.flush()
    [span] = otel.spans.get_finished_spans()
    assert span.kind is trace.SpanKind.SERVER and span.parent is not None
    assert (f"{span.context.trace_id:032x}", span.parent.span_id) == (TRACE, int(SPAN, 16))
    assert seen["ctx"].span_id == f"{span.context.span_id:016x}"
    assert dict(span.attributes or {})["http.response.status_code"] == 200
    # The next hop's parent is a new id in the same trace, with the span's flags.
    _, trace_id, parent, flags = seen["outgoing"]["traceparent"].split("-")
    assert (trace_id, flags) == (TRACE, "01") and parent != seen["ctx"].span_id


def test_n_takes_the_ids_of_the_active_span(otel: Exported) -> None:
    tracer = trace.get_tracer("test")
    with narration_context(job_id="job-x", trace_id=TRACE, span_id=SPAN):
        outside = n("before", "No span yet")
        with tracer.start_as_current_span("mine") as span:
            inside = n("inside", "In my span")
        after = n("after", "Span over")
    assert outside is not None and inside is not None and after is not None
    ids = span.get_span_context()
    assert (inside.trace_id, inside.span_id) == (f"{ids.trace_id:032x}", f"{ids.span_id:016x}")
    assert inside.job_id == "job-x"
    assert (outside.trace_id, outside.span_id) == (after.trace_id, after.span_id) == (TRACE, SPAN)


async def test_a_failed_job_ends_its_span_with_status_error(otel: Exported) -> None:
    async def boom(_: Any, job: Job) -> None:
        n("trying", "About to fail")
        raise RuntimeError("no GPU left")

    store = open_store("memory://")
    jobs = JobRegistry()
    jobs.add("hive_list", boom, model=HiveList)
    manager = JobManager(store, jobs)
    with narration_context(correlation_id="corr-1", trace_id=TRACE, span_id=SPAN):
        job = await manager.submit(
            jobs.parse({"operation": "hive_list"}),
            correlation_id="corr-1",
            trace_id=TRACE,
            span_id=SPAN,
        )
    await asyncio.wait_for(job.finished.wait(), 10)
    otel.setup.flush()
    [span] = otel.spans.get_finished_spans()
    assert span.name == "narration.job hive_list"
    assert span.parent is not None and span.parent.span_id == int(SPAN, 16)
    assert f"{span.context.trace_id:032x}" == TRACE
    assert span.status.status_code is StatusCode.ERROR
    attributes = dict(span.attributes or {})
    assert attributes["narration.state"] == "failed"
    assert attributes["narration.error"] == "RuntimeError: no GPU left"
    assert (attributes["narration.job_id"], attributes["narration.correlation_id"]) == (
        job.job_id,
        "corr-1",
    )
    assert job.context.span_id == f"{span.context.span_id:016x}"


def test_events_become_log_records_with_severity_fields_and_ids() -> None:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    sink = OtelLogSink(provider)
    events = []
    with narration_context(job_id="job-1", correlation_id="c-1", trace_id=TRACE, span_id=SPAN):
        for level in Level:
            events.append(
                emit_module.NarrationEvent(
                    ts=1700000000.25,
                    level=level,
                    actor="hive",
                    action="spawn",
                    human=f"at {level}",
                    job_id="job-1",
                    correlation_id="c-1",
                    trace_id=TRACE,
                    span_id=SPAN,
                    fn_name="hive.spawn",
                    fields={"gpu": 0, "tags": ["a", "b"], "nested": {"k": [1, 2]}},
                )
            )
    for event in events:
        sink(event)
    assert sink.flush(5)
    sink.close()
    records = [data.log_record for data in exporter.get_finished_logs()]
    assert [r.body for r in records] == [f"at {level}" for level in Level]
    assert [r.severity_text for r in records] == [
        "TRACE",
        "DEBUG",
        "INFO",
        "WARN",
        "ERROR",
        "FATAL",
    ]
    assert [r.severity_number.value for r in records] == [1, 5, 9, 13, 17, 21]  # type: ignore[union-attr]
    record = records[2]
    assert record.timestamp == 1700000000250000000
    assert (f"{record.trace_id:032x}", f"{record.span_id:016x}") == (TRACE, SPAN)
    assert dict(record.attributes or {}) == {
        "gpu": 0,
        "tags": ("a", "b"),
        "nested": '{"k": [1, 2]}',
        "narration.action": "spawn",
        "narration.actor": "hive",
        "narration.job_id": "job-1",
        "narration.correlation_id": "c-1",
        "code.function.name": "hive.spawn",
    }


@pytest.mark.parametrize(
    "env",
    [{}, {"OTEL_SERVICE_NAME": "x"}, {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}],
)
def test_otel_from_env_does_nothing_unless_asked(env: dict[str, str]) -> None:
    assert otel_from_env(env) is None
    assert not bridge.tracing()


def test_follow_spans_is_switched_on_by_a_boundary_that_meets_a_span(otel: Exported) -> None:
    bridge.stop_following_spans()
    tracer = trace.get_tracer("test")

    def inside() -> bool:
        with tracer.start_as_current_span("request"):
            assert bridge.active_span_ids() is not None
        return bridge.following()

    assert contextvars.copy_context().run(inside) is True
    assert emit_module._context != _current.get
