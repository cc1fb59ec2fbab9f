"""`configure(sinks=[fn])`: a user's sink runs on its own thread and cannot stall `n()`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from narration import NarrationEvent, configure, flush, n, narration_context
from narration.dispatch import dispatcher
from narration.sinks import BackgroundSink, QueuedSink

pytestmark = pytest.mark.unit


class Gate:
    """A sink that blocks on its first event until released (at most 5 s), keeping the rest."""

    def __init__(self, action: str) -> None:
        self.action = action
        self.entered = threading.Event()
        self.release = threading.Event()
        self.events: list[NarrationEvent] = []

    def __call__(self, event: NarrationEvent) -> None:
        if event.action not in (self.action, "dropped"):
            return  # events of other tests
        if not self.entered.is_set():
            self.entered.set()
            self.release.wait(5.0)
        self.events.append(event)


@pytest.fixture
def no_extra_sinks() -> Iterator[None]:
    """Leave no configured sink behind."""
    try:
        yield
    finally:
        configure(sinks=[])


@pytest.mark.usefixtures("no_extra_sinks")
def test_a_blocking_sink_does_not_delay_n_and_gets_every_event_in_order() -> None:
    gate = Gate("blocked")
    configure(sinks=[gate])
    [sink] = [s for s in dispatcher.sinks if isinstance(s, BackgroundSink) and s.fn is gate]
    try:
        with narration_context(job_id="job-gate"):
            start = time.perf_counter()
            for i in range(200):
                n("blocked", "event {}", i)
            elapsed = time.perf_counter() - start
            assert gate.entered.wait(5)  # the sink's thread sits in the sink for up to 5 s
            start = time.perf_counter()
            n("blocked", "while it blocks")
            elapsed_blocked = time.perf_counter() - start
    finally:
        gate.release.set()
    # Inline, the first call would take the sink's 5 s; queued, 200 calls take ~0.2 ms.
    assert elapsed < 1.0
    assert elapsed_blocked < 0.5
    assert sink.flush(10)
    assert [e.human for e in gate.events] == [f"event {i}" for i in range(200)] + [
        "while it blocks"
    ]
    assert {e.job_id for e in gate.events} == {"job-gate"}
    assert sink.dropped == 0


def test_a_sink_that_falls_behind_drops_counts_and_reports(
    capsys: pytest.CaptureFixture[str],
) -> None:
    gate = Gate("behind")
    sink = BackgroundSink(gate, capacity=10)
    dispatcher.add_sink(sink)
    try:
        n("behind", "first")
        assert gate.entered.wait(5)
        for i in range(25):
            n("behind", "queued {}", i)
        gate.release.set()
        assert sink.flush(10)
    finally:
        gate.release.set()
        dispatcher.remove_sink(sink)
        sink.close()
    assert sink.dropped == 15
    humans = [e.human for e in gate.events]
    assert humans[:11] == ["first"] + [f"queued {i}" for i in range(10)]
    [notice] = gate.events[11:]
    assert (notice.action, notice.level.value, notice.fields) == (
        "dropped",
        "warn",
        {"dropped": 15},
    )
    assert f"narration: sink {gate!r} fell behind, 15 events dropped" in capsys.readouterr().err


def test_a_raising_sink_is_counted_and_the_next_event_still_delivered(
    capsys: pytest.CaptureFixture[str],
) -> None:
    got: list[str] = []

    def picky(event: NarrationEvent) -> None:
        if event.action != "picky":
            return
        if event.human == "bad":
            raise ValueError("I refuse")
        got.append(event.human)

    sink = BackgroundSink(picky)
    dispatcher.add_sink(sink)
    before = dispatcher.sink_errors
    try:
        for text in ("good", "bad", "fine"):
            n("picky", text)
        assert sink.flush(10)
    finally:
        dispatcher.remove_sink(sink)
        sink.close()
    assert got == ["good", "fine"]
    assert dispatcher.sink_errors == before + 1


@pytest.mark.usefixtures("no_extra_sinks")
def test_configure_wraps_plain_callables_once_and_uses_queued_sinks_as_they_are() -> None:
    seen: list[str] = []

    def keep(event: NarrationEvent) -> None:
        if event.action == "wrapped":
            seen.append(event.human)

    class Mine(QueuedSink):
        def __init__(self) -> None:
            self.written: list[str] = []
            super().__init__()

        def _write(self, batch: object) -> None:
            self.written.extend(e.human for e in batch if e.action == "wrapped")  # type: ignore[attr-defined]

    mine = Mine()
    configure(sinks=[keep, mine])
    first = dispatcher.sinks
    configure(sinks=[keep, mine])  # the same callable keeps its wrapper and thread
    assert dispatcher.sinks == first
    [wrapper] = [s for s in first if isinstance(s, BackgroundSink)]
    assert wrapper.fn is keep
    assert mine in first
    n("wrapped", "one")
    flush()
    assert seen == ["one"]
    assert mine.written == ["one"]
    configure(sinks=[])
    assert wrapper not in dispatcher.sinks and mine not in dispatcher.sinks
    assert wrapper._writer.closed  # the wrapper configure made is stopped with it
    assert not mine._writer.closed  # the user's own sink is theirs to close
    mine.close()
