"""Carrying the job's ids over HTTP: an ASGI middleware for servers, httpx hooks for clients.

Headers (DESIGN.md section 5):

- `X-Correlation-Id`: kept when valid (1-128 chars of `[A-Za-z0-9._:-]`), else a new one is
  made; echoed on every response.
- W3C `traceparent` / `tracestate`: read with opentelemetry-api's TraceContext propagator. A
  valid one is continued (same trace id, a new span id for this hop); a missing or malformed
  one is ignored, as the W3C spec says, and a new trace is started — the request is served.
- `X-Parent-Job-Id`: the caller's job; a valid one is put in the request state as
  `narration_parent_job_id` (`request.state.narration_parent_job_id` in Starlette/FastAPI).

The request runs in the server's context with those ids (and no job id), so everything it
narrates, and every job it starts, carries them.
"""

from __future__ import annotations

from typing import Any

import httpx
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..context import NarrationContext, _current, current_context
from ..ids import new_correlation_id, valid_correlation_id
from .tracecontext import (
    bind_tracestate,
    format_traceparent,
    new_span_id,
    new_trace_id,
    parse_traceparent,
    tracestate_for,
    unbind_tracestate,
    valid_span_id,
    valid_trace_id,
)

__all__ = [
    "CORRELATION_HEADER",
    "PARENT_JOB_HEADER",
    "NarrationMiddleware",
    "async_client",
    "async_request_hook",
    "extract_trace",
    "outgoing_headers",
    "parse_traceparent",
    "request_hook",
    "sync_client",
]

CORRELATION_HEADER = "X-Correlation-Id"
PARENT_JOB_HEADER = "X-Parent-Job-Id"
PARENT_JOB_STATE_KEY = "narration_parent_job_id"
# The request's correlation id, for handlers that answer outside the middleware (a 500).
CORRELATION_STATE_KEY = "narration_correlation_id"

_CORRELATION = b"x-correlation-id"
_TRACEPARENT = b"traceparent"
_TRACESTATE = b"tracestate"
_PARENT_JOB = b"x-parent-job-id"
_propagator = TraceContextTextMapPropagator()


def extract_trace(
    traceparent: str | None, tracestate: list[str] | None = None
) -> tuple[str, str, str | None] | None:
    """`(trace_id, parent_span_id, tracestate)` from incoming W3C headers, or None if invalid.

    Uses opentelemetry-api's propagator; `tracestate` (all header lines of it) is only read
    when `traceparent` is valid, and comes back as one normalized header value (or None).
    """
    if not traceparent:
        return None
    carrier: dict[str, Any] = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    otel_context = _propagator.extract(carrier)
    span_context = trace.get_current_span(otel_context).get_span_context()
    if not span_context.is_valid:
        return None
    state = span_context.trace_state.to_header() if span_context.trace_state else None
    return (
        trace.format_trace_id(span_context.trace_id),
        trace.format_span_id(span_context.span_id),
        state or None,
    )


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
        incoming = extract_trace(traceparent, tracestate) if traceparent else None
        if incoming is None:
            trace_id, state = new_trace_id(), None
        else:
            trace_id, _parent_span, state = incoming
        parent_job = valid_correlation_id(parent_job)
        request_state = scope.setdefault("state", {})
        request_state[CORRELATION_STATE_KEY] = correlation
        if parent_job is not None:
            request_state[PARENT_JOB_STATE_KEY] = parent_job
        # A request is not part of whatever job the server was started in: no job id. (The
        # constructor, not dataclasses.replace: this runs on every request.)
        base = _current.get()
        token = _current.set(
            NarrationContext(
                None, correlation, base.actor, trace_id, new_span_id(), base.fields, base.taps
            )
        )
        state_token = bind_tracestate(trace_id, state)
        try:
            if kind == "http":
                await self.app(scope, receive, _echo_correlation(send, correlation))
            else:
                await self.app(scope, receive, send)
        finally:
            unbind_tracestate(state_token)
            _current.reset(token)


def _echo_correlation(send: Send, correlation_id: str) -> Send:
    """`send`, with `X-Correlation-Id` set (once) on the response start."""
    header = (_CORRELATION, correlation_id.encode("latin-1"))

    async def send_with_correlation(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [h for h in message.get("headers", ()) if h[0].lower() != _CORRELATION]
            headers.append(header)
            message = {**message, "headers": headers}
        await send(message)

    return send_with_correlation


def outgoing_headers(ctx: NarrationContext | None = None) -> dict[str, str]:
    """The propagation headers for a request made in `ctx` (default: the current context).

    `X-Correlation-Id`, `traceparent` (`00-<trace_id>-<span_id>-01`: this context's span is the
    parent of the next hop's), `tracestate` when one came with this trace, and
    `X-Parent-Job-Id` (the context's job). Ids that are absent or malformed are left out.
    """
    ctx = current_context() if ctx is None else ctx
    headers: dict[str, str] = {}
    correlation = valid_correlation_id(ctx.correlation_id)
    if correlation is not None:
        headers[CORRELATION_HEADER] = correlation
    trace_id = ctx.trace_id
    if trace_id is not None and valid_trace_id(trace_id):
        span_id = ctx.span_id if ctx.span_id and valid_span_id(ctx.span_id) else new_span_id()
        headers["traceparent"] = format_traceparent(trace_id, span_id)
        state = tracestate_for(ctx)
        if state:
            headers["tracestate"] = state
    parent_job = valid_correlation_id(ctx.job_id)
    if parent_job is not None:
        headers[PARENT_JOB_HEADER] = parent_job
    return headers


def request_hook(request: httpx.Request) -> None:
    """httpx `request` event hook: add the current context's propagation headers.

    Headers the request already has (set explicitly) are left alone.
    """
    for name, value in outgoing_headers(current_context()).items():
        if name not in request.headers:
            request.headers[name] = value


async def async_request_hook(request: httpx.Request) -> None:
    """`request_hook` for `httpx.AsyncClient` (which awaits its hooks)."""
    request_hook(request)


def _hooks(kwargs: dict[str, Any], hook: Any) -> dict[str, list[Any]]:
    given = kwargs.pop("event_hooks", None) or {}
    hooks = {name: list(funcs) for name, funcs in given.items()}
    hooks["request"] = [*hooks.get("request", ()), hook]
    return hooks


def async_client(**httpx_kwargs: Any) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` that sends the current context's ids with every request.

    Takes the `httpx.AsyncClient` arguments; `event_hooks` given are kept (ours runs last and
    only adds headers that are missing).
    """
    hooks = _hooks(httpx_kwargs, async_request_hook)
    return httpx.AsyncClient(event_hooks=hooks, **httpx_kwargs)


def sync_client(**httpx_kwargs: Any) -> httpx.Client:
    """The `httpx.Client` twin of `async_client`."""
    hooks = _hooks(httpx_kwargs, request_hook)
    return httpx.Client(event_hooks=hooks, **httpx_kwargs)
