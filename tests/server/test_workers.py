"""`narration serve --workers N`: N server processes on one port, any of them answering any job.

A real `narration serve --workers 2` child process (a supervisor and two workers sharing one
listening socket) with the Redis store and the test-only operations of
tests/replica_handlers.py; clients pinned to one worker each (one kept-alive connection).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from narration._process import ServiceProcess
from narration.server.workers import worker_argv
from replica_handlers import drip_operation
from stream_helpers import parse_frames

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

TESTS_DIR = Path(__file__).resolve().parents[1]


def test_a_worker_runs_the_same_command_on_the_inherited_socket() -> None:
    argv = ["serve", "--workers", "3", "--store", "redis://h/0", "--workers=4", "--port", "80"]
    assert worker_argv(argv, 7) == [
        sys.executable,
        *("-m", "narration.cli", "serve", "--store", "redis://h/0", "--port", "80"),
        *("--workers", "1", "--listen-fd", "7"),
    ]


def test_the_memory_store_refuses_more_than_one_worker() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "narration.cli", "serve", "--workers", "2", "--port", "0"],
        capture_output=True,
        timeout=60,
        env={**os.environ, "NARRATION_STORE": ""},
    )
    assert done.returncode == 2
    message = " ".join((done.stdout + done.stderr).decode().split())  # the console's ✖ line
    assert "--workers 2 needs a shared store: with the memory store each worker process" in message


@pytest.fixture
async def two_workers(redis_url: str) -> AsyncIterator[ServiceProcess]:
    service = ServiceProcess(
        "workers",
        ["serve", "--jobs", "replica_handlers:jobs", "--store", redis_url, "--workers", "2"],
        env={
            "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS_DIR), os.getenv("PYTHONPATH")]))
        },
    )
    service.start()
    try:
        await service.wait_healthy_async(30.0)
        yield service
    finally:
        code = service.stop(grace=20.0)
        service.remove_log()
        assert code == 0  # the supervisor stopped its workers gracefully, then itself


async def pinned_clients(url: str) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
    """Two clients on one kept-alive connection each, to two different workers."""
    by_worker: dict[str, httpx.AsyncClient] = {}
    spare: list[httpx.AsyncClient] = []
    for _ in range(100):  # the kernel picks the worker of each new connection
        client = httpx.AsyncClient(
            base_url=url, limits=httpx.Limits(max_connections=1), timeout=30, trust_env=False
        )
        replica = (await client.get("/health")).json()["redis"]["replica"]
        if replica in by_worker:
            spare.append(client)
        else:
            by_worker[replica] = client
        if len(by_worker) == 2:
            break
    for client in spare:
        await client.aclose()
    assert len(by_worker) == 2, "100 connections all reached the same worker"
    first, second = by_worker.values()
    return first, second


async def stream_frames(client: httpx.AsyncClient, job_id: str, **headers: str) -> Any:
    async with asyncio.timeout(30):
        response = await client.get(f"/v1/jobs/{job_id}/stream", headers=headers)
    assert response.status_code == 200
    return parse_frames(response.text)


async def test_any_worker_answers_any_jobs_get_stream_resume_and_cancel(
    two_workers: ServiceProcess,
) -> None:
    a, b = await pinned_clients(two_workers.url)
    try:
        for owner, other in ((a, b), (b, a)):
            created = await owner.post("/v1/jobs", json=drip_operation(20, 5))
            assert created.status_code == 201
            job_id = created.json()["job_id"]
            frames = await stream_frames(other, job_id)  # streamed by the other worker
            assert [int(frame["id"]) for frame in frames] == list(range(1, 22))
            assert [frame["event"] for frame in frames] == ["narration"] * 20 + ["done"]
            assert [frame["data"]["fields"]["i"] for frame in frames[:-1]] == list(range(1, 21))
            record = (await other.get(f"/v1/jobs/{job_id}")).json()
            assert (record["state"], record["events"]) == ("completed", 20)
            resumed = await stream_frames(other, job_id, **{"Last-Event-ID": "15"})
            assert [int(frame["id"]) for frame in resumed] == list(range(16, 22))

            running = (await owner.post("/v1/jobs", json=drip_operation(10_000, 50))).json()
            cancelled = await other.delete(f"/v1/jobs/{running['job_id']}")
            assert cancelled.status_code == 200
            assert cancelled.json() == {"job_id": running["job_id"], "state": "cancelled"}
            frames = await stream_frames(owner, running["job_id"])
            assert frames[-1]["event"] == "cancelled"
            assert [int(f["id"]) for f in frames] == list(range(1, len(frames) + 1))
    finally:
        await a.aclose()
        await b.aclose()


def _children(pid: int) -> set[int]:
    """The pids of `pid`'s child processes (Linux /proc)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(child) for child in text.split()}


async def test_a_worker_that_dies_is_replaced_and_sigterm_still_stops_them_all(
    two_workers: ServiceProcess,
) -> None:
    supervisor = two_workers.pid
    assert supervisor is not None
    first = _children(supervisor)
    assert len(first) == 2
    killed = min(first)
    os.kill(killed, signal.SIGKILL)  # dies on its own, as far as the supervisor can tell
    replaced: set[int] = set()
    for _ in range(300):  # bounded: 30 s in 0.1 s steps, until a new worker is up
        replaced = _children(supervisor)
        if len(replaced) == 2 and killed not in replaced:
            break
        await asyncio.sleep(0.1)
    assert len(replaced) == 2 and killed not in replaced and (first - {killed}) < replaced
    await two_workers.wait_healthy_async(30.0)  # the fixture's SIGTERM then stops all with 0
