"""`GET /metrics` scraped over HTTP from a real server, against a workload of known size."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel

from narration import n
from narration.jobs import Job, JobRegistry
from narration.operations import Operation
from narration.testing import NarrationTestHarness
from narration.testing.redis_server import RedisServer
from redis_server import TcpProxy
from stream_helpers import emit, read_stream

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def wait_for(check: Callable[[], Any], timeout: float = 10) -> None:
    """Wait until `check()` holds (a store's state, changed by its own background task)."""
    async with asyncio.timeout(timeout):
        while True:
            if check():
                return
            await asyncio.sleep(0.01)


class NoFields(BaseModel):
    """An operation without fields (each test gives its handler)."""


async def test_job_event_and_stream_metrics_count_a_known_workload() -> None:
    release = asyncio.Event()

    async def five(_: Any, job: Job) -> None:
        for i in range(5):
            n("step", "Step {}", i)

    async def two_then_fail(_: Any, job: Job) -> None:
        n("step", "One")
        n("step", "Two")
        raise RuntimeError("broken")  # the runner adds a `job_failed` event: 3 in all

    async def fifteen(_: Any, job: Job) -> None:
        for i in range(15):  # the log keeps 10: 5 dropped, a reader from the start gets a gap
            n("step", "Step {}", i)

    async def held(_: Any, job: Job) -> None:
        n("waiting", "Waiting to be released")
        await release.wait()

    jobs = JobRegistry()
    for name, handler in (
        ("five", five),
        ("two_then_fail", two_then_fail),
        ("fifteen", fifteen),
        ("held", held),
    ):
        jobs.add(name, handler, model=NoFields)
    async with NarrationTestHarness(jobs, max_events=10) as h:
        before = await scrape(h.http)
        assert value(before, "narration_events_appended_total") == 0
        for operation in ("five", "two_then_fail", "fifteen"):
            job_id = await h.submit_job(operation)
            stream = h.get_sse_stream(job_id)
            await stream.collect_until_done(10)
        assert [g.missed for g in stream.gaps] == [5]
        held_id = await h.submit_job("held")
        stream = h.get_sse_stream(held_id)
        assert (await stream.next_event()) is not None  # a stream open on the held job
        running = await scrape(h.http)
        release.set()
        await stream.collect_until_done(10)
        await h.state.streams.wait_for_open(0)
        after = await scrape(h.http)

    assert value(running, "narration_jobs_running", operation="held") == 1
    assert value(running, "narration_stream_subscribers") == 1
    assert value(running, "narration_streams_open") == 1
    assert value(running, "narration_events_appended_total") == 5 + 3 + 15 + 1
    for operation in ("five", "two_then_fail", "fifteen", "held"):
        assert value(after, "narration_jobs_submitted_total", operation=operation) == 1
        assert value(after, "narration_jobs_running", operation=operation) == 0
    finished = {
        (dict(labels)["operation"], dict(labels)["state"]): count
        for (name, labels), count in after.items()
        if name == "narration_jobs_finished_total"
    }
    assert finished == {
        ("five", "completed"): 1,
        ("two_then_fail", "failed"): 1,
        ("fifteen", "completed"): 1,
        ("held", "completed"): 1,
    }
    for (operation, state), count in finished.items():
        labels = {"operation": operation, "state": state}
        assert value(after, "narration_job_duration_seconds_count", **labels) == count
    assert value(after, "narration_events_appended_total") == 5 + 3 + 15 + 1
    assert value(after, "narration_events_dropped_total") == 5
    assert value(after, "narration_stream_gaps_total") == 1
    assert value(after, "narration_stream_subscribers") == 0
    assert value(after, "narration_streams_open") == 0
    assert value(after, "narration_bytes_retained") > 0  # logs are kept for their retention
    lag_batches = value(after, "narration_stream_delivery_lag_seconds_count")
    assert 1 <= lag_batches <= 5 + 3 + 10 + 1  # batches sampled (one per 10 ms at most)
    assert value(after, "narration_store_errors_total") == 0


async def test_metrics_and_health_through_a_redis_outage(redis_server: RedisServer) -> None:
    proxy = await TcpProxy.start(redis_server.port)
    harness = await NarrationTestHarness.start(store=proxy.url(max_pending=50, lease_ttl=1))
    try:
        assert (await harness.http.get("/health")).json()["status"] == "ok"
        job_id = await harness.submit_job(Operation.hive_list())
        reader = asyncio.create_task(read_stream(harness.http, job_id))
        emit(harness, job_id, 10)
        await harness.state.jobs.live[job_id].log.flush()
        store: Any = harness.state.store
        await wait_for(lambda: store.lease_renewals >= 1)
        renewed = value(await scrape(harness.http), "narration_redis_lease_renewals_total")
        assert renewed >= 1

        await proxy.cut()
        emit(harness, job_id, 200, start=10)  # 50 buffered, 150 dropped
        await wait_for(lambda: store.trouble() is not None)
        health = (await harness.http.get("/health")).json()
        assert health["status"] == "degraded"
        assert health["why"].startswith("Redis unreachable for ")
        down = await scrape(harness.http)
        assert value(down, "narration_store_errors_total") >= 1
        assert value(down, "narration_events_dropped_total") == 150

        proxy.restore()
        await wait_for(lambda: store.trouble() is None and not store._pending)
        assert (await harness.http.get("/health")).json()["status"] == "ok"
        await harness.complete_job(job_id)
        status, frames = await reader
        after = await scrape(harness.http)
    finally:
        await harness.stop()
        await proxy.close()
    assert status == 200
    assert [f["event"] for f in frames].count("gap") == 1
    assert value(after, "narration_jobs_submitted_total", operation="hive_list") == 1
    assert (
        value(after, "narration_jobs_finished_total", operation="hive_list", state="completed") == 1
    )
    assert value(after, "narration_events_appended_total") == 210
    assert value(after, "narration_events_dropped_total") == 150
    assert value(after, "narration_stream_gaps_total") == 1
    assert value(after, "narration_store_errors_total") >= value(
        down, "narration_store_errors_total"
    )
    assert value(after, "narration_redis_lease_renewals_total") >= renewed
    assert value(after, "narration_redis_failovers_total") == 0


def submitted_per_process(metrics_dir: Path) -> dict[str, float]:
    """`narration_jobs_submitted_total` as each worker process wrote it (its own file)."""
    counts: dict[str, float] = {}
    for path in metrics_dir.glob("counter_*.db"):
        with tempfile.TemporaryDirectory() as one:
            shutil.copy(path, one)
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, one)
            text = generate_latest(registry).decode()
        counts[path.stem.rsplit("_", 1)[-1]] = sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "narration_jobs_submitted_total"
        )
    return counts


