"""Redis itself going away: killed longer than the lease TTL and back with its data, or back empty.

Each test runs its own redis-server (it is killed), with the store's lease TTL at 1 s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from narration.operations import Operation
from narration.store.redis import LOST_BY_STORE, RedisEventLog, RedisStore
from narration.testing import NarrationTestHarness
from narration.testing.redis_server import RedisServer
from redis_server import binary_or_skip, unique_prefix
from stream_helpers import Frame, emit, read_stream

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

LEASE_TTL_S = 1.0


@pytest.fixture
def own_redis() -> Iterator[Callable[..., RedisServer]]:
    """`own_redis(appendonly=...)`: a redis-server of this test's own, stopped afterwards."""
    started: list[RedisServer] = []

    def start(**options: Any) -> RedisServer:
        server = RedisServer.start(binary_or_skip(), **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


async def whole_stream(http: httpx.AsyncClient, job_id: str) -> list[Frame]:
    """Every frame of one stream response (bounded by 30 s)."""
    status, frames = await read_stream(http, job_id, timeout=30)
    assert status == 200
    return frames


async def health_until(harness: NarrationTestHarness, ok: Callable[[dict[str, Any]], bool]) -> Any:
    """The first `/health` body `ok` accepts (polled, bounded by 15 s)."""
    async with asyncio.timeout(15):
        while True:
            body = (await harness.http.get("/health")).json()
            if ok(body):
                return body
            await asyncio.sleep(0.02)


async def drip(harness: NarrationTestHarness, job_id: str, until: asyncio.Event) -> int:
    """Narrate one event every 20 ms (at most 2,000) until `until` is set; how many."""
    count = 0
    while not until.is_set() and count < 2000:
        emit(harness, job_id, 1, start=count)
        count += 1
        await asyncio.sleep(0.02)
    return count


async def test_redis_killed_longer_than_the_lease_ttl_and_back_loses_no_event(
    own_redis: Callable[..., RedisServer],
) -> None:
    """Redis (append-only file, fsync always) SIGKILLed for 1.6 lease TTLs while a job
    narrates every 20 ms: the owner renews before anyone reaps, its buffered events are
    written in order, and the reader (on another replica, which reaps too) gets every id once,
    then `done`: no `error`, no gap."""
    server = own_redis(appendonly=True)
    url = server.url(prefix=unique_prefix(), lease_ttl=LEASE_TTL_S)
    harness = await NarrationTestHarness.start(store=url)
    other = await NarrationTestHarness.start(store=url)
    try:
        job_id = await harness.submit_job(Operation.hive_list())
        reader = asyncio.create_task(whole_stream(other.http, job_id))
        stop = asyncio.Event()
        dripping = asyncio.create_task(drip(harness, job_id, stop))
        stream = harness.get_sse_stream(job_id)
        for i in range(10):
            await stream.assert_next("step", f"step {i}")

        server.kill()
        killed = time.monotonic()
        down = await health_until(harness, lambda body: not body["redis"]["connected"])
        assert down["status"] == "degraded"
        assert down["why"].startswith("Redis unreachable for ")
        assert " events buffered, 0 dropped, 0 lost" in down["why"]
        # The outage lasts 1.6 lease TTLs (a duration of the scenario, not a wait for a state).
        await asyncio.sleep(max(0.0, 1.6 * LEASE_TTL_S - (time.monotonic() - killed)))
        server.restart()

        await health_until(harness, lambda body: body["status"] == "ok")
        stop.set()
        total = await dripping
        await harness.complete_job(job_id)
        frames = await reader
        await stream.close()
        health = (await harness.http.get("/health")).json()["redis"]
        reaped = (await other.http.get("/health")).json()["redis"]["jobs_reaped"]
    finally:
        await harness.stop()
        await other.stop()
    assert total >= 80  # ~1.6 s of the outage at one event per 20 ms, and more around it
    assert [frame["event"] for frame in frames] == ["narration"] * total + ["done"]
    assert [int(frame["id"]) for frame in frames] == list(range(1, total + 2))
    assert [frame["data"]["fields"]["i"] for frame in frames[:-1]] == list(range(total))
    assert frames[-1]["data"]["state"] == "completed"
    assert (health["dropped"], health["lost"], health["jobs_reaped"], reaped) == (0, 0, 0, 0)


async def test_redis_back_empty_ends_every_open_stream_with_one_error_terminal(
    own_redis: Callable[..., RedisServer],
) -> None:
    """Redis restarted without its data while a job streams to readers on two replicas:
    each stream ends with one `error` terminal saying the store lost the job, right after
    the last event it read; the job answers 404; the events narrated after are counted, as
    `lost` (Redis no longer had the job) or `late` (the owner had already found its lease
    gone and stopped writing), never written."""
    server = own_redis()
    url = server.url(prefix=unique_prefix(), lease_ttl=LEASE_TTL_S)
    a = await NarrationTestHarness.start(store=url)
    b = await NarrationTestHarness.start(store=url)
    try:
        job_id = await a.submit_job(Operation.hive_list())
        streams = [a.get_sse_stream(job_id), b.get_sse_stream(job_id)]
        emit(a, job_id, 5)
        for stream in streams:
            for i in range(5):
                await stream.assert_next("step", f"step {i}")

        server.kill()
        await health_until(a, lambda body: not body["redis"]["connected"])
        server.restart(empty=True)
        await health_until(a, lambda body: body["redis"]["connected"])
        emit(a, job_id, 3, start=5)  # the job runs on; Redis no longer knows it
        for stream in streams:
            assert await stream.collect_until_done(timeout=15) == []
            terminal = stream.terminal
            assert terminal is not None
            assert (terminal.id, terminal.state) == (6, "failed")  # the `error` event
            assert terminal.error == LOST_BY_STORE
        assert (await b.http.get(f"/v1/jobs/{job_id}")).status_code == 404
        store = a.state.store
        assert isinstance(store, RedisStore)
        log = a.state.jobs.live[job_id].log
        assert isinstance(log, RedisEventLog)
        await log.flush()
        assert (log.lost + log.late, log.dropped) == (3, 0)
        assert store.health()["redis"]["lost"] == log.lost
        for stream in streams:
            await stream.close()
    finally:
        await a.stop()
        await b.stop()
