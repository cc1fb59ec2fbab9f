"""`n()` raises for nothing at runtime, and no event it makes fails to encode."""

from __future__ import annotations

import _thread
import threading
import time
from collections.abc import Iterator

import msgspec
import pytest

from narration import Level, NarrationContext, NarrationEvent, n, narration_context
from narration.dispatch import dispatcher
from narration.events import decode_event, encode_event
from narration.testing import capture

pytestmark = pytest.mark.unit


class Unprintable:
    """Neither str() nor repr() works."""

    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def emit(action: str, message: str, *args: object, **fields: object) -> NarrationEvent:
    event = n(action, message, *args, **fields)
    assert event is not None
    return event


# --- the keyword arguments of n() -------------------------------------------------------------


@pytest.mark.parametrize("name", ["cute", "story"])
def test_a_cute_or_story_whose_str_raises_becomes_a_marked_placeholder(name: str) -> None:
    event = emit("spawn", "plain", **{name: Unprintable()})
    assert getattr(event, name) == "<unprintable Unprintable>"
    assert event.human == "plain"
    assert event.fields == {f"invalid_{name}": "RuntimeError: no str for you"}


def test_a_target_whose_str_raises_becomes_a_marked_placeholder() -> None:
    event = emit("spawn", "plain", target=Unprintable(), gpu=1)
    assert event.target == "unprintable_Unprintable"
    assert event.fields == {"gpu": 1, "invalid_target": "RuntimeError: no str for you"}


def test_a_level_whose_str_and_repr_raise_is_info_and_flagged() -> None:
    event = emit("spawn", "plain", level=Unprintable())
    assert event.level is Level.INFO
    assert event.fields == {"invalid_level": "<unrepresentable Unprintable>"}


def test_non_str_variants_are_converted() -> None:
    event = emit("spawn", "plain", cute=42, story=3.5, target=7)
    assert (event.cute, event.story, event.target) == ("42", "3.5", "7")
    assert event.fields is None


def test_a_str_subclass_with_a_hostile_str_is_taken_as_its_text() -> None:
    class Sly(str):
        def __str__(self) -> str:
            raise RuntimeError("gotcha")

    event = emit(Sly("spawn"), Sly("hello {}"), "there")
    assert (event.action, event.human) == ("spawn", "hello there")


def test_an_argument_whose_format_raises_something_odd_is_flagged() -> None:
    class Odd:
        def __format__(self, spec: str) -> str:
            raise KeyError(Unprintable())

    event = emit("x", "value {}", Odd())
    assert event.human == "value {}"
    assert event.fields is not None
    assert event.fields["format_error"].startswith("KeyError")


def test_n_called_with_no_python_caller_still_narrates() -> None:
    """A thread whose first frame is n() itself (as from atexit): no caller frame to look at."""
    seen: list[NarrationEvent] = []
    arrived = threading.Event()

    def sink(event: NarrationEvent) -> None:
        if event.action == "no_caller":
            seen.append(event)
            arrived.set()

    dispatcher.add_sink(sink)
    try:
        _thread.start_new_thread(n, ("no_caller", "Narrated from C"))
        assert arrived.wait(10)
    finally:
        dispatcher.remove_sink(sink)
    [event] = seen
    assert (event.human, event.actor, event.fn_name) == ("Narrated from C", "main", "main.<module>")


# --- context strings ---------------------------------------------------------------------------


def test_context_ids_with_lone_surrogates_are_cleaned_where_the_context_is_made() -> None:
    with (
        capture() as cap,
        narration_context(
            job_id="job-\ud800x", correlation_id="c-\ud800", actor="hive\udfff\x1b"
        ) as ctx,
    ):
        event = emit("spawn", "Spawning")
    assert (ctx.job_id, ctx.correlation_id, ctx.actor) == ("job-x", "c-", "hive")
    assert (event.job_id, event.correlation_id, event.actor) == ("job-x", "c-", "hive")
    assert decode_event(encode_event(event)) == event
    assert cap.events == [event]


def test_context_ids_that_are_not_str_become_str() -> None:
    ctx = NarrationContext(job_id=42, correlation_id=Unprintable())  # type: ignore[arg-type]
    assert (ctx.job_id, ctx.correlation_id) == ("42", "<unprintable Unprintable>")
    with narration_context(ctx):
        event = emit("spawn", "Spawning")
    assert decode_event(encode_event(event)).job_id == "42"


def test_an_event_with_surrogates_anywhere_still_encodes() -> None:
    """Events made by hand or decoded from a child can hold lone surrogates: repaired, flagged."""
    event = NarrationEvent(
        ts=1.5,
        level=Level.INFO,
        actor="a\ud800",
        action="b",
        human="c\udfff",
        correlation_id="c-\ud800",
        fields={"k": "v\ud800", "n": 1},
    )
    decoded = decode_event(encode_event(event, 7))
    assert (decoded.id, decoded.actor, decoded.human, decoded.correlation_id) == (7, "a", "c", "c-")
    assert decoded.fields == {"k": "'v\\ud800'", "n": 1, "fields_sanitized": True}


# --- field values whose repr misbehaves ---------------------------------------------------------


@pytest.fixture
def slow_type() -> Iterator[type]:
    """A fresh class whose repr takes 2 s the first time (and 0.5 s after)."""
    release = threading.Event()

    class Slow:
        calls = 0

        def __repr__(self) -> str:
            Slow.calls += 1
            release.wait(2.0 if Slow.calls == 1 else 0.5)
            return "slow"

    yield Slow
    release.set()  # let a helper thread still inside repr finish


def test_a_field_whose_repr_hangs_encodes_as_a_placeholder_in_bounded_time(
    slow_type: type,
) -> None:
    event = emit("x", "m", value=slow_type(), n=1)
    start = time.perf_counter()
    first = encode_event(event)
    second = encode_event(event)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0  # 0.1 s of patience for the first value of the type, then none
    for body in (first, second):
        assert msgspec.json.decode(body)["fields"] == {"value": "<slow repr: Slow>", "n": 1}
    assert slow_type.calls == 1  # never run again once known to be slow  # type: ignore[attr-defined]


def test_a_field_whose_repr_raises_encodes_as_a_placeholder() -> None:
    event = emit("x", "m", value=Unprintable())
    assert msgspec.json.decode(encode_event(event))["fields"] == {
        "value": "<unrepresentable Unprintable>"
    }


def test_a_huge_repr_is_cut_like_a_message() -> None:
    class Huge:
        def __repr__(self) -> str:
            return "h" * 100_000

    body = msgspec.json.decode(encode_event(emit("x", "m", value=Huge())))
    assert body["fields"]["value"] == "h" * 8192 + "… (+91808 chars)"


def test_values_json_can_hold_stay_as_they_are_when_others_are_sanitized() -> None:
    loop: list[object] = []
    loop.append(loop)
    body = msgspec.json.decode(encode_event(emit("x", "m", loop=loop, n=1, s="ok")))
    assert body["fields"] == {"loop": "[[...]]", "n": 1, "s": "ok", "fields_sanitized": True}
