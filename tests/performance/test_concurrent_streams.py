"""The seed's concurrent-stream tests: many open streams while emitting; a slow consumer."""

from __future__ import annotations

import asyncio

import pytest

from narration import n, narration_context
from narration.operations import Operation
from narration.testing import NarrationTestHarness

pytestmark = pytest.mark.bench


async def test_100_jobs_x_10_events_all_streams_open(
    narration_harness: NarrationTestHarness,
) -> None:
    job_ids = [await narration_harness.submit_job(Operation.hive_list()) for _ in range(100)]
    streams = [narration_harness.get_sse_stream(job_id) for job_id in job_ids]
    # Open every stream before emitting: each must see its first event live.
    for stream in streams:
        stream.open()
    firsts = []
    for job_id in job_ids:
        with narration_context(narration_harness.job_context(job_id)):
            n("hello", "first event of {}", job_id)
    for stream in streams:
        firsts.append(await stream.next_event(timeout=10))
    assert narration_harness.state.streams.open == 100
    for job_id in job_ids:
        with narration_context(narration_harness.job_context(job_id)):
            for i in range(1, 10):
                n("tick", "event {}", i)
        await narration_harness.complete_job(job_id)
    rests = await asyncio.gather(*(s.collect_until_done(timeout=20) for s in streams))
    for job_id, first, rest in zip(job_ids, firsts, rests, strict=True):
        events = [first, *rest]
        assert [e.id for e in events if e] == list(range(1, 11))
        assert {e.job_id for e in events if e} == {job_id}
    assert all(s.terminal and s.terminal.state == "completed" for s in streams)


async def test_10000_events_buffered_before_a_slow_consumer(
    narration_harness: NarrationTestHarness,
) -> None:
    job_id = await narration_harness.submit_job(Operation.hive_list())
    with narration_context(narration_harness.job_context(job_id)):
        for i in range(10_000):
            n("buffered", "event {}", i)
    await narration_harness.complete_job(job_id)
    stream = narration_harness.get_sse_stream(job_id)
    events = []
    while (event := await stream.next_event(timeout=10)) is not None:
        events.append(event)
        if len(events) % 1000 == 0:
            await asyncio.sleep(0.01)  # a slow reader: it must still get everything
    assert len(events) == 10_000
    assert [e.id for e in events] == list(range(1, 10_001))
    assert events[-1].human == "event 9999"
    assert stream.gaps == []
