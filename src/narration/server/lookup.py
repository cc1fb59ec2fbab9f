"""Finding a job for the read routes: in the live store first, then in the archive."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..archive import ArchivedEventLog, ArchivedJob
from ..store.base import EventLog, JobRecord, StoreUnavailableError
from .auth import Principal, visible

if TYPE_CHECKING:
    from .app import ServerState

__all__ = ["archived", "find_log", "find_record", "find_summary"]


async def find_log(state: ServerState, job_id: str) -> EventLog | None:
    """The job's log: live, else read back from the archive; None when unknown or expired."""
    log = await state.store.log(job_id)
    if log is not None or state.archive is None:
        return log
    job = await archived(state, job_id)
    return ArchivedEventLog(state.archive, job) if job is not None else None


async def find_record(state: ServerState, job_id: str) -> JobRecord | None:
    """The job's record: live, else archived; None when unknown or expired."""
    record = await state.store.get(job_id)
    if record is not None or state.archive is None:
        return record
    job = await archived(state, job_id)
    return job.record if job is not None else None


async def find_summary(
    state: ServerState, job_id: str, principal: Principal
) -> dict[str, Any] | None:
    """The body of `GET /v1/jobs/{id}`: live, else archived; None when unknown, expired or not
    `principal`'s to see (another tenant's job is as unknown as one that never was)."""
    record = await state.store.get(job_id)
    if record is not None:
        if not visible(principal, record):
            return None
        log = await state.store.log(job_id)
        return record.summary(log.count() if log else 0)
    if state.archive is None:
        return None
    job = await archived(state, job_id)
    if job is None or not visible(principal, job.record):
        return None
    return job.summary()


async def archived(state: ServerState, job_id: str) -> ArchivedJob | None:
    """The job from the archive (a 503 `StoreUnavailableError` when it cannot be read)."""
    if state.archive is None:
        return None
    try:
        return await asyncio.to_thread(state.archive.get, job_id)
    except (OSError, ValueError) as exc:
        raise StoreUnavailableError(f"the archive cannot be read: {exc}") from exc
