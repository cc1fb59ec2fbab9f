"""The seed's memory tests: nothing stays behind after jobs end or streams drop."""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from narration import n, narration_context
from narration.dispatch import dispatcher
from narration.operations import Operation
from narration.testing import NarrationTestHarness

pytestmark = pytest.mark.bench


async def test_1000_job_lifecycles_leave_nothing_behind() -> None:
    async with NarrationTestHarness(retention_s=0) as harness:
        jobs, store = harness.state.jobs, harness.state.store

        async def lifecycle() -> None:
            job = await jobs.submit(Operation.hive_list(), correlation_id="mem")
            with narration_context(job.context):
                for i in range(5):
                    n("tick", "tick {}", i)
            await jobs.complete(job.job_id)

        for _ in range(100):  # warm-up: caches, lazily built structures
            await lifecycle()
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        for _ in range(1_000):
            await lifecycle()
        gc.collect()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        growth = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
        assert jobs.running == 0
        assert len(store) == 0  # type: ignore[arg-type]
        assert not any(key.startswith("job-") for key in dispatcher.routes)
        assert growth < 1024 * 1024, f"grew by {growth} bytes over 1000 jobs"


async def test_dropped_stream_leaves_nothing_and_a_new_one_replays(
    narration_harness: NarrationTestHarness,
) -> None:
    job_id = await narration_harness.submit_job(Operation.hive_list())
    with narration_context(narration_harness.job_context(job_id)):
        for i in range(5):
            n("tick", "tick {}", i)
    first = narration_harness.get_sse_stream(job_id)
    assert (await first.next_event()) is not None
    assert narration_harness.state.streams.open == 1
    await first.close()  # the client drops the connection mid-stream
    await narration_harness.state.streams.wait_for_open(0)

    second = narration_harness.get_sse_stream(job_id)
    with narration_context(narration_harness.job_context(job_id)):
        n("tick", "tick {}", 5)
    await narration_harness.complete_job(job_id)
    events = await second.collect_until_done()
    assert [e.human for e in events] == [f"tick {i}" for i in range(6)]
    await narration_harness.state.streams.wait_for_open(0)
