"""One delivery path: `n()` inlines `Dispatcher.deliver` for speed; both must do the same."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from narration import NarrationEvent, n, narration_context
from narration.dispatch import dispatcher

pytestmark = pytest.mark.unit


@pytest.fixture
def recorded() -> Iterator[list[tuple[str, NarrationEvent]]]:
    """A route for job `job-d`, a sink and a tap, all recording what reaches them, in order."""
    calls: list[tuple[str, NarrationEvent]] = []

    def route(event: NarrationEvent) -> None:
        calls.append(("route", event))

    def sink(event: NarrationEvent) -> None:
        calls.append(("sink", event))

    def tap(event: NarrationEvent) -> None:
        calls.append(("tap", event))

    dispatcher.add_route("job-d", route)
    dispatcher.add_sink(sink)
    dispatcher.add_tap(tap)
    try:
        yield calls
    finally:
        dispatcher.remove_tap(tap)
        dispatcher.remove_sink(sink)
        dispatcher.remove_route("job-d")


@pytest.mark.parametrize("job_id", ["job-d", "job-elsewhere", None])
def test_n_delivers_exactly_as_deliver_does(
    recorded: list[tuple[str, NarrationEvent]], job_id: str | None
) -> None:
    unrouted = dispatcher.unrouted
    with narration_context(job_id=job_id):
        event = n("step", "Step {}", 1, k="v")
    assert event is not None
    inline, inline_unrouted = list(recorded), dispatcher.unrouted - unrouted
    recorded.clear()
    dispatcher.deliver(event)
    assert recorded == inline
    assert dispatcher.unrouted - unrouted - inline_unrouted == inline_unrouted
    expected = ["route", "sink", "tap"] if job_id == "job-d" else ["sink", "tap"]
    assert [place for place, _ in inline] == expected
    assert all(delivered is event for _, delivered in inline)


def test_a_failing_tap_is_counted_and_the_next_one_still_called(
    recorded: list[tuple[str, NarrationEvent]],
) -> None:
    def broken(event: NarrationEvent) -> None:
        raise RuntimeError("tap down")

    errors = dispatcher.sink_errors
    dispatcher.taps = (broken, *dispatcher.taps)  # first, ahead of the recording tap
    try:
        n("after", "After a broken tap")
    finally:
        dispatcher.remove_tap(broken)
    assert dispatcher.sink_errors == errors + 1
    assert [place for place, _ in recorded] == ["sink", "tap"]
