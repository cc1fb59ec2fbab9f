"""The public surface, pinned: what each package exports (`__all__`), and that each name is
there. A change here is a change of the public API: make it on purpose."""

from __future__ import annotations

import importlib

import pytest

pytestmark = pytest.mark.unit

EXPORTED: dict[str, set[str]] = {
    "narration": {
        "Level",
        "Mode",
        "NarrationContext",
        "NarrationError",
        "NarrationEvent",
        "Redaction",
        "__version__",
        "attach",
        "configure",
        "configure_from_env",
        "current_context",
        "detach",
        "flush",
        "init_from_env",
        "n",
        "narrate",
        "narration_context",
        "with_narration_context",
    },
    "narration.jobs": {
        "FINAL_STATES",
        "Handler",
        "IllegalTransitionError",
        "Job",
        "JobFinishedError",
        "JobManager",
        "JobRegistry",
        "JobState",
        "NotAcceptingError",
        "OperationError",
        "OperationSpec",
        "RegistryError",
        "Retry",
        "UnknownJobError",
        "check_transition",
    },
    "narration.server": {
        "NarrationServer",
        "ServerSettings",
        "ServerState",
        "create_app",
        "make_server",
        "mount_narration",
        "serve",
    },
    "narration.client": {
        "Gap",
        "JobClient",
        "JobClientError",
        "StreamItem",
        "Submitted",
        "Terminal",
        "backoff_delay",
        "operation_body",
    },
    "narration.testing": {
        "CapturedEvents",
        "MultiServiceHarness",
        "NarrationTestHarness",
        "capture",
    },
    "narration.propagation": {
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
    },
    "narration.sinks": {
        "BackgroundSink",
        "ConsoleSink",
        "JsonlSink",
        "LoggingSink",
        "NarrationHandler",
        "QueuedSink",
    },
    "narration.store": {
        "EventLog",
        "JobRecord",
        "LogLimits",
        "MemoryEventLog",
        "MemoryStore",
        "ReadResult",
        "Store",
        "StoreUnavailableError",
        "open_store",
    },
    "narration.operations": {
        "HiveCheck",
        "HiveGet",
        "HiveList",
        "Infer",
        "Operation",
        "OperationError",
        "OperationModel",
        "REFERENCE_OPERATIONS",
        "Status",
        "WorkerList",
        "WorkerSpawn",
    },
    "narration.otel": {
        "OtelLogSink",
        "OtelSetup",
        "configure_otel",
        "otel_from_env",
        "shutdown_otel",
    },
    "narration.errors": {
        "JobError",
        "NarrationError",
    },
    "narration.archive": {
        "Archive",
        "ArchiveError",
        "ArchiveFS",
        "ArchivedEventLog",
        "ArchivedJob",
        "Archiver",
        "FsspecFS",
        "LocalFS",
        "open_fs",
    },
}


@pytest.mark.parametrize("module", sorted(EXPORTED))
def test_exported_members(module: str) -> None:
    imported = importlib.import_module(module)
    assert set(imported.__all__) == EXPORTED[module]
    for name in imported.__all__:
        assert getattr(imported, name) is not None, f"{module}.{name}"


def test_the_core_names_of_the_contract_are_there() -> None:
    """The names other code relies on (docs/ARCHITECTURE.md section 2)."""
    contract = {
        "n",
        "narrate",
        "NarrationContext",
        "with_narration_context",
        "narration_context",
        "current_context",
        "NarrationEvent",
        "Level",
        "Mode",
        "configure",
    }
    assert contract <= EXPORTED["narration"]