async def test_several_worker_processes_on_one_port_answer_with_their_sum(
    tmp_path: Path,
) -> None:
    """Two uvicorn workers (separate processes) share a port; any one's scrape sums both."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    command = ["-m", "uvicorn", "narration.server.app:create_app", "--factory", "--workers", "2"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    server = await asyncio.create_subprocess_exec(sys.executable, *command, env=env)
    submitted = 0
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            async with asyncio.timeout(30):
                while True:
                    with contextlib.suppress(httpx.TransportError):
                        if (await http.get("/health")).status_code == 200:
                            break
                    await asyncio.sleep(0.1)
            # New connections until both workers have served jobs (bounded).
            while submitted < 200:
                async with httpx.AsyncClient(base_url=http.base_url, timeout=10) as fresh:
                    response = await fresh.post("/v1/jobs", json={"operation": "status"})
                assert response.status_code == 201
                submitted += 1
                per_process = submitted_per_process(metrics_dir)
                if submitted >= 10 and len([c for c in per_process.values() if c]) == 2:
                    break
            assert sum(per_process.values()) == submitted
            # Job counts are written as jobs start and end; event counts within ~1 s.
            async with asyncio.timeout(15):
                while True:
                    samples = await scrape(http)
                    if value(samples, "narration_events_appended_total") == submitted:
                        break
                    await asyncio.sleep(0.1)
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), 15)
    assert sorted(c > 0 for c in per_process.values()) == [True, True]
    assert value(samples, "narration_jobs_submitted_total", operation="status") == submitted
    finished = value(
        samples, "narration_jobs_finished_total", operation="status", state="completed"
    )
    assert finished == submitted
    assert value(samples, "narration_jobs_running", operation="status") == 0
