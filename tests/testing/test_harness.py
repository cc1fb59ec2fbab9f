"""The test harness with a registry of your own, and its memory over a long run."""

from __future__ import annotations

import gc

import pytest
from pydantic import BaseModel

from narration import n, narration_context
from narration.jobs import Job, JobRegistry
from narration.testing import NarrationTestHarness

pytestmark = pytest.mark.e2e

jobs = JobRegistry()


class Greet(BaseModel):
    """Say hello `times` times."""

    name: str
    times: int = 1


@jobs.operation("greet")
async def greet(op: Greet, job: Job) -> None:
    for _ in range(op.times):
        n("greet", "Hello, {}", op.name)


class Held(BaseModel):
    """Declared without a handler: a harness validates it, then holds the job open."""

    step: int


jobs.add("held", None, model=Held)


async def test_your_operations_run_and_unknown_ones_are_refused() -> None:
    async with NarrationTestHarness(jobs) as harness:
        job_id = await harness.submit_job("greet", Greet(name="Ada", times=2))
        stream = harness.get_sse_stream(job_id)
        events = await stream.collect_until_done()
        assert [e.human for e in events] == ["Hello, Ada", "Hello, Ada"]
        assert stream.terminal is not None and stream.terminal.state == "completed"
        refused = await harness.http.post("/v1/jobs", json={"operation": "other"})
        assert refused.status_code == 422
        assert refused.json()["error"]["message"] == (
            "unknown operation 'other'; valid operations: status, greet, held"
        )
        invalid = await harness.http.post("/v1/jobs", json={"operation": "held", "step": "1"})
        assert invalid.status_code == 422
        assert invalid.json()["error"]["code"] == "invalid_fields"


async def test_a_thousand_jobs_through_one_harness_hold_flat_memory() -> None:
    async def run(harness: NarrationTestHarness, count: int, batch: int = 50) -> None:
        for first in range(0, count, batch):
            steps = range(first, first + batch)
            ids = [await harness.submit_job("held", {"step": i}) for i in steps]
            streams = [harness.get_sse_stream(job_id) for job_id in ids]
            for stream in streams:
                stream.open()
            await harness.state.streams.wait_for_open(batch)
            for i, job_id in zip(steps, ids, strict=True):
                with narration_context(harness.job_context(job_id)):
                    n("step", "Step {}", i)
                await harness.complete_job(job_id)  # retention 0: gone once it ends
            for i, stream in zip(steps, streams, strict=True):
                assert [e.human for e in await stream.collect_until_done()] == [f"Step {i}"]
            await harness.state.streams.wait_for_open(0)

    async with NarrationTestHarness(jobs, retention_s=0) as harness:
        await run(harness, 100)  # warm-up: caches, pools, the first connections
        gc.collect()
        before = len(gc.get_objects())
        await run(harness, 1000)
        gc.collect()
        grown = len(gc.get_objects()) - before
        assert harness._streams == set()  # every ended stream was let go
    # Keeping every stream (queue, task, events, terminal) held ~6.8 KB and dozens of objects
    # per job: tens of thousands here. Flat means a few hundred (bounded caches), whatever the
    # number of jobs.
    assert grown < 1000, f"{grown} objects kept over 1,000 jobs"
