"""`narration.testing.capture()` and the `narration_capture` fixture: each sees only its own."""

from __future__ import annotations

import asyncio

import pytest

from narration import n, narration_context
from narration.propagation import Thread
from narration.testing import CapturedEvents, capture

pytestmark = pytest.mark.unit


async def test_two_concurrent_captures_see_only_their_own_events() -> None:
    both_inside = asyncio.Barrier(2)

    async def run(name: str) -> list[str]:
        with capture() as cap, narration_context(job_id=f"job-{name}"):
            await both_inside.wait()  # both captures are open at the same time
            for i in range(3):
                n("step", "{} {}", name, i)
                await asyncio.sleep(0)  # hand over to the other task between events
        return [e.human for e in cap.events]

    left, right = await asyncio.gather(run("left"), run("right"))
    assert left == ["left 0", "left 1", "left 2"]
    assert right == ["right 0", "right 1", "right 2"]


def test_nested_captures_outer_sees_all_inner_sees_its_block() -> None:
    with capture() as outer:
        n("step", "before")
        with capture() as inner:
            n("step", "inside")
        n("step", "after")
    n("step", "outside every capture")
    assert [e.human for e in outer.events] == ["before", "inside", "after"]
    assert [e.human for e in inner.events] == ["inside"]


def test_assertion_helpers() -> None:
    with capture() as cap, narration_context(job_id="job-help"):
        n("spawn", "Spawning worker on GPU {}", 2, gpu=2)
        n("ready", "Worker ready")
    assert len(cap) == 2
    assert cap.assert_includes("GPU 2").action == "spawn"
    assert cap.assert_field("gpu", 2).human == "Spawning worker on GPU 2"
    assert cap.assert_field("job_id", "job-help").action == "spawn"
    assert cap.assert_action("ready").human == "Worker ready"
    with pytest.raises(AssertionError, match=r"no captured event contains 'GPU 9'; got: spawn"):
        cap.assert_includes("GPU 9")
    with pytest.raises(AssertionError, match="no captured event has gpu=3"):
        cap.assert_field("gpu", 3)
    with pytest.raises(AssertionError, match="no captured event has missing=None"):
        cap.assert_field("missing", None)  # an absent field is not None
    cap.clear()
    assert cap.events == []


def test_events_is_a_snapshot() -> None:
    with capture() as cap:
        n("step", "one")
        snapshot = cap.events
        n("step", "two")
    assert [e.human for e in snapshot] == ["one"]
    assert len(cap.events) == 2


def test_wait_for_events_from_another_thread() -> None:
    with capture() as cap, narration_context(job_id="job-wait"):
        thread = Thread(target=lambda: [n("step", "from thread {}", i) for i in range(3)])
        thread.start()
        events = cap.wait_for(3, timeout=10)
    thread.join()
    assert [e.human for e in events] == ["from thread 0", "from thread 1", "from thread 2"]
    assert all(e.job_id == "job-wait" for e in events)
    with pytest.raises(TimeoutError, match="captured 3 of 4 events"):
        cap.wait_for(4, timeout=0.01)


def test_fixture_sees_this_tests_events(narration_capture: CapturedEvents) -> None:
    assert narration_capture.events == []  # nothing from earlier tests
    with narration_context(job_id="job-fixture", correlation_id="corr-fixture"):
        n("step", "from a sync test")
    event = narration_capture.assert_includes("from a sync test")
    assert (event.job_id, event.correlation_id) == ("job-fixture", "corr-fixture")


async def test_fixture_works_in_async_tests(narration_capture: CapturedEvents) -> None:
    assert narration_capture.events == []

    async def child() -> None:
        await asyncio.sleep(0)
        n("step", "from a task")

    with narration_context(job_id="job-async-fixture"):
        await asyncio.create_task(child())
    event = narration_capture.assert_includes("from a task")
    assert event.job_id == "job-async-fixture"
    assert len(narration_capture) == 1
