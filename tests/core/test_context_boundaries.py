"""The job context crosses every in-process boundary (issue 2, item 4).

Each test emits inside a job context on the far side of one boundary and checks that the
captured events carry both the job id and the correlation id. The plain-`Thread` tests show
why `narration.propagation` exists: without it the context is lost.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest

from narration import NarrationContext, NarrationEvent, current_context, n, narration_context
from narration.propagation import ContextExecutor, Thread, wrap
from narration.testing import CapturedEvents, capture

pytestmark = pytest.mark.unit


@contextmanager
def job(name: str) -> Iterator[CapturedEvents]:
    """A capture plus a job context `job-<name>` / `corr-<name>` around the block."""
    with capture() as cap, narration_context(job_id=f"job-{name}", correlation_id=f"corr-{name}"):
        yield cap


def assert_in_job(events: list[NarrationEvent], name: str, count: int) -> None:
    """Exactly `count` events, all carrying job `name`'s job id and correlation id."""
    assert len(events) == count, [e.human for e in events]
    for event in events:
        assert event.job_id == f"job-{name}"
        assert event.correlation_id == f"corr-{name}"


def emit_here(text: str) -> NarrationEvent | None:
    """Emit from whatever thread calls this."""
    return n("step", text, thread=threading.current_thread().name)


async def test_await_keeps_the_context() -> None:
    async def inner() -> None:
        n("step", "before await")
        await asyncio.sleep(0)
        n("step", "after await")

    with job("await") as cap:
        await inner()
    assert_in_job(cap.events, "await", 2)
    assert [e.human for e in cap.events] == ["before await", "after await"]


async def test_create_task_inherits_the_context_even_after_the_block_ends() -> None:
    async def child() -> None:
        await asyncio.sleep(0)
        n("step", "in task")

    with job("task") as cap:
        task = asyncio.create_task(child())
    # The task copied the context when it was created; leaving the block does not change it.
    assert current_context().job_id is None
    await task
    assert_in_job(cap.events, "task", 1)


async def test_task_group_children_inherit_the_context() -> None:
    async def child(i: int) -> None:
        await asyncio.sleep(0)
        n("step", "child {}", i)

    with job("taskgroup") as cap:
        async with asyncio.TaskGroup() as group:
            for i in range(3):
                group.create_task(child(i))
    assert_in_job(cap.events, "taskgroup", 3)
    assert sorted(e.human for e in cap.events) == ["child 0", "child 1", "child 2"]


async def test_gather_children_inherit_the_context() -> None:
    async def child(i: int) -> str:
        await asyncio.sleep(0)
        n("step", "gathered {}", i)
        return str(current_context().job_id)

    with job("gather") as cap:
        seen = await asyncio.gather(*(child(i) for i in range(4)))
    assert seen == ["job-gather"] * 4
    assert_in_job(cap.events, "gather", 4)


async def test_queue_hand_off_carries_the_context_in_the_message() -> None:
    queue: asyncio.Queue[tuple[NarrationContext, str] | None] = asyncio.Queue()

    async def consumer() -> None:
        while (item := await queue.get()) is not None:
            ctx, payload = item
            n("consume", "outside the job: {}", payload)  # the consumer's own context
            with narration_context(ctx):
                n("consume", "handled {}", payload)

    with capture() as cap:
        worker = asyncio.create_task(consumer())  # started outside any job
        with narration_context(job_id="job-queue", correlation_id="corr-queue"):
            await queue.put((current_context(), "item-1"))
            await queue.put((current_context(), "item-2"))
        await queue.put(None)
        await worker

    handled = [e for e in cap.events if e.human.startswith("handled")]
    outside = [e for e in cap.events if e.human.startswith("outside")]
    assert_in_job(handled, "queue", 2)
    assert [e.human for e in handled] == ["handled item-1", "handled item-2"]
    assert [(e.job_id, e.correlation_id) for e in outside] == [(None, None), (None, None)]


async def test_to_thread_carries_the_context() -> None:
    with job("to-thread") as cap:
        event = await asyncio.to_thread(emit_here, "in to_thread")
    assert event is not None
    assert event.fields is not None
    assert event.fields["thread"] != threading.current_thread().name
    assert_in_job(cap.events, "to-thread", 1)


def test_wrap_carries_the_context_into_a_plain_thread() -> None:
    with job("wrap") as cap:
        thread = threading.Thread(target=wrap(emit_here), args=("wrapped",))
        thread.start()
    thread.join()
    assert_in_job(cap.events, "wrap", 1)
    assert cap.events[0].human == "wrapped"


