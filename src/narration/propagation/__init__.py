"""Carrying the narration context across boundaries where Python does not carry it by itself.

- threads, thread pools, `loop.run_in_executor`: `wrap`, `Thread`, `ContextExecutor`;
- child processes: `child_env()` in the parent, `init_from_env()` in the child, and
  `ProcessCapture` to run the child and relay its output into the parent's job;
- HTTP: `NarrationMiddleware` for ASGI servers, `outgoing_headers()`, `async_client()` and
  `sync_client()` for httpx.

The HTTP and process-capture parts are imported on first use, so a child process that only
calls `init_from_env()` does not pay for httpx, Starlette and asyncio at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .subprocess import child_env, init_from_env
from .threads import ContextExecutor, Thread, wrap
from .tracecontext import format_traceparent, new_span_id, new_trace_id, parse_traceparent

if TYPE_CHECKING:
    from .capture import ProcessCapture, ProcessFailedError
    from .http import (
        NarrationMiddleware,
        async_client,
        async_request_hook,
        outgoing_headers,
        request_hook,
        sync_client,
    )

__all__ = [
    "ContextExecutor",
    "NarrationMiddleware",
    "ProcessCapture",
    "ProcessFailedError",
    "Thread",
    "async_client",
    "async_request_hook",
    "child_env",
    "format_traceparent",
    "init_from_env",
    "new_span_id",
    "new_trace_id",
    "outgoing_headers",
    "parse_traceparent",
    "request_hook",
    "sync_client",
    "wrap",
]

_LAZY = {
    "ProcessCapture": "capture",
    "ProcessFailedError": "capture",
    "NarrationMiddleware": "http",
    "async_client": "http",
    "async_request_hook": "http",
    "outgoing_headers": "http",
    "request_hook": "http",
    "sync_client": "http",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
