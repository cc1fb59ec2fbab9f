"""OpenTelemetry both ways, with the SDK's in-memory exporters and two real narration servers.

A request into a FastAPI app instrumented by opentelemetry-instrumentation-fastapi starts a
narration job that narrates (once inside a span of its own) and calls a second, plain narration
server through `narration.propagation.async_client()`. One trace comes out: every span id in
the events is a real span, the job spans nest under the request spans, and each event is one
log record carrying the same trace and span ids.
"""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel

from narration import n
from narration.jobs import Job, JobRegistry
from narration.propagation import async_client
from narration.testing import NarrationTestHarness
from otel_helpers import Exported

pytestmark = pytest.mark.e2e

HEX16_ZERO = "0" * 16


class NoFields(BaseModel):
    """An operation without fields."""


def _one(name: str, handler: Any) -> JobRegistry:
    """A registry of one operation, `name`, run by `handler`."""
    jobs = JobRegistry()
    jobs.add(name, handler, model=NoFields)
    return jobs


async def test_one_trace_through_an_instrumented_app_a_job_and_a_second_service(
    otel: Exported,
) -> None:
    setup, span_exporter, log_exporter = otel.setup, otel.spans, otel.logs
    tracer = trace.get_tracer("test")

    async def leaf(_: Any, job: Job) -> None:
        n("leaf_work", "Leaf job at work")

    async with NarrationTestHarness(_one("leaf", leaf)) as second:

        async def root(_: Any, job: Job) -> None:
            n("root_start", "Root job starting")
            with tracer.start_as_current_span("user-work"):
                n("user_work", "Inside a span of my own")
            async with async_client(base_url=second.base_url, timeout=10) as http:
                response = await http.post("/v1/jobs", json={"operation": "leaf"})
            leaf_ids.append(response.json()["job_id"])
            n("root_done", "Root job called the leaf")

        leaf_ids: list[str] = []
        first = NarrationTestHarness(_one("root", root))
        FastAPIInstrumentor.instrument_app(first.app, exclude_spans=["receive", "send"])
        async with first:
            response = await first.http.post("/v1/jobs", json={"operation": "root"})
            assert response.status_code == 201
            root_events = await first.get_sse_stream(response.json()["job_id"]).collect_until_done(
                10
            )
            [leaf_id] = leaf_ids
            leaf_events = await second.get_sse_stream(leaf_id).collect_until_done(10)
    setup.flush()
    events = [*root_events, *leaf_events]
    assert [e.action for e in events] == ["root_start", "user_work", "root_done", "leaf_work"]

    finished = span_exporter.get_finished_spans()
    # The test's own stream reads are requests of their own: root spans of their own traces.
    streams = [s for s in finished if "/stream" in str(dict(s.attributes or {}).values())]
    assert len(streams) == 2 and all(s.parent is None for s in streams)
    spans = {span.context.span_id: span for span in finished if span not in streams}
    by_name = {span.name: span for span in spans.values()}
    request1 = next(s for s in spans.values() if s.kind is SpanKind.SERVER and s.parent is None)
    user = by_name["user-work"]
    jobs = {dict(s.attributes or {}).get("narration.job_id"): s for s in spans.values()}
    job1, job2 = jobs[root_events[0].job_id], jobs[leaf_id]
    [client] = [s for s in spans.values() if s.kind is SpanKind.CLIENT]
    [request2] = [s for s in spans.values() if s.kind is SpanKind.SERVER and s.parent]
    # One trace, nested: request -> job -> (user span, call -> request -> job).
    assert {span.context.trace_id for span in spans.values()} == {request1.context.trace_id}

    def ancestors(span: Any) -> list[Any]:
        chain = []
        while span.parent is not None:
            span = spans[span.parent.span_id]
            chain.append(span)
        return chain

    # (A job's parent is the span active where it was submitted: the request's, or the
    # endpoint span FastAPI's instrumentation opens under it.)
    assert request1 in ancestors(job1)
    assert user.parent.span_id == job1.context.span_id  # type: ignore[union-attr]
    assert client.parent.span_id == job1.context.span_id  # type: ignore[union-attr]
    assert request2.parent.span_id == client.context.span_id  # type: ignore[union-attr]
    assert request2 in ancestors(job2)
    assert ancestors(request2)[:2] == [client, job1]
    # (FastAPI's instrumentation adds two spans of its own around the first endpoint.)
    assert sorted(s.name for s in spans.values()) == sorted(
        [
            *("POST", "POST /v1/jobs", "POST /v1/jobs", "fastapi.dependencies"),
            *("fastapi.endpoint", "narration.job root", "narration.job leaf", "user-work"),
        ]
    )
    # The ids in the events are exactly those of the spans they were emitted in.
    trace_hex = f"{request1.context.trace_id:032x}"
    assert {e.trace_id for e in events} == {trace_hex}
    assert [e.span_id for e in events] == [
        f"{s.context.span_id:016x}" for s in (job1, user, job1, job2)
    ]
    # Job spans say what the job was and how it ended.
    for job_span, job_events, name in ((job1, root_events, "root"), (job2, leaf_events, "leaf")):
        attributes = dict(job_span.attributes or {})
        assert attributes["narration.operation"] == name
        assert attributes["narration.state"] == "completed"
        assert attributes["narration.job_id"] == job_events[0].job_id
        assert attributes["narration.correlation_id"] == job_events[0].correlation_id
        assert job_span.status.status_code is StatusCode.UNSET
    # Each event is one log record: body, severity, ids and fields.
    records = [data.log_record for data in log_exporter.get_finished_logs()]
    assert sorted(str(r.body) for r in records) == sorted(e.human for e in events)
    for event in events:
        [record] = [r for r in records if r.body == event.human]
        assert (f"{record.trace_id:032x}", f"{record.span_id:016x}") == (
            event.trace_id,
            event.span_id,
        )
        assert record.severity_text == "INFO"
        assert dict(record.attributes or {})["narration.job_id"] == event.job_id
        assert dict(record.attributes or {})["narration.action"] == event.action
