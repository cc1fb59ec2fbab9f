"""Ids over HTTP against a real uvicorn server: `NarrationMiddleware` and the httpx client hooks."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse

from narration import NarrationContext, current_context, n, narration_context
from narration.ids import new_job_id
from narration.jobs import Job, JobRegistry
from narration.operations import HiveList
from narration.propagation import (
    NarrationMiddleware,
    async_client,
    outgoing_headers,
    parse_traceparent,
    sync_client,
)
from narration.server import make_server
from narration.testing import NarrationTestHarness

pytestmark = pytest.mark.e2e

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
VALID = f"00-{TRACE}-{SPAN}-01"
HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")


def _parent_id(traceparent: str, trace_id: str = TRACE, flags: str = "01") -> str:
    """The parent-id of `traceparent`, after checking its version, trace id and flags."""
    version, trace, parent, got_flags = traceparent.split("-")
    assert (version, trace, got_flags) == ("00", trace_id, flags)
    assert HEX16.fullmatch(parent) and parent != "0" * 16
    return parent


class Seen:
    """What the `hive_list` handler saw inside its job."""

    def __init__(self) -> None:
        self.contexts: list[NarrationContext] = []
        self.headers: list[dict[str, str]] = []


@pytest.fixture
async def served() -> AsyncIterator[tuple[NarrationTestHarness, Seen]]:
    """A real server whose `hive_list` jobs narrate once and record their context."""
    seen = Seen()

    jobs = JobRegistry()

    @jobs.operation("hive_list")
    async def hive_list(_: HiveList, job: Job) -> None:
        seen.contexts.append(current_context())
        seen.headers.append(outgoing_headers())
        n("hive_list", "Found {} hives", 0, hives=0)

    harness = NarrationTestHarness(jobs)

    @harness.app.get("/probe")
    async def probe(request: Request) -> JSONResponse:
        ctx = current_context()
        return JSONResponse(
            {
                "correlation_id": ctx.correlation_id,
                "trace_id": ctx.trace_id,
                "span_id": ctx.span_id,
                "parent_job_id": getattr(request.state, "narration_parent_job_id", None),
                "outgoing": outgoing_headers(),
            }
        )

    async with harness:
        yield harness, seen


async def _submit(
    harness: NarrationTestHarness, headers: dict[str, str]
) -> tuple[httpx.Response, list[Any]]:
    response = await harness.http.post("/v1/jobs", json={"operation": "hive_list"}, headers=headers)
    assert response.status_code == 201, response.text
    stream = harness.get_sse_stream(response.json()["job_id"])
    events = await stream.collect_until_done(timeout=10)
    assert stream.terminal is not None and stream.terminal.state == "completed"
    return response, events


async def test_correlation_and_trace_reach_the_job_events(
    served: tuple[NarrationTestHarness, Seen],
) -> None:
    harness, seen = served
    response, events = await _submit(
        harness, {"X-Correlation-Id": "keeper-C.1", "traceparent": VALID}
    )
    assert response.headers.get_list("x-correlation-id") == ["keeper-C.1"]
    assert response.json()["correlation_id"] == "keeper-C.1"
    [event] = events
    assert (event.action, event.human) == ("hive_list", "Found 0 hives")
    assert (event.correlation_id, event.trace_id) == ("keeper-C.1", TRACE)
    assert event.span_id is not None and HEX16.fullmatch(event.span_id)
    assert event.span_id != SPAN  # a new span: the job's
    [ctx] = seen.contexts
    assert (ctx.correlation_id, ctx.trace_id, ctx.span_id) == ("keeper-C.1", TRACE, event.span_id)
    # The next hop continues the same trace and flags; its parent-id is that request's own id.
    assert _parent_id(seen.headers[0]["traceparent"]) not in (SPAN, event.span_id)
    assert seen.headers[0]["X-Correlation-Id"] == "keeper-C.1"
    assert seen.headers[0]["X-Parent-Job-Id"] == response.json()["job_id"]


async def test_missing_headers_get_a_new_correlation_id_and_trace(
    served: tuple[NarrationTestHarness, Seen],
) -> None:
    harness, _ = served
    response, [event] = await _submit(harness, {})
    generated = response.json()["correlation_id"]
    assert HEX32.fullmatch(generated)
    assert response.headers.get_list("x-correlation-id") == [generated]
    assert event.correlation_id == generated
    assert event.trace_id is not None and HEX32.fullmatch(event.trace_id)
    assert event.span_id is not None and HEX16.fullmatch(event.span_id)


@pytest.mark.parametrize(
    "bad",
    ["x" * 200, "has spaces", "semi;colon", "", "ünïcode", "a\tb"],
    ids=["200-chars", "spaces", "semicolon", "empty", "non-ascii", "tab"],
)
async def test_invalid_correlation_ids_are_replaced(
    served: tuple[NarrationTestHarness, Seen], bad: str
) -> None:
    harness, _ = served
    response = await harness.http.get(
        "/probe", headers=[(b"X-Correlation-Id", bad.encode("utf-8"))]
    )
    assert response.status_code == 200
    body = response.json()
    assert body["correlation_id"] != bad and HEX32.fullmatch(body["correlation_id"])
    assert response.headers.get_list("x-correlation-id") == [body["correlation_id"]]


MALFORMED = {
    "garbage": "garbage",
    "version-ff": f"ff-{TRACE}-{SPAN}-01",
    "zero-trace-id": f"00-{'0' * 32}-{SPAN}-01",
    "zero-span-id": f"00-{TRACE}-{'0' * 16}-01",
    "uppercase-hex": f"00-{TRACE.upper()}-{SPAN}-01",
    "short-trace-id": f"00-{TRACE[:31]}-{SPAN}-01",
    "long-span-id": f"00-{TRACE}-{SPAN}0-01",
    "version-00-with-extra-data": f"00-{TRACE}-{SPAN}-01-extra",
    "bad-delimiter": f"00_{TRACE}_{SPAN}_01",
    "non-hex-flags": f"00-{TRACE}-{SPAN}-0g",
    "missing-flags": f"00-{TRACE}-{SPAN}",
    "future-version-no-dash": f"cc-{TRACE}-{SPAN}-01extra",
    "over-512-chars": f"cc-{TRACE}-{SPAN}-01-{'a' * 512}",
}


@pytest.mark.parametrize("traceparent", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_traceparent_is_replaced_and_the_request_served(
    served: tuple[NarrationTestHarness, Seen], traceparent: str
) -> None:
    harness, _ = served
    assert parse_traceparent(traceparent) is None
    response, [event] = await _submit(
        harness, {"traceparent": traceparent, "tracestate": "congo=t61rcWkgMzE"}
    )
    assert response.status_code == 201
    assert event.trace_id is not None and HEX32.fullmatch(event.trace_id)
    assert event.trace_id not in (TRACE, TRACE.upper(), TRACE[:31], "0" * 32)
    assert event.span_id is not None and HEX16.fullmatch(event.span_id)
    # The tracestate of an ignored traceparent is ignored too.
    probe = await harness.http.get(
        "/probe", headers={"traceparent": traceparent, "tracestate": "congo=t61rcWkgMzE"}
    )
    assert "tracestate" not in probe.json()["outgoing"]


@pytest.mark.parametrize(
    "traceparent",
    [VALID, f"00-{TRACE}-{SPAN}-00", f"cc-{TRACE}-{SPAN}-01-future-data", f"cc-{TRACE}-{SPAN}-09"],
    ids=["sampled", "not-sampled", "future-version-with-data", "future-version"],
)
async def test_a_valid_traceparent_is_continued_with_a_new_span(
    served: tuple[NarrationTestHarness, Seen], traceparent: str
) -> None:
    harness, _ = served
    _, [event] = await _submit(harness, {"traceparent": traceparent})
    assert event.trace_id == TRACE
    assert event.span_id is not None and HEX16.fullmatch(event.span_id) and event.span_id != SPAN


async def test_each_hop_gets_its_own_span(served: tuple[NarrationTestHarness, Seen]) -> None:
    harness, _ = served
    spans = set()
    for _ in range(5):
        body = (await harness.http.get("/probe", headers={"traceparent": VALID})).json()
        assert body["trace_id"] == TRACE
        spans.add(body["span_id"])
    assert len(spans) == 5 and SPAN not in spans


async def test_tracestate_travels_with_its_trace(
    served: tuple[NarrationTestHarness, Seen],
) -> None:
    harness, _ = served
    body = (
        await harness.http.get(
            "/probe", headers={"traceparent": VALID, "tracestate": "congo=t61rcWkgMzE,rojo=00f0"}
        )
    ).json()
    assert body["outgoing"]["tracestate"] == "congo=t61rcWkgMzE,rojo=00f0"
    assert _parent_id(body["outgoing"]["traceparent"]) not in (SPAN, body["span_id"])


async def test_parent_job_id_is_read_and_validated(
    served: tuple[NarrationTestHarness, Seen],
) -> None:
    harness, _ = served
    parent = new_job_id()
    body = (await harness.http.get("/probe", headers={"X-Parent-Job-Id": parent})).json()
    assert body["parent_job_id"] == parent
    body = (await harness.http.get("/probe", headers={"X-Parent-Job-Id": "bad id!"})).json()
    assert body["parent_job_id"] is None
    response = await harness.http.post(
        "/v1/jobs", json={"operation": "hive_list"}, headers={"X-Parent-Job-Id": parent}
    )
    record = await harness.state.store.get(response.json()["job_id"])
    assert record is not None and record.parent_job_id == parent


async def test_the_correlation_id_is_echoed_once_on_errors_too(
    served: tuple[NarrationTestHarness, Seen],
) -> None:
    harness, _ = served
    unknown = "job-00000000-0000-4000-8000-000000000000"
    response = await harness.http.get(f"/v1/jobs/{unknown}", headers={"X-Correlation-Id": "err-1"})
    assert response.status_code == 404
    assert response.headers.get_list("x-correlation-id") == ["err-1"]
    response = await harness.http.post(
        "/v1/jobs",
        content=b"{oops",
        headers={"X-Correlation-Id": "err-2", "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers.get_list("x-correlation-id") == ["err-2"]


async def test_the_request_context_does_not_leak_between_requests(
    served: tuple[NarrationTestHarness, Seen],
) -> None:
    harness, _ = served
    results = await asyncio.gather(
        *(harness.http.get("/probe", headers={"X-Correlation-Id": f"leak-{i}"}) for i in range(20))
    )
    assert [r.json()["correlation_id"] for r in results] == [f"leak-{i}" for i in range(20)]
    assert current_context().correlation_id is None


# --- the client side: against a tiny server that echoes the headers it received -------------


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    app = FastAPI()

    @app.get("/echo")
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({name: value for name, value in request.headers.items()})

    server = make_server(app, "127.0.0.1", 0)
    task = await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


JOB = "job-11111111-2222-4333-8444-555555555555"
CTX = NarrationContext(job_id=JOB, correlation_id="client-C", trace_id=TRACE, span_id=SPAN)


def test_outgoing_headers_carry_the_context() -> None:
    headers = outgoing_headers(CTX)
    parents = {_parent_id(headers.pop("traceparent"))}
    assert headers == {"X-Correlation-Id": "client-C", "X-Parent-Job-Id": JOB}
    assert outgoing_headers(NarrationContext()) == {}
    with narration_context(CTX):
        again = outgoing_headers()
    parents.add(_parent_id(again.pop("traceparent")))
    assert again == headers
    assert len(parents) == 2 and SPAN not in parents  # each request is a span of its own


def test_outgoing_headers_leave_out_malformed_ids() -> None:
    bad = NarrationContext(job_id="a b", correlation_id="x" * 200, trace_id="ABC", span_id=SPAN)
    assert outgoing_headers(bad) == {}
    no_span = outgoing_headers(NarrationContext(trace_id=TRACE))
    parsed = parse_traceparent(no_span["traceparent"])
    assert parsed is not None and parsed[0] == TRACE


async def test_async_client_injects_the_current_context(echo_url: str) -> None:
    async with async_client(base_url=echo_url, timeout=10) as client:
        with narration_context(CTX):
            echoed = (await client.get("/echo")).json()
        assert echoed["x-correlation-id"] == "client-C"
        assert _parent_id(echoed["traceparent"]) != SPAN
        assert echoed["x-parent-job-id"] == JOB
        # Outside any job: nothing to send.
        echoed = (await client.get("/echo")).json()
        assert {"x-correlation-id", "traceparent", "x-parent-job-id"}.isdisjoint(echoed)
        # Headers set explicitly win.
        with narration_context(CTX):
            echoed = (await client.get("/echo", headers={"X-Correlation-Id": "mine"})).json()
        assert echoed["x-correlation-id"] == "mine" and _parent_id(echoed["traceparent"])


async def test_async_client_keeps_the_callers_hooks(echo_url: str) -> None:
    seen: list[str | None] = []

    async def mine(request: httpx.Request) -> None:
        seen.append(request.headers.get("x-correlation-id"))

    async with async_client(base_url=echo_url, event_hooks={"request": [mine]}) as client:
        with narration_context(CTX):
            echoed = (await client.get("/echo")).json()
    assert echoed["x-correlation-id"] == "client-C"
    assert seen == [None]  # the caller's hook runs first; ours only fills in what is missing


async def test_sync_client_injects_the_current_context(echo_url: str) -> None:
    def call() -> dict[str, str]:
        with sync_client(base_url=echo_url, timeout=10) as client:
            result: dict[str, str] = client.get("/echo").json()
            return result

    with narration_context(CTX):
        echoed = await asyncio.to_thread(call)
    assert echoed["x-correlation-id"] == "client-C"
    assert _parent_id(echoed["traceparent"]) != SPAN
    assert echoed["x-parent-job-id"] == JOB


async def test_a_hop_through_the_middleware_keeps_the_trace_and_makes_a_new_span(
    served: tuple[NarrationTestHarness, Seen],
) -> None:
    """Client hook -> server middleware -> job: one correlation id and one trace id."""
    harness, _ = served
    async with async_client(base_url=harness.base_url, timeout=10) as client:
        with narration_context(CTX):
            response = await client.post("/v1/jobs", json={"operation": "hive_list"})
    assert response.status_code == 201
    assert response.json()["correlation_id"] == "client-C"
    events = await harness.get_sse_stream(response.json()["job_id"]).collect_until_done(10)
    assert [(e.correlation_id, e.trace_id) for e in events] == [("client-C", TRACE)]
    assert events[0].span_id not in (None, SPAN)
    record = await harness.state.store.get(response.json()["job_id"])
    assert record is not None and record.parent_job_id == JOB


def test_the_middleware_is_installed_by_create_app() -> None:
    from narration.server import create_app

    app = create_app()
    assert any(m.cls is NarrationMiddleware for m in app.user_middleware)
