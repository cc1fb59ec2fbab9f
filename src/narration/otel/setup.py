"""`configure_otel()`: OpenTelemetry out in one call (the `narration-core[otel]` extra).

Sets up, unless the application already did, the SDK's tracer provider (job, request and call
spans) and logger provider (one log record per event), each exporting in batches over OTLP/HTTP
(endpoint, headers and timeouts from the standard `OTEL_EXPORTER_OTLP_*` variables unless
given), and adds the event-to-log-record sink. `narration.otel.otel_from_env()` does the same
when the standard `OTEL_*` variables ask for export; the server calls it at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import _logs, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    ConsoleLogRecordExporter,
    LogRecordExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from ..dispatch import dispatcher
from . import bridge
from .logs import OtelLogSink

__all__ = ["OtelSetup", "configure_otel", "shutdown_otel"]


@dataclass
class OtelSetup:
    """What `configure_otel` set up: the providers in use and the log sink."""

    tracer_provider: Any
    logger_provider: Any
    log_sink: OtelLogSink | None

    def flush(self, timeout: float = 5.0) -> None:
        """Export everything emitted so far: events into records, then spans and records."""
        if self.log_sink is not None:
            self.log_sink.flush(timeout)
        for provider in (self.tracer_provider, self.logger_provider):
            force_flush = getattr(provider, "force_flush", None)
            if force_flush is not None:
                force_flush(int(timeout * 1000))


_setup: OtelSetup | None = None


def configure_otel(
    *,
    service_name: str | None = None,
    span_exporter: SpanExporter | None = None,
    log_exporter: LogRecordExporter | None = None,
    traces: bool = True,
    logs: bool = True,
    resource_attributes: Mapping[str, Any] | None = None,
) -> OtelSetup:
    """Export narration's spans and events to OpenTelemetry; returns what was set up.

    Providers the application already configured are used as they are; otherwise new ones are
    made with `service_name` (else `OTEL_SERVICE_NAME`) and exporters `span_exporter` and
    `log_exporter` (else OTLP/HTTP, configured by `OTEL_EXPORTER_OTLP_*`). Calling it again
    returns the first setup.
    """
    global _setup
    if _setup is not None:
        return _setup
    attributes = dict(resource_attributes or {})
    if service_name is not None:
        attributes["service.name"] = service_name
    resource = Resource.create(attributes)
    tracer_provider: Any = trace.get_tracer_provider()
    if traces and not bridge.tracing():
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter or _otlp_spans()))
        trace.set_tracer_provider(tracer_provider)
    log_sink = None
    logger_provider: Any = _logs.get_logger_provider()
    if logs:
        if not isinstance(logger_provider, LoggerProvider):
            logger_provider = LoggerProvider(resource=resource)
            logger_provider.add_log_record_processor(
                BatchLogRecordProcessor(log_exporter or _otlp_logs())
            )
            _logs.set_logger_provider(logger_provider)
        log_sink = OtelLogSink(logger_provider)
        dispatcher.add_sink(log_sink)
    bridge.follow_spans()
    _setup = OtelSetup(tracer_provider, logger_provider, log_sink)
    return _setup


def _from_env(env: Mapping[str, str]) -> OtelSetup:
    """`configure_otel()` with the exporters `OTEL_TRACES_EXPORTER` / `OTEL_LOGS_EXPORTER` name."""
    traces_kind = env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    logs_kind = env.get("OTEL_LOGS_EXPORTER", "otlp").strip().lower()
    return configure_otel(
        traces=traces_kind != "none",
        logs=logs_kind != "none",
        span_exporter=ConsoleSpanExporter() if traces_kind == "console" else None,
        log_exporter=ConsoleLogRecordExporter() if logs_kind == "console" else None,
    )


def shutdown_otel(timeout: float = 5.0) -> None:
    """Flush and stop the log sink narration added (the providers stay with the application)."""
    global _setup
    if _setup is None:
        return
    _setup.flush(timeout)
    if _setup.log_sink is not None:
        dispatcher.remove_sink(_setup.log_sink)
        _setup.log_sink.close()
    _setup = None


def _otlp_spans() -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _otlp_logs() -> LogRecordExporter:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    return OTLPLogExporter()