def test_propagation_thread_carries_the_context() -> None:
    with job("thread") as cap:
        thread = Thread(target=emit_here, args=("in Thread",), name="helper-thread")
    thread.start()  # started after the block ended: it still has its creator's context
    thread.join()
    assert_in_job(cap.events, "thread", 1)
    assert cap.events[0].fields == {"thread": "helper-thread"}


def test_plain_thread_does_not_get_the_context() -> None:
    """Without the helper the job id is lost: this is why `narration.propagation` exists."""
    results: list[NarrationEvent | None] = []
    with job("plain") as cap:
        thread = threading.Thread(target=lambda: results.append(emit_here("plain thread")))
        thread.start()
        thread.join()
    assert len(results) == 1
    assert results[0] is not None
    assert results[0].job_id is None
    assert results[0].correlation_id is None
    assert cap.events == []  # the capture is part of the context, so it is lost too


def test_plain_thread_pool_does_not_get_the_context() -> None:
    with job("plain-pool") as cap, ThreadPoolExecutor(max_workers=1) as pool:
        event = pool.submit(emit_here, "plain pool").result()
    assert event is not None
    assert (event.job_id, event.correlation_id) == (None, None)
    assert cap.events == []


def test_context_executor_submit_carries_the_context() -> None:
    with job("executor") as cap, ContextExecutor(max_workers=2) as pool:
        futures = [pool.submit(emit_here, f"submitted {i}") for i in range(4)]
        events = [f.result() for f in futures]
    assert all(e is not None and e.job_id == "job-executor" for e in events)
    assert_in_job(cap.events, "executor", 4)


def test_context_executor_map_carries_the_context() -> None:
    def job_of(i: int) -> str | None:
        event = emit_here(f"mapped {i}")
        return None if event is None else event.job_id

    with job("map") as cap, ContextExecutor(max_workers=2) as pool:
        seen = list(pool.map(job_of, range(3)))
    assert seen == ["job-map"] * 3
    assert sorted(e.human for e in cap.events) == ["mapped 0", "mapped 1", "mapped 2"]
    assert_in_job(cap.events, "map", 3)


async def test_run_in_executor_with_context_executor_carries_the_context() -> None:
    loop = asyncio.get_running_loop()
    with job("run-in-executor") as cap, ContextExecutor(max_workers=1) as pool:
        event = await loop.run_in_executor(pool, emit_here, "via run_in_executor")
    assert event is not None
    assert_in_job(cap.events, "run-in-executor", 1)


async def test_run_in_executor_with_a_plain_pool_loses_the_context() -> None:
    loop = asyncio.get_running_loop()
    with job("plain-executor") as cap, ThreadPoolExecutor(max_workers=1) as pool:
        event = await loop.run_in_executor(pool, emit_here, "plain run_in_executor")
    assert event is not None
    assert (event.job_id, event.correlation_id) == (None, None)
    assert cap.events == []


async def test_a_hundred_concurrent_contexts_stay_isolated() -> None:
    """100 tasks, each in its own job, all inside their contexts at once, awaits interleaving."""
    count, steps = 100, 5
    barrier = asyncio.Barrier(count)
    own_captures: dict[int, list[NarrationEvent]] = {}

    async def run_job(i: int) -> None:
        with (
            capture() as own,
            narration_context(job_id=f"job-{i}", correlation_id=f"corr-{i}", fields={"i": i}),
        ):
            await barrier.wait()  # every task is now inside its own context
            for step in range(steps):
                assert current_context().job_id == f"job-{i}"
                n("step", "job {} step {}", i, step)
                await asyncio.sleep(0)  # let the other 99 run in between
        own_captures[i] = own.events

    with capture() as everything:
        async with asyncio.TaskGroup() as group:
            for i in range(count):
                group.create_task(run_job(i))

    assert len(everything.events) == count * steps
    for i in range(count):
        events = own_captures[i]
        assert_in_job(events, str(i), steps)
        assert [e.human for e in events] == [f"job {i} step {s}" for s in range(steps)]
        assert all(e.fields == {"i": i} for e in events)
    # The emits really interleaved: consecutive events mostly belong to different jobs.
    job_ids = [e.job_id for e in everything.events]
    switches = sum(1 for a, b in itertools.pairwise(job_ids) if a != b)
    assert switches >= count * (steps - 1)
