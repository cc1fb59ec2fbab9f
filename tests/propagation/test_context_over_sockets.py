"""The seed's context-propagation tests, against a real server over real sockets."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from narration import NarrationContext, current_context, n, narration_context
from narration.operations import Operation
from narration.testing import NarrationTestHarness

pytestmark = pytest.mark.e2e


async def test_nested_tasks_three_levels_deep(narration_harness: NarrationTestHarness) -> None:
    job_id = await narration_harness.submit_job(Operation.hive_list(), correlation_id="nest-1")
    stream = narration_harness.get_sse_stream(job_id)

    async def level3() -> None:
        n("level3", "Level three")

    async def level2() -> None:
        n("level2", "Level two")
        await asyncio.create_task(level3())

    async def level1() -> None:
        n("level1", "Level one")
        await asyncio.create_task(level2())

    with narration_context(narration_harness.job_context(job_id)):
        await asyncio.create_task(level1())
    await narration_harness.complete_job(job_id)

    events = await stream.collect_until_done()
    assert [e.action for e in events] == ["level1", "level2", "level3"]
    assert [e.id for e in events] == [1, 2, 3]
    assert {e.job_id for e in events} == {job_id}
    assert {e.correlation_id for e in events} == {"nest-1"}
    assert stream.terminal is not None and stream.terminal.state == "completed"


async def test_context_survives_await_points(narration_harness: NarrationTestHarness) -> None:
    job_id = await narration_harness.submit_job(Operation.status())
    ctx = NarrationContext(job_id="job-x", correlation_id="await-1")
    seen: list[NarrationContext] = []
    with narration_context(ctx):
        for _ in range(5):
            await asyncio.sleep(0)
            response = await narration_harness.http.get(f"/v1/jobs/{job_id}")
            assert response.status_code == 200
            seen.append(current_context())
    assert {(c.job_id, c.correlation_id) for c in seen} == {("job-x", "await-1")}


async def test_isolation_between_two_jobs(narration_harness: NarrationTestHarness) -> None:
    job_a = await narration_harness.submit_job(Operation.hive_list(), correlation_id="corr-a")
    job_b = await narration_harness.submit_job(Operation.hive_list(), correlation_id="corr-b")
    stream_a = narration_harness.get_sse_stream(job_a)
    stream_b = narration_harness.get_sse_stream(job_b)
    both_started = asyncio.Barrier(2)

    async def work(job_id: str, name: str) -> None:
        with narration_context(narration_harness.job_context(job_id)):
            for i in range(20):
                n("step", "{} step {}", name, i)
                if i == 10:
                    await both_started.wait()
                await asyncio.sleep(0)

    await asyncio.gather(work(job_a, "a"), work(job_b, "b"))
    await narration_harness.complete_job(job_a)
    await narration_harness.complete_job(job_b)
    events_a = await stream_a.collect_until_done()
    events_b = await stream_b.collect_until_done()
    assert [e.human for e in events_a] == [f"a step {i}" for i in range(20)]
    assert [e.human for e in events_b] == [f"b step {i}" for i in range(20)]
    assert {(e.job_id, e.correlation_id) for e in events_a} == {(job_a, "corr-a")}
    assert {(e.job_id, e.correlation_id) for e in events_b} == {(job_b, "corr-b")}


async def test_correlation_id_end_to_end_through_http(
    narration_harness: NarrationTestHarness,
) -> None:
    response = await narration_harness.http.post(
        "/v1/jobs", json={"operation": "hive_list"}, headers={"X-Correlation-Id": "e2e-corr.42"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["correlation_id"] == "e2e-corr.42"
    assert response.headers["x-correlation-id"] == "e2e-corr.42"
    job_id = body["job_id"]
    with narration_context(narration_harness.job_context(job_id)):
        n("first", "First")
        await asyncio.to_thread(n, "threaded", "From a thread")
        n("last", "Last")
    await narration_harness.complete_job(job_id)
    events = await narration_harness.get_sse_stream(job_id).collect_until_done()
    assert [e.action for e in events] == ["first", "threaded", "last"]
    assert {e.correlation_id for e in events} == {"e2e-corr.42"}

    # Without the header the server makes an id, and the job's events carry it.
    response = await narration_harness.http.post("/v1/jobs", json={"operation": "hive_list"})
    generated = response.json()["correlation_id"]
    assert generated and generated != "e2e-corr.42"
    job_id = response.json()["job_id"]
    with narration_context(narration_harness.job_context(job_id)):
        n("only", "Only event")
    await narration_harness.complete_job(job_id)
    events = await narration_harness.get_sse_stream(job_id).collect_until_done()
    assert [(e.action, e.correlation_id) for e in events] == [("only", generated)]


async def test_channel_boundary_carries_context(narration_harness: NarrationTestHarness) -> None:
    job_id = await narration_harness.submit_job(Operation.hive_list(), correlation_id="chan-1")
    queue: asyncio.Queue[tuple[NarrationContext, str] | None] = asyncio.Queue()

    async def consumer() -> None:
        # The consumer's own context knows no job; each message carries its producer's.
        assert current_context().job_id is None
        while (message := await queue.get()) is not None:
            ctx, text = message
            with narration_context(ctx):
                n("consumed", "Consumed {}", text)

    consumer_task = asyncio.create_task(consumer(), context=None)
    with narration_context(narration_harness.job_context(job_id)):
        for i in range(3):
            await queue.put((current_context(), f"msg-{i}"))
    await queue.put(None)
    await consumer_task
    await narration_harness.complete_job(job_id)
    events = await narration_harness.get_sse_stream(job_id).collect_until_done()
    assert [e.human for e in events] == ["Consumed msg-0", "Consumed msg-1", "Consumed msg-2"]
    assert {(e.job_id, e.correlation_id) for e in events} == {(job_id, "chan-1")}


async def test_unknown_job_events_are_counted_not_streamed(
    narration_harness: NarrationTestHarness,
) -> None:
    from narration.dispatch import dispatcher

    before = dispatcher.unrouted
    with narration_context(job_id="job-00000000-0000-4000-8000-000000000000"):
        n("orphan", "Nobody runs this job here")
    assert dispatcher.unrouted == before + 1
    async with httpx.AsyncClient(base_url=narration_harness.base_url) as http:
        response = await http.get("/v1/jobs/job-00000000-0000-4000-8000-000000000000")
    assert response.status_code == 404
