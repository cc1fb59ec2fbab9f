"""narration and OpenTelemetry, both ways.

In (opentelemetry-api, always there): when an OpenTelemetry span is active, narration's events
carry its trace and span ids (`bridge`); with an SDK configured, jobs, and requests and calls
no instrumentation covers, are spans (`job_spans`, `narration.propagation.http`).

Out (the `narration-core[otel]` extra): `configure_otel()` sets up the SDK's tracer and logger
providers with OTLP exporters (or the standard `OTEL_*` environment variables), and every
narration event becomes an OpenTelemetry log record (`OtelLogSink`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .logs import OtelLogSink
    from .setup import OtelSetup, configure_otel, otel_from_env, shutdown_otel

__all__ = ["OtelLogSink", "OtelSetup", "configure_otel", "otel_from_env", "shutdown_otel"]

_LAZY = {
    "OtelLogSink": "logs",
    "OtelSetup": "setup",
    "configure_otel": "setup",
    "otel_from_env": "setup",
    "shutdown_otel": "setup",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
