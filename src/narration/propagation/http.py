"""Carrying the job's ids over HTTP: an ASGI middleware for servers, httpx hooks for clients.

Headers (docs/ARCHITECTURE.md, "Crossing boundaries"):

- `X-Correlation-Id`: kept when valid (1-128 chars of `[A-Za-z0-9._:-]`), else a new one is
  made; echoed on every response.
- W3C `traceparent` / `tracestate` (Trace Context Level 2, `tracecontext.py` and
  `tracestate.py`): a valid one is continued (same trace id and flags, a new span id for this
  hop); a missing or malformed one is ignored, as the spec says, and a new trace started (flags
  `03`: sampled, random trace id) — the request is served. Every outgoing request names a new
  span id as its parent-id.
- `X-Parent-Job-Id`: the caller's job; a valid one is put in the request state as
  `narration_parent_job_id` (`request.state.narration_parent_job_id` in Starlette/FastAPI).

With OpenTelemetry: when a span is active (FastAPI or httpx instrumentation, user code), its
ids are the request's; when an SDK is configured and no instrumentation made a span, narration
makes the server span (middleware) and the client span (httpx hooks) itself.

The request runs in the server's context with those ids (and no job id), so everything it
narrates, and every job it starts, carries them.
"""

from __future__ import annotations

import weakref
from typing import Any

import httpx
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..context import NarrationContext, attach, current_context, detach
from ..ids import new_correlation_id, valid_correlation_id
from ..otel import bridge
from ..protocol import CORRELATION_HEADER, PARENT_JOB_HEADER, raw_header
from .tracecontext import (
    NEW_TRACE_FLAGS,
    bind_trace,
    format_traceparent,
    new_span_id,
    new_trace_id,
    parse_traceparent,
    parse_traceparent_flags,
    trace_flags_for,
    tracestate_for,
    unbind_trace,
    valid_span_id,
    valid_trace_id,
)
from .tracestate import parse_tracestate

__all__ = [
    "CORRELATION_HEADER",
    "PARENT_JOB_HEADER",
    "NarrationMiddleware",
    "async_client",
    "async_request_hook",
    "async_response_hook",
    "extract_trace",
    "outgoing_headers",
    "parse_traceparent",
    "request_hook",
    "response_hook",
    "sync_client",
]

PARENT_JOB_STATE_KEY = "narration_parent_job_id"
# The request's correlation id, for handlers that answer outside the middleware (a 500).
CORRELATION_STATE_KEY = "narration_correlation_id"

_CORRELATION = raw_header(CORRELATION_HEADER)
_TRACEPARENT = b"traceparent"
_TRACESTATE = b"tracestate"
_PARENT_JOB = raw_header(PARENT_JOB_HEADER)
_SPAN_EXTENSION = "narration_client_span"


def extract_trace(
    traceparent: str | None, tracestate: list[str] | None = None
) -> tuple[str, str, str | None] | None:
    """`(trace_id, parent_span_id, tracestate)` from incoming W3C headers, or None if invalid.

    `tracestate` (all header lines of it) is only read when `traceparent` is valid, and comes
    back as one header value by the current grammar (or None when absent or invalid).
    """
    incoming = parse_traceparent_flags(traceparent)
    if incoming is None:
        return None
    return incoming.trace_id, incoming.span_id, parse_tracestate(tracestate)


class _RequestTrace:
    """The trace ids one request runs with, and the server span narration made for it, if any."""

    __slots__ = ("flags", "span", "span_id", "state", "trace_id")

    def __init__(self, traceparent: str | None, tracestate: list[str] | None, scope: Scope) -> None:
        incoming = parse_traceparent_flags(traceparent) if traceparent else None
        state = parse_tracestate(tracestate) if incoming is not None and tracestate else None
        self.span: Span | None = None
        active = bridge.active_span_ids()
        if active is not None:  # OpenTelemetry instrumentation serves this request
            if incoming is None or incoming.trace_id != active.trace_id:
                state = active.tracestate
            self.trace_id, self.span_id, self.flags = active.trace_id, active.span_id, active.flags
        elif bridge.tracing():  # an SDK, no instrumentation: narration makes the server span
            parent = (
                bridge.parent_context(incoming.trace_id, incoming.span_id, incoming.flags, state)
                if incoming is not None
                else None
            )
            method = str(scope.get("method", "GET"))
            self.span, ids = bridge.start_span(
                method,
                SpanKind.SERVER,
                parent,
                {"http.request.method": method, "url.path": str(scope.get("path", ""))},
            )
            self.trace_id, self.span_id, self.flags = ids.trace_id, ids.span_id, ids.flags
        elif incoming is None:
            self.trace_id, self.span_id, self.flags = new_trace_id(), new_span_id(), NEW_TRACE_FLAGS
        else:
            self.trace_id, self.span_id, self.flags = (
                incoming.trace_id,
                new_span_id(),
                incoming.flags,
            )
        self.state = state


