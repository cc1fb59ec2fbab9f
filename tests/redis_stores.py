"""Redis store helpers for the store tests: events, job records, a running job, a store with
changed options, and `raw`, a plain Redis client of the session's redis-server (a fixture,
imported by tests/conftest.py)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from narration.events import Level, NarrationEvent
from narration.store import JobRecord
from narration.store.redis import RedisEventLog, RedisOptions, RedisStore
from narration.testing.redis_server import RedisServer

__all__ = ["event", "raw", "record", "running_job", "store_for"]


def event(i: int, job_id: str) -> NarrationEvent:
    return NarrationEvent(
        ts=time.time(), level=Level.INFO, actor="test", action="step", human=f"step {i}",
        job_id=job_id, fields={"i": i},
    )  # fmt: skip


def record(job_id: str = "job-00000000-0000-4000-8000-000000000001") -> JobRecord:
    return JobRecord(job_id, {"operation": "hive_list"}, "corr-1", created_at=time.time())


async def running_job(
    store: RedisStore, job_id: str | None = None
) -> tuple[JobRecord, RedisEventLog]:
    rec = record(job_id) if job_id else record()
    log = await store.create(rec)
    assert isinstance(log, RedisEventLog)
    rec.state, rec.started_at = "running", time.time()
    await store.start(rec)
    return rec, log


def store_for(url: str, **changes: object) -> RedisStore:
    _, options = RedisOptions.from_url(url, environ={})
    return RedisStore(url, options=dataclasses.replace(options, **changes))  # type: ignore[arg-type]


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis(port=redis_server.port)
    try:
        yield client
    finally:
        await client.aclose()
