"""OpenTelemetry for the test suite: the SDK set up with in-memory exporters, then undone.

The API lets a process set its global providers once; the fixture forgets them afterwards (as
OpenTelemetry's own tests do), so the rest of the suite runs without an SDK.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry import _logs, trace
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from narration.otel import OtelSetup, configure_otel, shutdown_otel
from narration.otel.bridge import stop_following_spans

__all__ = ["Exported", "otel"]


@dataclass
class Exported:
    """The setup and what it exported."""

    setup: OtelSetup
    spans: InMemorySpanExporter
    logs: InMemoryLogRecordExporter


def _reset_globals() -> None:
    trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]
    trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
    _logs._internal._LOGGER_PROVIDER = None  # type: ignore[attr-defined]
    _logs._internal._LOGGER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]


@pytest.fixture
def otel() -> Iterator[Exported]:
    """`configure_otel()` with in-memory exporters for one test."""
    _reset_globals()
    spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
    setup = configure_otel(service_name="narration-test", span_exporter=spans, log_exporter=logs)
    try:
        yield Exported(setup, spans, logs)
    finally:
        shutdown_otel()
        stop_following_spans()
        _reset_globals()
