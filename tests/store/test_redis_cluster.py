"""The Redis store on a Redis Cluster whose primary dies mid-stream (its replica promoted).

The store's contract tests run on a cluster through `store_url`; this file holds what only a
cluster does. The test kills a node, so it starts a cluster of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from narration.operations import Operation
from narration.testing import NarrationTestHarness
from narration.testing.redis_cluster import RedisCluster
from redis_server import binary_or_skip, unique_prefix
from stream_helpers import Frame, emit, read_stream

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

JOBS = 100


@pytest.fixture
def own_cluster() -> Iterator[RedisCluster]:
    """A cluster of this test's own (it loses a node)."""
    cluster = RedisCluster.start(binary_or_skip())
    try:
        yield cluster
    finally:
        cluster.stop()


async def whole_stream(http: httpx.AsyncClient, job_id: str) -> list[Frame]:
    """Every frame of one stream response (bounded by 60 s)."""
    status, frames = await read_stream(http, job_id, timeout=60)
    assert status == 200
    return frames


async def test_a_primary_killed_while_100_jobs_stream_loses_no_event_and_repeats_none(
    own_cluster: RedisCluster,
) -> None:
    """100 jobs narrate one event each every 50 ms, each read by an SSE stream; a primary is
    SIGKILLed and the cluster promotes its replica (~2 s): every stream still gets ids 1..N
    once each, in order, then `done`, with no gap."""
    url = own_cluster.url(prefix=unique_prefix(), lease_ttl=5)
    harness = await NarrationTestHarness.start(store=url)
    try:
        jobs = [await harness.submit_job(Operation.hive_list()) for _ in range(JOBS)]
        readers = [asyncio.create_task(whole_stream(harness.http, job)) for job in jobs]
        await harness.state.streams.wait_for_open(JOBS, timeout=20)
        sent = 0

        async def tick() -> None:
            nonlocal sent
            for job in jobs:
                emit(harness, job, 1, start=sent)
            sent += 1
            await asyncio.sleep(0.05)

        for _ in range(10):
            await tick()
        victim = own_cluster.primaries()[0]
        replica = own_cluster.replica_of(victim)
        own_cluster.kill(victim)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while own_cluster.role(replica) != "master" and loop.time() < deadline:
            await tick()  # the jobs narrate on while the cluster fails over
        assert own_cluster.role(replica) == "master"
        promoted = time.monotonic()
        while time.monotonic() - promoted < 0.5:
            await tick()
        for job in jobs:
            await harness.complete_job(job)
        results = await asyncio.gather(*readers)
    finally:
        await harness.stop()
    assert sent >= 20
    for job, frames in zip(jobs, results, strict=True):
        assert [frame["event"] for frame in frames] == ["narration"] * sent + ["done"], job
        assert [int(frame["id"]) for frame in frames] == list(range(1, sent + 2)), job
        assert [frame["data"]["fields"]["i"] for frame in frames[:-1]] == list(range(sent))
