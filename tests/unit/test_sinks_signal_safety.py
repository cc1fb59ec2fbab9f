"""A signal handler may call `n()` while its thread is itself inside `n()`: nothing deadlocks.

Python runs a signal handler between two bytecodes of whatever the main thread was doing, on
that thread. Had a sink's queue taken a lock there (as `threading.Event.set` does), a handler
narrating at that moment would wait forever for a lock its own thread holds.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

import pytest

from narration import NarrationEvent, n
from narration.dispatch import dispatcher
from narration.sinks._writer import QueuedSink

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "setitimer"), reason="needs signal.setitimer (POSIX)"
)


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


def test_n_in_a_signal_handler_during_n_loses_nothing_and_never_blocks(sink: Recording) -> None:
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
        while in_main < 300_000 and time.monotonic() < deadline:
            n("from_main", "Step {}", in_main)
            in_main += 1
            if in_main % 64 == 0:  # let the writer catch up and sleep: `put` then wakes it
                time.sleep(0)
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, previous)
    assert sink.flush(timeout=10)
    assert in_handler > 100, "the timer should have interrupted the loop many times"
    assert sink.written.count("from_main") == in_main
    assert sink.written.count("from_handler") == in_handler
    assert len(sink.written) == in_main + in_handler
