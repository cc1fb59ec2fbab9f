"""Job and correlation ids: how they look, how they are made, and how untrusted ones are checked."""

from __future__ import annotations

import re
import uuid

__all__ = [
    "is_job_id",
    "new_correlation_id",
    "new_job_id",
    "valid_correlation_id",
]

_JOB_ID_RE = re.compile(r"job-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_CORRELATION_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def new_job_id() -> str:
    """`job-` + a random uuid4."""
    return f"job-{uuid.uuid4()}"


def is_job_id(value: str) -> bool:
    """True when `value` has the form `job-<uuid4>` (lowercase hex)."""
    return _JOB_ID_RE.fullmatch(value) is not None


def new_correlation_id() -> str:
    """A fresh correlation id (a uuid4 in hex, 32 chars)."""
    return uuid.uuid4().hex


def valid_correlation_id(value: str | None) -> str | None:
    """`value` when it is 1-128 chars of `[A-Za-z0-9._:-]`, else None (the caller makes one)."""
    if value is not None and _CORRELATION_RE.fullmatch(value):
        return value
    return None
