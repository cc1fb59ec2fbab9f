"""The seed's high-frequency tests: exact counts and per-task order under load (no timings)."""

from __future__ import annotations

import asyncio

import pytest

from narration import n, narration_context
from narration.operations import Operation
from narration.testing import NarrationTestHarness

pytestmark = pytest.mark.bench


async def _emit_and_collect(harness: NarrationTestHarness, count: int) -> list[int]:
    job_id = await harness.submit_job(Operation.hive_list())
    stream = harness.get_sse_stream(job_id)
    with narration_context(harness.job_context(job_id)):
        for i in range(count):
            n("tick", "tick {}", i, i=i)
    await harness.complete_job(job_id)
    events = await stream.collect_until_done(timeout=30)
    assert [e.id for e in events] == list(range(1, count + 1))
    assert stream.terminal is not None and stream.terminal.id == count + 1
    return [e.fields["i"] for e in events if e.fields]


async def test_1000_events_arrive_in_order(narration_harness: NarrationTestHarness) -> None:
    assert await _emit_and_collect(narration_harness, 1_000) == list(range(1_000))


async def test_10000_events_arrive_in_order(narration_harness: NarrationTestHarness) -> None:
    assert await _emit_and_collect(narration_harness, 10_000) == list(range(10_000))


async def test_10_tasks_x_100_concurrent_emits(narration_harness: NarrationTestHarness) -> None:
    job_id = await narration_harness.submit_job(Operation.hive_list())
    stream = narration_harness.get_sse_stream(job_id)

    async def worker(task: int) -> None:
        for i in range(100):
            n("emit", "task {} event {}", task, i, task=task, i=i)
            if i % 7 == 0:
                await asyncio.sleep(0)  # interleave the tasks

    with narration_context(narration_harness.job_context(job_id)):
        await asyncio.gather(*(worker(t) for t in range(10)))
    await narration_harness.complete_job(job_id)
    events = await stream.collect_until_done(timeout=30)
    assert len(events) == 1_000
    assert [e.id for e in events] == list(range(1, 1_001))
    for task in range(10):
        mine = [e.fields["i"] for e in events if e.fields and e.fields["task"] == task]
        assert mine == list(range(100)), f"task {task} out of order"
