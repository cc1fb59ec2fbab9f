"""The event JSON of docs/ARCHITECTURE.md section 3: exact bytes, key order, omitted keys, round
trip."""

from __future__ import annotations

import msgspec
import pytest

from narration import Level, Mode, NarrationEvent, n, narration_context
from narration.events import decode_event, encode_event

pytestmark = pytest.mark.unit

FULL = NarrationEvent(
    ts=1764103678.123456,
    level=Level.INFO,
    actor="queen",
    action="hive_list",
    target="hive_list",
    human="Found 2 hives",
    job_id="job-7f0c6a4e-1b2d-4c3e-8f9a-0b1c2d3e4f50",
    correlation_id="corr-1",
    trace_id="0af7651916cd43dd8448eb211c80319c",
    span_id="b7ad6b7169203331",
    fn_name="queen.hives.list_hives",
    cute="Found 2 cozy hives",
    story="The queen counted her hives: two.",
    origin="hive:job-1#7",
    fields={"hives": 2},
)

FULL_JSON = (
    b'{"id":42,"ts":1764103678.123456,"level":"info","actor":"queen","action":"hive_list",'
    b'"target":"hive_list","human":"Found 2 hives",'
    b'"job_id":"job-7f0c6a4e-1b2d-4c3e-8f9a-0b1c2d3e4f50","correlation_id":"corr-1",'
    b'"trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":"b7ad6b7169203331",'
    b'"fn_name":"queen.hives.list_hives","cute":"Found 2 cozy hives",'
    b'"story":"The queen counted her hives: two.","origin":"hive:job-1#7","fields":{"hives":2}}'
)

MINIMAL = NarrationEvent(ts=1.5, level=Level.WARN, actor="hive", action="probe", human="hi")


def test_a_numbered_event_encodes_exactly_with_id_first() -> None:
    assert encode_event(FULL, 42) == FULL_JSON


def test_an_event_that_carries_its_own_id_encodes_it_first() -> None:
    numbered = msgspec.structs.replace(FULL, id=42)
    assert encode_event(numbered) == FULL_JSON


def test_a_relayed_event_takes_the_readers_number() -> None:
    numbered = msgspec.structs.replace(FULL, id=7)
    assert encode_event(numbered, 42) == FULL_JSON
    assert decode_event(encode_event(numbered, 42)).id == 42


def test_optional_keys_are_omitted_when_empty() -> None:
    assert encode_event(MINIMAL) == (
        b'{"ts":1.5,"level":"warn","actor":"hive","action":"probe","human":"hi"}'
    )
    assert encode_event(MINIMAL, 1) == (
        b'{"id":1,"ts":1.5,"level":"warn","actor":"hive","action":"probe","human":"hi"}'
    )


def test_keys_of_an_emitted_event_follow_the_wire_order() -> None:
    with narration_context(job_id="job-wire", correlation_id="corr-wire"):
        event = n("spawn", "Spawning worker on GPU {}", 0, gpu=0)
    assert event is not None
    decoded = msgspec.json.decode(encode_event(event, 3))
    assert list(decoded) == [
        "id",
        "ts",
        "level",
        "actor",
        "action",
        "human",
        "job_id",
        "correlation_id",
        "fn_name",
        "fields",
    ]
    assert decoded["human"] == "Spawning worker on GPU 0"
    assert decoded["fields"] == {"gpu": 0}


@pytest.mark.parametrize("event", [FULL, MINIMAL])
def test_decode_round_trip(event: NarrationEvent) -> None:
    assert decode_event(encode_event(event)) == event
    assert decode_event(encode_event(event).decode()) == event
    assert decode_event(encode_event(event, 9)) == msgspec.structs.replace(event, id=9)


def test_to_dict_is_the_wire_form() -> None:
    assert MINIMAL.to_dict() == {
        "ts": 1.5,
        "level": "warn",
        "actor": "hive",
        "action": "probe",
        "human": "hi",
    }


def test_decoding_rejects_malformed_events() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_event(b'{"ts":1.5,"level":"loud","actor":"a","action":"b","human":"c"}')
    with pytest.raises(msgspec.ValidationError):
        decode_event(b'{"ts":1.5,"level":"info","actor":"a","action":"b"}')  # no human


def test_field_values_json_cannot_hold_are_represented_not_raised() -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "<Opaque>"

    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    event = msgspec.structs.replace(MINIMAL, fields={"o": Opaque(), "h": Hostile(), "n": 1})
    assert encode_event(event) == (
        b'{"ts":1.5,"level":"warn","actor":"hive","action":"probe","human":"hi",'
        b'"fields":{"o":"<Opaque>","h":"<unrepresentable Hostile>","n":1}}'
    )


def test_fields_that_cannot_be_encoded_at_all_are_sanitized_and_flagged() -> None:
    loop: list[object] = []
    loop.append(loop)
    event = msgspec.structs.replace(MINIMAL, fields={"loop": loop, "k\ud800": "v\udfff"})
    decoded = decode_event(encode_event(event))
    assert decoded.fields == {"loop": "[[...]]", "k\\ud800": "'v\\udfff'", "fields_sanitized": True}
    assert decoded.human == "hi"


def test_levels_and_modes_on_the_wire() -> None:
    assert [level.value for level in Level] == ["trace", "debug", "info", "warn", "error", "fatal"]
    assert Level.parse("WARNING") is Level.WARN
    assert Level.parse("critical") is Level.FATAL
    assert Level.parse(Level.DEBUG) is Level.DEBUG
    assert [mode.value for mode in Mode] == ["human", "cute", "story"]


def test_text_falls_back_to_human() -> None:
    assert FULL.text(Mode.CUTE) == "Found 2 cozy hives"
    assert FULL.text(Mode.STORY) == "The queen counted her hives: two."
    assert MINIMAL.text(Mode.CUTE) == "hi"
    assert MINIMAL.text(Mode.STORY) == "hi"
    assert MINIMAL.text() == "hi"


def test_events_are_immutable() -> None:
    with pytest.raises(AttributeError):
        MINIMAL.human = "changed"  # type: ignore[misc]
    assert not hasattr(MINIMAL, "__dict__")
