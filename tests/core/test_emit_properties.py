"""Property: `n()` never raises for arbitrary text and fields, and its JSON always decodes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from narration import Level, n, narration_context
from narration.events import decode_event, encode_event
from narration.sanitize import MAX_MESSAGE_CHARS
from narration.testing import capture

pytestmark = pytest.mark.unit

_PARAMETERS = {"action", "message", "level", "cute", "story", "target"}
_ACTION = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202e\ufeff\ud800-\udfff]")

# Any code point, lone surrogates included, with the troublesome ones made frequent.
chars = st.characters(exclude_categories=()) | st.sampled_from(
    ["\ud800", "\udfff", "\x00", "\x1b", "\x85", "\u200b", "\u202e", "\ufeff", "\n", "\t", "{", "}"]
)
any_text = st.text(chars)
texts = any_text | st.text(chars, min_size=8000, max_size=8400)
values = st.none() | st.booleans() | st.integers() | st.floats() | any_text | st.binary()
field_values = values | st.lists(values, max_size=3) | st.dictionaries(any_text, values, max_size=3)
fields = st.dictionaries(
    any_text.filter(lambda key: key not in _PARAMETERS), field_values, max_size=5
)


@settings(max_examples=300, deadline=None)
@given(
    action=any_text,
    message=texts,
    args=st.lists(values, max_size=3),
    extra=fields,
    variants=st.dictionaries(st.sampled_from(["cute", "story", "target"]), any_text),
    level=st.sampled_from(list(Level)[2:]) | st.sampled_from(["info", "WARN", "error"]),
)
def test_n_never_raises_and_its_json_always_decodes(
    action: str,
    message: str,
    args: list[Any],
    extra: dict[str, Any],
    variants: dict[str, str],
    level: Level | str,
) -> None:
    with capture() as cap, narration_context(job_id="job-prop", correlation_id="corr-prop"):
        event = n(action, message, *args, level=level, **variants, **extra)
    assert event is not None  # INFO and above pass the default threshold
    assert cap.events == [event]
    assert _ACTION.fullmatch(event.action)
    assert not _UNSAFE.search(event.human)
    assert len(event.human) <= MAX_MESSAGE_CHARS + len("… (+00000 chars)")
    assert (event.job_id, event.correlation_id) == ("job-prop", "corr-prop")

    data = encode_event(event, 1)
    decoded = decode_event(data)
    assert decoded.id == 1
    assert decoded.human == event.human
    assert decoded.action == event.action
    assert decoded.level == event.level
    assert (decoded.cute, decoded.story, decoded.target) == (event.cute, event.story, event.target)
    assert (decoded.job_id, decoded.correlation_id) == ("job-prop", "corr-prop")
    # Every field survives; a key JSON cannot hold (a lone surrogate) arrives escaped.
    keys = {key.encode("utf-8", "backslashreplace").decode("utf-8") for key in extra}
    assert set(decoded.fields or {}) >= keys


@settings(max_examples=200, deadline=None)
@given(level=st.text() | st.integers() | st.none() | st.floats())
def test_any_level_value_is_accepted(level: Any) -> None:
    with capture() as cap:
        n("probe", "odd level", level=level)
    for event in cap.events:  # either dropped below the threshold or emitted with a real Level
        assert isinstance(event.level, Level)
        assert decode_event(encode_event(event)).level == event.level
