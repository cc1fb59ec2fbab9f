"""narration and OpenTelemetry, both ways.

In (opentelemetry-api, always there): when an OpenTelemetry span is active, narration's events
carry its trace and span ids (`bridge`); with an SDK configured, jobs, and requests and calls
no instrumentation covers, are spans (`job_spans`, `narration.propagation.http`).

Out (the `narration-core[otel]` extra): `configure_otel()` sets up the SDK's tracer and logger
providers with OTLP exporters (or the standard `OTEL_*` environment variables), and every
narration event becomes an OpenTelemetry log record (`OtelLogSink`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .logs import OtelLogSink
    from .setup import OtelSetup, configure_otel, shutdown_otel

__all__ = ["OtelLogSink", "OtelSetup", "configure_otel", "otel_from_env", "shutdown_otel"]

_LAZY = {
    "OtelLogSink": "logs",
    "OtelSetup": "setup",
    "configure_otel": "setup",
    "shutdown_otel": "setup",
}


_TRUE = {"1", "true", "yes", "on"}
# Any of these set asks for export (the OTLP exporters read the rest themselves).
_ASKING = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    "OTEL_TRACES_EXPORTER",
    "OTEL_LOGS_EXPORTER",
)


def otel_from_env(environ: Mapping[str, str] | None = None) -> OtelSetup | None:
    """`configure_otel()` when the standard `OTEL_*` variables ask for export, else None.

    Asked by any of `OTEL_EXPORTER_OTLP_ENDPOINT` (or its `_TRACES_` / `_LOGS_` forms),
    `OTEL_TRACES_EXPORTER`, `OTEL_LOGS_EXPORTER` (`otlp`, the default, `console` or `none`);
    `OTEL_SDK_DISABLED=true` wins. Without the SDK installed it says so on stderr and returns
    None. Costs nothing (no import) when nothing asks.
    """
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return None
    if not any(env.get(name) for name in _ASKING):
        return None
    try:
        from .setup import _from_env
    except ImportError as exc:
        print(
            f"narration: OTEL_* asks for export, but the SDK is missing ({exc}); "
            "install narration-core[otel]",
            file=sys.stderr,
        )
        return None
    return _from_env(env)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
