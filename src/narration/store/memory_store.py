"""The embedded store: job records in a dict, each job's events in a `MemoryEventLog`."""

from __future__ import annotations

import asyncio

from .base import EventLog, JobRecord, LogLimits, Store
from .memory import MemoryEventLog
from .query import JobPage, JobQuery, record_key

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    """Jobs and logs in this process's memory; forgotten `retention_s` after their terminal."""

    def __init__(self, limits: LogLimits | None = None) -> None:
        self.limits = limits or LogLimits()
        self._records: dict[str, JobRecord] = {}
        self._logs: dict[str, MemoryEventLog] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    async def create(self, record: JobRecord) -> EventLog:
        log = MemoryEventLog(record.job_id, self.limits)
        self._records[record.job_id] = record
        self._logs[record.job_id] = log
        return log

    async def get(self, job_id: str) -> JobRecord | None:
        return self._records.get(job_id)

    async def log(self, job_id: str) -> EventLog | None:
        return self._logs.get(job_id)

    async def list(
        self,
        state: str | None,
        limit: int,
        correlation_id: str | None = None,
        tenant: str | None = None,
    ) -> list[JobRecord]:
        result: list[JobRecord] = []
        for record in reversed(self._records.values()):  # insertion order = creation order
            if record.matches(state, correlation_id, tenant):
                result.append(record)
                if len(result) >= limit:
                    break
        return result

    async def query(self, query: JobQuery) -> JobPage:
        page = JobPage()
        for record in reversed(self._records.values()):  # insertion order = creation order
            if query.matches(record):
                page.records.append(record)
                if len(page.records) >= query.limit:
                    page.stop = record_key(record)
                    break
        return page

    async def start(self, record: JobRecord) -> None:
        self._records[record.job_id] = record

    async def finish(self, record: JobRecord, log: EventLog) -> None:
        self._records[record.job_id] = record
        assert isinstance(log, MemoryEventLog)
        log.seal(record.state, record.error)

    async def expire(self, job_id: str, after_s: float) -> None:
        if after_s <= 0:
            self._forget(job_id)
            return
        loop = asyncio.get_running_loop()
        earlier = self._timers.pop(job_id, None)  # a later call sets the retention afresh
        if earlier is not None:
            earlier.cancel()
        self._timers[job_id] = loop.call_later(after_s, self._forget, job_id)

    def _forget(self, job_id: str) -> None:
        self._records.pop(job_id, None)
        self._logs.pop(job_id, None)
        timer = self._timers.pop(job_id, None)
        if timer is not None:
            timer.cancel()

    def __len__(self) -> int:
        return len(self._records)

    def retained_bytes(self) -> int:
        """Bytes held by the logs still kept, finished ones included (metrics)."""
        return sum(log.retained()[1] for log in list(self._logs.values()))

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
