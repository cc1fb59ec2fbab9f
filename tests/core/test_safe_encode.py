"""Bounded event encoding: size caps with visible marks, separators escaped, and user code
(a field's repr) run off the event loop within a time bound, the event keeping its id."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import PurePosixPath
from typing import Any

import msgspec
import pytest

from narration.events import Level, NarrationEvent
from narration.safe_encode import EventCaps, encode_now, encode_off_loop, escape_separators
from narration.store import LogLimits, MemoryEventLog

pytestmark = pytest.mark.unit

CAPS = EventCaps(max_event_bytes=8 * 1024, max_field_bytes=2 * 1024, repr_timeout_s=0.2)


def event(human: str = "hello", **fields: Any) -> NarrationEvent:
    return NarrationEvent(
        ts=1.5, level=Level.INFO, actor="t", action="a", human=human, fields=fields or None
    )


def decoded(body: bytes | None) -> dict[str, Any]:
    assert body is not None
    result: dict[str, Any] = msgspec.json.decode(body)
    return result


class Sluggish:
    def __init__(self, seconds: float, entered: threading.Event | None = None) -> None:
        self.seconds, self.entered = seconds, entered

    def __repr__(self) -> str:
        if self.entered is not None:
            self.entered.set()
        time.sleep(self.seconds)
        return "Sluggish()"


class Exploding:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def test_plain_events_encode_now_numbered_and_unchanged() -> None:
    body = encode_now(event(n=1, path=PurePosixPath("/tmp/x")), 7, CAPS)
    assert decoded(body) == {
        "id": 7,
        "ts": 1.5,
        "level": "info",
        "actor": "t",
        "action": "a",
        "human": "hello",
        "fields": {"n": 1, "path": "PurePosixPath('/tmp/x')"},
    }


def test_a_value_needing_its_repr_is_not_encoded_on_the_loop() -> None:
    assert encode_now(event(value=Sluggish(0)), 1, CAPS) is None
    assert encode_now(event(**{"k": {(1, 2): 3}}), 1, CAPS) is None  # a key needing str()


def test_a_field_over_the_field_cap_is_cut_marked_and_listed() -> None:
    body = encode_now(event(big="é" * 5000, small=[1, 2], quoted=['"'] * 2000), 3, CAPS)
    fields = decoded(body)["fields"]
    assert fields["fields_truncated"] == ["big", "quoted"]
    assert fields["small"] == [1, 2]
    kept = fields["big"].split("…")[0]
    assert fields["big"] == f"{kept}… (+{10000 - len(kept.encode())} bytes)"
    for name in ("big", "quoted"):
        assert len(msgspec.json.encode(fields[name])) <= CAPS.max_field_bytes
    assert fields["quoted"].startswith('["\\"","\\""')  # a non-string value: its JSON, cut


def test_the_whole_event_is_kept_within_the_event_cap() -> None:
    many = {f"f{i}": "y" * 1500 for i in range(40)}  # each under the field cap, 60 KB in all
    body = encode_now(event(**many), 9, CAPS)
    assert body is not None and len(body) <= CAPS.max_event_bytes
    fields = decoded(body)["fields"]
    assert fields["fields_truncated"] == sorted(many)
    assert all("… (+" in fields[name] for name in many)
    texts = event(human="😀" * 8192)  # the text alone is 32 KiB
    shrunk = decoded(encode_now(msgspec.structs.replace(texts, cute="😀" * 8192), 1, CAPS))
    assert len(msgspec.json.encode(shrunk)) <= CAPS.max_event_bytes
    assert shrunk["human"].endswith(" chars)") and shrunk["cute"].endswith(" chars)")


def test_line_separators_are_escaped_and_the_json_value_kept() -> None:
    text = "a\u2028b\u2029c\u0085d"
    body = encode_now(event(human=text, note=text), 1, CAPS)
    assert body is not None
    for raw in ("\u2028", "\u2029", "\u0085"):
        assert raw.encode() not in body
    assert decoded(body)["human"] == text and decoded(body)["fields"]["note"] == text
    assert escape_separators(b'{"a":"plain"}') == b'{"a":"plain"}'


async def test_off_the_loop_a_slow_repr_becomes_a_placeholder_in_bounded_time() -> None:
    loop = asyncio.get_running_loop()
    ticks = 0

    def tick() -> None:
        nonlocal ticks
        ticks += 1
        loop.call_later(0.01, tick)

    tick()
    started = time.monotonic()
    body = await encode_off_loop(event(value=Sluggish(2.0), n=1), 4, CAPS)
    took = time.monotonic() - started
    assert decoded(body)["id"] == 4
    # The encoder gives a repr 0.1 s on a helper thread, then marks the value (and its type)
    # slow; this runs in a worker thread, so the event loop keeps turning meanwhile.
    assert decoded(body)["fields"] == {"value": "<slow repr: Sluggish>", "n": 1}
    assert took < 1.0
    assert ticks >= 3


async def test_off_the_loop_a_quick_repr_is_used_and_a_raising_one_replaced() -> None:
    class Quick:
        def __repr__(self) -> str:
            return "Quick()"

    quick = decoded(await encode_off_loop(event(value=Quick()), 2, CAPS))
    assert quick["fields"] == {"value": "Quick()"}
    exploding = decoded(await encode_off_loop(event(value=Exploding()), 3, CAPS))
    assert exploding["id"] == 3 and "Exploding" in exploding["fields"]["value"]


async def test_a_log_streams_past_a_slow_event_in_order_to_its_terminal() -> None:
    class Drowsy(Sluggish):  # a type of its own: the encoder remembers types found slow
        pass

    entered = threading.Event()
    log = MemoryEventLog("job-x", LogLimits(caps=CAPS))
    log.append(event("first"))
    log.append(event("slow", value=Drowsy(1.0, entered)))
    log.append(event("third"))
    log.seal("completed", None)
    frames: list[bytes] = []
    cursor = 0
    async with asyncio.timeout(5):
        while True:
            result = await log.read(cursor, timeout=1.0)
            frames += result.frames
            cursor = result.cursor
            if result.done:
                break
    assert entered.is_set()
    text = b"".join(frames).decode()
    assert [line for line in text.split("\n") if line.startswith("id: ")] == [
        "id: 1",
        "id: 2",
        "id: 3",
        "id: 4",
    ]
    assert "<slow repr: Drowsy>" in text and "event: done" in text


def test_caps_are_checked() -> None:
    with pytest.raises(ValueError, match="max_field_bytes"):
        EventCaps(max_event_bytes=1024, max_field_bytes=2048)
    with pytest.raises(ValueError, match="repr_timeout_s"):
        EventCaps(repr_timeout_s=0)
