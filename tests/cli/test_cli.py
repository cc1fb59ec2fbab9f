"""The keeper's pieces: `--set` typing by the server's schemas, event lines and exit codes."""

from __future__ import annotations

from typing import Any

import pytest

from narration.cli import EXIT_CANCELLED, EXIT_DONE, EXIT_ERROR
from narration.cli import build_operation as build_body
from narration.cli import render_event as render
from narration.cli.keeper import _exit_code
from narration.client import Terminal
from narration.events import Level, NarrationEvent
from narration.operations import (
    REFERENCE_OPERATIONS,
    Infer,
    Operation,
    OperationError,
    WorkerSpawn,
)

pytestmark = pytest.mark.unit

# What `GET /v1/operations` answers for the reference operations.
SCHEMAS = {
    spec.name: {"summary": spec.summary, "schema": spec.model.model_json_schema()}
    for spec in REFERENCE_OPERATIONS
}


def build_operation(name: str, assignments: list[str]) -> Any:
    return Operation.parse(build_body(name, assignments, SCHEMAS))


def test_set_keeps_text_fields_as_written_and_reads_the_rest_as_json() -> None:
    op = build_operation(
        "infer",
        [
            "hive_id=localhost",
            "model=123",
            "prompt=true",
            "max_tokens=64",
            "temperature=0.5",
            "stream=false",
            "top_k=null",
        ],
    )
    assert op == Infer(
        hive_id="localhost",
        model="123",
        prompt="true",
        max_tokens=64,
        temperature=0.5,
        stream=False,
        top_k=None,
    )


def test_set_value_may_contain_equals_signs() -> None:
    op = build_operation("infer", ["hive_id=h", "model=m", "prompt=a=b=c"])
    assert isinstance(op, Infer)
    assert op.prompt == "a=b=c"


def test_set_device_is_typed() -> None:
    op = build_operation("worker_spawn", ["hive_id=h", "model=m", "worker=cpu", "device=2"])
    assert op == WorkerSpawn(hive_id="h", model="m", worker="cpu", device=2)


def test_bad_assignments_and_operations_are_usage_errors() -> None:
    with pytest.raises(ValueError, match=r"--set expects key=value, got 'prompt'"):
        build_operation("infer", ["prompt"])
    with pytest.raises(ValueError, match=r"unknown operation 'nope'; the server runs: status, "):
        build_operation("nope", [])
    with pytest.raises(OperationError, match=r"max_tokens: Input should be a valid integer"):
        build_operation("infer", ["hive_id=h", "model=m", "prompt=p", "max_tokens=lots"])


def test_event_line_has_time_actor_action_and_message() -> None:
    event = NarrationEvent(
        ts=1764103678.123456,
        level=Level.WARN,
        actor="hive",
        action="stderr",
        human="disk almost full",
        correlation_id="c-1",
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        span_id="00f067aa0ba902b7",
        origin="worker:pid-7#3",
    )
    plain = render(event).plain
    clock = plain[:12]
    assert plain == f"{clock} hive    stderr        [warn] disk almost full"
    assert render(event, ids=True).plain == (
        f"{clock} hive    stderr        [warn] disk almost full  corr=c-1 trace=4bf92f35… "
        "span=00f067aa… origin=worker:pid-7#3"
    )
    warn_spans = [span.style for span in render(event).spans]
    assert "yellow" in warn_spans


def test_without_schemas_json_values_are_json_and_the_rest_text() -> None:
    body = build_body("build_report", ["report_id=r-1", "pages=3", "draft=true", "title=Q3 x"])
    assert body == {
        "operation": "build_report",
        "report_id": "r-1",
        "pages": 3,
        "draft": True,
        "title": "Q3 x",
    }


def test_json_fields_come_first_and_set_overrides_them() -> None:
    body = build_body("infer", ["max_tokens=9"], SCHEMAS, {"prompt": "hi", "max_tokens": 1})
    assert body == {"operation": "infer", "prompt": "hi", "max_tokens": 9}


def test_exit_codes_follow_the_terminal() -> None:
    assert _exit_code(Terminal("job-1", "completed")) == EXIT_DONE == 0
    assert _exit_code(Terminal("job-1", "failed", "boom")) == EXIT_ERROR == 1
    assert _exit_code(Terminal("job-1", "cancelled")) == EXIT_CANCELLED == 130
