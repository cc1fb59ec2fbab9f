"""Several server processes sharing one Redis: any replica serves any job, failover loses nothing.

Replicas are `python -m narration.server` child processes on free ports, with the test-only
handlers of tests/replica_handlers.py (an `infer` job drips numbered events).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from narration.client import Gap, JobClient, Terminal
from narration.events import NarrationEvent
from narration.testing.redis_server import free_port
from replica_handlers import drip_operation

pytestmark = pytest.mark.redis

TESTS_DIR = Path(__file__).resolve().parents[1]
LEASE_TTL_S = 2.0


class Replica:
    """One `python -m narration.server` child process."""

    def __init__(self, store_url: str) -> None:
        self.store_url = store_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(tempfile.mkstemp(prefix="narration-replica-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), env.get("PYTHONPATH")]))
        command = [
            sys.executable, "-m", "narration.server", "--host", "127.0.0.1",
            "--port", str(self.port), "--store", self.store_url,
            "--handlers", "replica_handlers:HANDLERS", "--hold-unhandled",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)

    async def wait_ready(self, timeout: float = 20.0) -> None:
        """Poll /health until it answers (bounded); fail with the replica's log if it died."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with httpx.AsyncClient(timeout=1.0) as http:
            while loop.time() < deadline:
                assert self.process is not None and self.process.poll() is None, self.logs()
                try:
                    if (await http.get(self.url + "/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise TimeoutError(f"replica on {self.url} not up within {timeout} s\n{self.logs()}")

    def kill(self) -> None:
        """SIGKILL: the process dies at once, leases and queued events with it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> None:
        """SIGTERM: a graceful stop (streams closed, running jobs ended)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=20)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.log_path.unlink(missing_ok=True)


StartReplicas = Callable[..., Awaitable[list[Replica]]]


@pytest.fixture
async def replicas(redis_url: str) -> AsyncIterator[StartReplicas]:
    """`await replicas(2)`: started replicas sharing one Redis prefix (lease TTL 2 s)."""
    started: list[Replica] = []

    async def start(count: int) -> list[Replica]:
        url = f"{redis_url}&lease_ttl={LEASE_TTL_S}"
        group = [Replica(url) for _ in range(count)]
        started.extend(group)
        for replica in group:
            replica.start()
        await asyncio.gather(*(replica.wait_ready() for replica in group))
        return group

    try:
        yield start
    finally:
        for replica in started:
            replica.stop()


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
        a.terminate()
        a.start()  # same port, same Redis
        await a.wait_ready()
        restart = time.monotonic() - stopped_at
        while not isinstance(item := await next_item(stream), Terminal):
            events.append(item)
    print(f"streaming replica restarted in {restart:.3f} s")
    check_exactly_once(events, item, total)
