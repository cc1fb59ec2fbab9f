"""A signal handler may call `n()` while its thread is itself inside `n()`: nothing deadlocks.

Python runs a signal handler between two bytecodes of whatever the main thread was doing, on
that thread. Had a sink's queue or a job's log taken a plain lock there (as
`threading.Event.set` does), a handler narrating at that moment would wait forever for a lock
its own thread holds. Each test here hung (pytest-timeout) before its fix.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import pytest

from narration import NarrationEvent, n, narration_context
from narration.dispatch import dispatcher
from narration.sinks._writer import QueuedSink
from narration.store import LogLimits, MemoryEventLog, memory
from narration.testing import capture
from stream_helpers import Frame, parse_frames

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer (POSIX)"),
]


class Recording(QueuedSink):
    """Keeps the action of every event its writer thread writes."""

    def __init__(self) -> None:
        self.written: list[str] = []
        super().__init__()

    def _write(self, batch: list[NarrationEvent]) -> None:
        self.written.extend(event.action for event in batch)


@pytest.fixture
def sink() -> Iterator[Recording]:
    recording = Recording()
    dispatcher.add_sink(recording)
    try:
        yield recording
    finally:
        dispatcher.remove_sink(recording)
        recording.close()


def emit_while_interrupted(max_events: int, min_interrupts: int) -> tuple[int, int]:
    """Emit `from_main` events in a loop while SIGPROF handlers emit `from_handler` ones.

    Returns (events emitted by the loop, by handlers). Bounded by count and by 1.5 s. The
    timer asks for a signal every 200 µs of CPU; the kernel's tick (often 4 ms) may space
    them further apart.
    """
    assert threading.current_thread() is threading.main_thread()
    in_handler = 0

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal in_handler
        in_handler += 1
        n("from_handler", "Signal {} arrived", signum)

    # SIGPROF, by CPU time: SIGALRM stays pytest-timeout's, so a deadlock fails, not hangs.
    previous = signal.signal(signal.SIGPROF, handler)
    signal.setitimer(signal.ITIMER_PROF, 0.0002, 0.0002)  # every 200 µs of CPU
    in_main = 0
    deadline = time.monotonic() + 1.5
    try:
        while in_main < max_events and time.monotonic() < deadline:
            n("from_main", "Step {}", in_main)
            in_main += 1
            if in_main % 64 == 0:  # let a sink's writer catch up and sleep: `put` then wakes it
                time.sleep(0)
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, previous)
    assert in_handler >= min_interrupts, "the timer should have interrupted the loop"
    return in_main, in_handler


def test_n_in_a_signal_handler_during_n_loses_nothing_at_a_sink(sink: Recording) -> None:
    in_main, in_handler = emit_while_interrupted(300_000, min_interrupts=50)
    assert sink.flush(timeout=10)
    assert sink.written.count("from_main") == in_main
    assert sink.written.count("from_handler") == in_handler
    assert len(sink.written) == in_main + in_handler


def test_n_in_a_signal_handler_during_n_loses_nothing_in_a_capture() -> None:
    with capture() as cap:
        in_main, in_handler = emit_while_interrupted(100_000, min_interrupts=10)
    actions = [event.action for event in cap.events]
    assert actions.count("from_main") == in_main
    assert actions.count("from_handler") == in_handler


async def read_all(log: MemoryEventLog) -> list[Frame]:
    """Every frame of a sealed log."""
    frames: list[bytes] = []
    after = 0
    while True:
        result = await log.read(after, timeout=5)
        frames.extend(result.frames)
        after = result.cursor
        if result.done:
            return parse_frames(b"".join(frames).decode())


@pytest.fixture
def routed() -> Iterator[Callable[[str], MemoryEventLog]]:
    routes: list[str] = []

    def route(job_id: str) -> MemoryEventLog:
        log = MemoryEventLog(job_id, LogLimits(max_events=1_000_000, max_bytes=1 << 30))
        dispatcher.add_route(job_id, log.append)
        routes.append(job_id)
        return log

    yield route
    for job_id in routes:
        dispatcher.remove_route(job_id)


async def test_n_in_a_signal_handler_during_n_loses_nothing_in_a_job_log(
    routed: Callable[[str], MemoryEventLog],
) -> None:
    job_id = "job-00000000-0000-4000-8000-00000000516e"
    log = routed(job_id)
    with narration_context(job_id=job_id):
        in_main, in_handler = emit_while_interrupted(100_000, min_interrupts=10)
    log.seal("completed", None)
    frames = await read_all(log)
    *events, terminal = frames
    assert terminal["event"] == "done"
    assert [int(event["id"]) for event in events] == list(range(1, in_main + in_handler + 1))
    assert {event["event"] for event in events} == {"narration"}
    actions = [event["data"]["action"] for event in events]
    assert actions.count("from_main") == in_main
    assert actions.count("from_handler") == in_handler
    steps = [e["data"]["human"] for e in events if e["data"]["action"] == "from_main"]
    assert steps == [f"Step {i}" for i in range(in_main)]  # the loop's own order is kept


async def test_an_append_that_re_enters_a_section_of_its_log_is_set_aside_not_awaited(
    routed: Callable[[str], MemoryEventLog], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic: `n()` runs inside the log's own sections, as a signal handler may."""
    job_id = "job-00000000-0000-4000-8000-0000000e4e47"
    log = routed(job_id)
    estimate, encode = memory._estimate, memory.encode_now
    nested: list[str] = []

    def estimate_and_narrate(event: NarrationEvent, cap: int) -> int:  # runs inside `append`
        if event.action == "outer" and not nested:
            nested.append("in append")
            n("inner", "Narrated from inside append")
        return estimate(event, cap)

    def encode_and_narrate(event: NarrationEvent, event_id: int, caps: Any) -> bytes | None:
        if event.action == "inner" and len(nested) == 1:  # inside encoding
            nested.append("in encode")
            n("innermost", "Narrated from inside the encoder")
        return encode(event, event_id, caps)

    monkeypatch.setattr(memory, "_estimate", estimate_and_narrate)
    monkeypatch.setattr(memory, "encode_now", encode_and_narrate)
    with narration_context(job_id=job_id):
        n("outer", "Narrated first")
        assert log.count() == 1  # "inner" waits aside: appending now would tear "outer"'s work
        await asyncio.sleep(0)  # the loop's callback appends it
        assert log.count() == 2
        first = await log.read(0, timeout=0)  # encodes both: "innermost" is set aside
        assert log.count() == 2
        await asyncio.sleep(0)
        assert log.count() == 3
        n("last", "Narrated last")
    log.seal("completed", None)
    rest = await log.read(first.cursor, timeout=0)
    assert nested == ["in append", "in encode"]
    assert first.cursor == 2
    assert rest.done
    frames = parse_frames(b"".join(first.frames + rest.frames).decode())
    actions = [frame["data"].get("action") for frame in frames]
    assert actions == ["outer", "inner", "innermost", "last", None]  # None: the terminal
    assert [int(frame["id"]) for frame in frames] == [1, 2, 3, 4, 5]