class NarrationMiddleware:
    """Pure ASGI middleware: each request runs in a narration context built from its headers.

    `app.add_middleware(NarrationMiddleware)`. For `http` and `websocket` scopes; anything else
    (lifespan) passes through untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        if CORRELATION_STATE_KEY in scope.get("state", ()):
            # An outer narration layer (a host app's, around a mounted narration server)
            # already gave this request its context: one correlation id and span per request.
            await self.app(scope, receive, send)
            return
        correlation: str | None = None
        traceparent: str | None = None
        tracestate: list[str] | None = None
        parent_job: str | None = None
        for name, value in scope["headers"]:
            if name == _CORRELATION:
                correlation = value.decode("latin-1")
            elif name == _TRACEPARENT:
                # A repeated traceparent is invalid; joined with "," it fails to parse.
                text = value.decode("latin-1")
                traceparent = text if traceparent is None else f"{traceparent},{text}"
            elif name == _TRACESTATE:
                tracestate = [*(tracestate or ()), value.decode("latin-1")]
            elif name == _PARENT_JOB:
                parent_job = value.decode("latin-1")
        correlation = valid_correlation_id(correlation) or new_correlation_id()
        trace = _RequestTrace(traceparent, tracestate, scope)
        parent_job = valid_correlation_id(parent_job)
        request_state = scope.setdefault("state", {})
        request_state[CORRELATION_STATE_KEY] = correlation
        if parent_job is not None:
            request_state[PARENT_JOB_STATE_KEY] = parent_job
        # A request is not part of whatever job the server was started in: no job id. (The
        # constructor, not dataclasses.replace: this runs on every request.)
        base = current_context()
        token = attach(
            NarrationContext(
                None, correlation, base.actor, trace.trace_id, trace.span_id, base.fields
            )
        )
        trace_token = bind_trace(trace.trace_id, trace.flags, trace.state)
        span = trace.span
        span_token = bridge.activate(span) if span is not None else None
        try:
            if kind == "http":
                await self.app(scope, receive, _echo_correlation(send, correlation, span))
            else:
                await self.app(scope, receive, send)
        except BaseException as exc:
            if span is not None:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            if span_token is not None:
                bridge.deactivate(span_token)
            if span is not None:
                span.end()
            unbind_trace(trace_token)
            detach(token)


def _echo_correlation(send: Send, correlation_id: str, span: Span | None = None) -> Send:
    """`send`, with `X-Correlation-Id` set (once) on the response start (and its status on
    narration's server span, when there is one)."""
    header = (_CORRELATION, correlation_id.encode("latin-1"))

    async def send_with_correlation(message: Message) -> None:
        if message["type"] == "http.response.start":
            if span is not None:
                _record_status(span, int(message.get("status", 200)), server=True)
            headers = [h for h in message.get("headers", ()) if h[0].lower() != _CORRELATION]
            headers.append(header)
            message = {**message, "headers": headers}
        await send(message)

    return send_with_correlation


def outgoing_headers(ctx: NarrationContext | None = None) -> dict[str, str]:
    """The propagation headers for a request made in `ctx` (default: the current context).

    `X-Correlation-Id`; `traceparent` naming a new span id (this request, as the next hop's
    parent) with the trace's flags; `tracestate` when one came with this trace;
    `X-Parent-Job-Id` (the context's job). Ids that are absent or malformed are left out. An
    active OpenTelemetry span gives the trace id and flags.
    """
    return _headers(current_context() if ctx is None else ctx, None)


def _headers(ctx: NarrationContext, client: bridge.SpanIds | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    correlation = valid_correlation_id(ctx.correlation_id)
    if correlation is not None:
        headers[CORRELATION_HEADER] = correlation
    trace_id, flags, state = ctx.trace_id, trace_flags_for(ctx), tracestate_for(ctx)
    active = client or bridge.active_span_ids()
    if active is not None and active.trace_id != trace_id:  # the span's trace, not narration's
        trace_id, flags, state = active.trace_id, active.flags, active.tracestate
    elif active is not None:
        flags = active.flags
    if trace_id is not None and valid_trace_id(trace_id):
        span_id = client.span_id if client is not None else new_span_id()
        headers["traceparent"] = format_traceparent(trace_id, span_id, flags=flags)
        if state:
            headers["tracestate"] = state
    parent_job = valid_correlation_id(ctx.job_id)
    if parent_job is not None:
        headers[PARENT_JOB_HEADER] = parent_job
    return headers


def request_hook(request: httpx.Request) -> None:
    """httpx `request` event hook: add the current context's propagation headers.

    Headers the request already has (set explicitly) are left alone. With an OpenTelemetry SDK
    configured (and no httpx instrumentation), the request gets a client span of its own, ended
    by `response_hook` (or, when no response comes, once the request is dropped).
    """
    ctx = current_context()
    client = None
    if "traceparent" not in request.headers:
        client = _start_client_span(request, ctx)
    for name, value in _headers(ctx, client).items():
        if name not in request.headers:
            request.headers[name] = value


def response_hook(response: httpx.Response) -> None:
    """httpx `response` event hook: end the request's client span with the response status."""
    span = response.request.extensions.pop(_SPAN_EXTENSION, None)
    if span is not None:
        _record_status(span, response.status_code, server=False)
        _end(span)


async def async_response_hook(response: httpx.Response) -> None:
    """`response_hook` for `httpx.AsyncClient`."""
    response_hook(response)


def _start_client_span(request: httpx.Request, ctx: NarrationContext) -> bridge.SpanIds | None:
    """A client span for `request`, when narration makes spans and no instrumentation does."""
    if not bridge.tracing() or _httpx_instrumented():
        return None
    flags = trace_flags_for(ctx)
    state = tracestate_for(ctx)
    trace_id = ctx.trace_id if ctx.trace_id and valid_trace_id(ctx.trace_id) else None
    span_id = ctx.span_id if ctx.span_id and valid_span_id(ctx.span_id) else None
    parent = bridge.parent_context(trace_id, span_id, flags, state)
    method = request.method
    span, ids = bridge.start_span(
        method,
        SpanKind.CLIENT,
        parent,
        {"http.request.method": method, "url.full": str(request.url.copy_with(query=None))},
    )
    request.extensions = {**request.extensions, _SPAN_EXTENSION: span}
    weakref.finalize(request, _end, span)  # no response (connection error): ended when dropped
    return ids


def _httpx_instrumented() -> bool:
    """True when opentelemetry-instrumentation-httpx makes client spans (it then injects)."""
    import sys

    module = sys.modules.get("opentelemetry.instrumentation.httpx")
    if module is None:
        return False
    return bool(module.HTTPXClientInstrumentor().is_instrumented_by_opentelemetry)


def _record_status(span: Span, status: int, *, server: bool) -> None:
    span.set_attribute("http.response.status_code", status)
    if status >= 500 or (not server and status >= 400):
        span.set_status(Status(StatusCode.ERROR))


def _end(span: Span) -> None:
    if span.is_recording():
        span.end()


async def async_request_hook(request: httpx.Request) -> None:
    """`request_hook` for `httpx.AsyncClient` (which awaits its hooks)."""
    request_hook(request)


def _hooks(kwargs: dict[str, Any], hook: Any, on_response: Any) -> dict[str, list[Any]]:
    given = kwargs.pop("event_hooks", None) or {}
    hooks = {name: list(funcs) for name, funcs in given.items()}
    hooks["request"] = [*hooks.get("request", ()), hook]
    hooks["response"] = [on_response, *hooks.get("response", ())]
    return hooks


def async_client(**httpx_kwargs: Any) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` that sends the current context's ids with every request.

    Takes the `httpx.AsyncClient` arguments; `event_hooks` given are kept (ours runs last and
    only adds headers that are missing).
    """
    hooks = _hooks(httpx_kwargs, async_request_hook, async_response_hook)
    return httpx.AsyncClient(event_hooks=hooks, **httpx_kwargs)


def sync_client(**httpx_kwargs: Any) -> httpx.Client:
    """The `httpx.Client` twin of `async_client`."""
    hooks = _hooks(httpx_kwargs, request_hook, response_hook)
    return httpx.Client(event_hooks=hooks, **httpx_kwargs)
