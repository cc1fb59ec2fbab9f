"""Several server processes sharing one Redis: any replica serves any job, failover loses nothing.

Replicas are `python -m narration.server` child processes on free ports, with the test-only
operations of tests/replica_handlers.py (a `drip` job narrates numbered events).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from narration._process import ServiceProcess
from narration.client import Gap, JobClient, Terminal
from narration.events import NarrationEvent
from replica_handlers import drip_operation

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

TESTS_DIR = Path(__file__).resolve().parents[1]
LEASE_TTL_S = 2.0


def replica(store_url: str) -> ServiceProcess:
    """One `python -m narration.server` child process with the test-only handlers."""
    return ServiceProcess(
        "replica",
        ["--store", store_url, "--jobs", "replica_handlers:jobs", "--hold-unhandled"],
        module="narration.server",
        env={
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")])
            )
        },
    )


StartReplicas = Callable[..., Awaitable[list[ServiceProcess]]]


@pytest.fixture
async def replicas(redis_url: str) -> AsyncIterator[StartReplicas]:
    """`await replicas(2)`: started replicas sharing one Redis prefix (lease TTL 2 s)."""
    started: list[ServiceProcess] = []

    async def start(count: int) -> list[ServiceProcess]:
        url = f"{redis_url}&lease_ttl={LEASE_TTL_S}"
        group = [replica(url) for _ in range(count)]
        started.extend(group)
        for member in group:
            member.start()
        await asyncio.gather(*(member.wait_healthy_async(20.0) for member in group))
        return group

    try:
        yield start
    finally:
        for member in started:
            if member.alive():
                member.kill()  # teardown needs no graceful stop
            member.stop()
            member.remove_log()


async def next_item(stream: AsyncIterator[Any], timeout: float = 10.0) -> Any:
    return await asyncio.wait_for(anext(stream), timeout)


def check_exactly_once(events: list[NarrationEvent], terminal: Terminal, total: int) -> None:
    assert [event.id for event in events] == list(range(1, total + 1))
    assert [event.fields["i"] for event in events if event.fields] == list(range(1, total + 1))
    assert (terminal.state, terminal.id) == ("completed", total + 1)


async def test_submit_on_one_replica_stream_from_another(replicas: StartReplicas) -> None:
    a, b = await replicas(2)
    async with JobClient(a.url) as on_a, JobClient(b.url) as on_b:
        submitted = await on_a.submit(drip_operation(100, 1))
        events: list[NarrationEvent] = []
        stream = on_b.stream(submitted.job_id)
        while not isinstance(item := await next_item(stream), Terminal):
            assert not isinstance(item, Gap)
            events.append(item)
        check_exactly_once(events, item, 100)
        status = await on_b.status(submitted.job_id)
        assert (status["state"], status["events"]) == ("completed", 100)
        assert [job["job_id"] for job in await on_b.list_jobs()] == [submitted.job_id]


async def test_killed_owner_job_ends_in_error_within_the_lease_ttl(
    replicas: StartReplicas,
) -> None:
    a, b = await replicas(2)
    async with JobClient(a.url) as on_a, JobClient(b.url) as on_b:
        submitted = await on_a.submit(drip_operation(100_000, 2))
        stream = on_b.stream(submitted.job_id)
        events = [await next_item(stream) for _ in range(20)]
        a.kill()
        killed_at = time.monotonic()
        while not isinstance(item := await next_item(stream), Terminal):
            events.append(item)
        elapsed = time.monotonic() - killed_at
    print(f"owner killed -> `error` terminal on the other replica: {elapsed:.3f} s")
    assert item.state == "failed" and item.error == "owner lost"
    assert elapsed < LEASE_TTL_S
    ids = [event.id for event in events]
    assert ids == list(range(1, len(ids) + 1)) and item.id == len(ids) + 1


async def test_client_finishes_on_another_replica_when_its_replica_dies(
    replicas: StartReplicas,
) -> None:
    a, b = await replicas(2)
    total = 400
    async with JobClient([a.url, b.url], backoff_initial=0.02) as client:
        async with JobClient(b.url) as on_b:
            submitted = await on_b.submit(drip_operation(total, 5))
        stream = client.stream(submitted.job_id)
        events = [await next_item(stream) for _ in range(50)]
        assert client.base_url == a.url
        a.kill()
        killed_at = time.monotonic()
        events.append(await next_item(stream))
        failover = time.monotonic() - killed_at
        while not isinstance(item := await next_item(stream), Terminal):
            events.append(item)
        assert client.base_url == b.url
    print(f"streaming replica killed -> next event from the other replica: {failover:.3f} s")
    check_exactly_once(events, item, total)


async def test_restarting_the_streaming_replica_loses_no_event(replicas: StartReplicas) -> None:
    a, b = await replicas(2)
    total = 300
    client = JobClient(a.url, max_retries=40, backoff_initial=0.05, backoff_max=0.25)
    async with client, JobClient(b.url) as on_b:
        submitted = await on_b.submit(drip_operation(total, 10))
        stream = client.stream(submitted.job_id)
        events = [await next_item(stream) for _ in range(30)]
        stopped_at = time.monotonic()
        a.stop(grace=20.0)  # SIGTERM: a graceful stop (streams closed, running jobs ended)
        a.start()  # same port, same Redis
        await a.wait_healthy_async(20.0)
        restart = time.monotonic() - stopped_at
        while not isinstance(item := await next_item(stream), Terminal):
            events.append(item)
    print(f"streaming replica restarted in {restart:.3f} s")
    check_exactly_once(events, item, total)
