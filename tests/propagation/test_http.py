"""`NarrationMiddleware` called directly as ASGI: what the app sees, what the client gets back."""

from __future__ import annotations

from typing import Any

import pytest

from narration import NarrationContext, current_context, narration_context
from narration.propagation import NarrationMiddleware, outgoing_headers

pytestmark = pytest.mark.unit

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


class App:
    """An ASGI app that records its context and answers with a header of its own."""

    def __init__(self) -> None:
        self.seen: list[tuple[NarrationContext, dict[str, str], dict[str, Any]]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.seen.append((current_context(), outgoing_headers(), dict(scope.get("state", {}))))
        if scope["type"] == "http":
            headers = [(b"x-correlation-id", b"from-the-app"), (b"content-type", b"text/plain")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"ok"})


async def _call(app: App, headers: list[tuple[bytes, bytes]], kind: str = "http") -> list[Any]:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request"}

    await NarrationMiddleware(app)({"type": kind, "headers": headers}, receive, send)
    return sent


async def test_the_request_runs_without_the_servers_job_but_keeps_its_actor() -> None:
    app = App()
    with narration_context(job_id="job-of-the-server", actor="queen", fields={"host": "a"}):
        before = current_context()
        sent = await _call(app, [(b"x-correlation-id", b"c-1"), (b"traceparent", b"nonsense")])
        assert current_context() is before
    [(ctx, outgoing, _)] = app.seen
    assert (ctx.job_id, ctx.correlation_id, ctx.actor, ctx.fields) == (
        None,
        "c-1",
        "queen",
        {"host": "a"},
    )
    assert ctx.trace_id is not None and ctx.trace_id != TRACE
    # A trace the middleware starts is sampled and random (03); the outgoing request is a span
    # of its own (a new parent-id), not the request's.
    assert outgoing.pop("X-Correlation-Id") == "c-1"
    version, trace_id, parent_id, flags = outgoing.pop("traceparent").split("-")
    assert (version, trace_id, flags, outgoing) == ("00", ctx.trace_id, "03", {})
    assert parent_id != ctx.span_id
    # The app's own X-Correlation-Id header is replaced: exactly one, the request's.
    start = sent[0]
    assert [h for h in start["headers"] if h[0] == b"x-correlation-id"] == [
        (b"x-correlation-id", b"c-1")
    ]
    assert (b"content-type", b"text/plain") in start["headers"]


async def test_tracestate_and_parent_job_reach_the_app_only_for_that_request() -> None:
    app = App()
    await _call(
        app,
        [
            (b"traceparent", f"00-{TRACE}-{SPAN}-01".encode()),
            (b"tracestate", b"congo=t61rcWkgMzE"),
            (b"tracestate", b"rojo=00f0"),
            (b"x-parent-job-id", b"job-parent"),
        ],
    )
    [(ctx, outgoing, state)] = app.seen
    assert ctx.trace_id == TRACE and ctx.span_id != SPAN
    assert outgoing["tracestate"] == "congo=t61rcWkgMzE,rojo=00f0"
    assert state == {
        "narration_parent_job_id": "job-parent",
        "narration_correlation_id": ctx.correlation_id,
    }
    assert "tracestate" not in outgoing_headers(NarrationContext(trace_id=TRACE, span_id=SPAN))


async def test_a_repeated_traceparent_is_invalid() -> None:
    app = App()
    header = f"00-{TRACE}-{SPAN}-01".encode()
    await _call(app, [(b"traceparent", header), (b"traceparent", header)])
    [(ctx, _, _)] = app.seen
    assert ctx.trace_id != TRACE


async def test_websockets_get_the_context_and_lifespan_passes_through() -> None:
    app = App()
    sent = await _call(app, [(b"x-correlation-id", b"ws-1")], kind="websocket")
    assert sent == [] and app.seen[0][0].correlation_id == "ws-1"
    await _call(app, [], kind="lifespan")
    assert app.seen[1][0] == current_context()
