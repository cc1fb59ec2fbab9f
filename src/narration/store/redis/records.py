"""A `JobRecord` as the fields of its Redis hash, and back."""

from __future__ import annotations

from typing import Any

import msgspec

from ..base import JobRecord

__all__ = ["record_fields", "record_from"]

_OPTIONAL = (
    "started_at",
    "finished_at",
    "error",
    "parent_job_id",
    "trace_id",
    "owner",
    "tenant",
)


def record_fields(record: JobRecord) -> list[Any]:
    """`field, value, ...` for HSET: floats as `repr`, the operation as JSON, None left out."""
    fields: list[Any] = [
        "job_id",
        record.job_id,
        "operation",
        msgspec.json.encode(record.operation),
        "correlation_id",
        record.correlation_id,
        "state",
        record.state,
        "created_at",
        repr(record.created_at),
    ]
    for name in _OPTIONAL:
        value = getattr(record, name)
        if value is not None:
            fields += [name, repr(value) if isinstance(value, float) else value]
    if record.attempts is not None:
        fields += ["attempts", msgspec.json.encode(record.attempts)]
    return fields


def record_from(job_id: str, raw: dict[Any, Any]) -> JobRecord:
    """The record of a job's hash as HGETALL returns it (bytes keys and values)."""

    def text(name: str) -> str | None:
        value = raw.get(name.encode())
        return None if value is None else value.decode()

    def number(name: str) -> float | None:
        value = raw.get(name.encode())
        return None if value is None else float(value)

    operation_raw = raw.get(b"operation")
    operation = msgspec.json.decode(operation_raw) if operation_raw else {}
    attempts_raw = raw.get(b"attempts")
    return JobRecord(
        job_id=text("job_id") or job_id,
        operation=operation,
        correlation_id=text("correlation_id") or "",
        state=text("state") or "queued",
        created_at=number("created_at") or 0.0,
        started_at=number("started_at"),
        finished_at=number("finished_at"),
        error=text("error"),
        parent_job_id=text("parent_job_id"),
        trace_id=text("trace_id"),
        owner=text("owner"),
        tenant=text("tenant"),
        attempts=msgspec.json.decode(attempts_raw) if attempts_raw else None,
    )
