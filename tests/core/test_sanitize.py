"""Emitting never raises for bad runtime data: the sanitizing rules, with their exact outputs."""

from __future__ import annotations

import pytest

from narration import NarrationEvent, n
from narration.sanitize import MAX_MESSAGE_CHARS, clean_action, clean_text

pytestmark = pytest.mark.unit


def emit(action: str, message: str, *args: object, **fields: object) -> NarrationEvent:
    """`n()` at INFO, which the default threshold lets through."""
    event = n(action, message, *args, **fields)
    assert event is not None
    return event


def test_control_characters_are_stripped_except_newline_and_tab() -> None:
    event = emit("ctl", "a\x00b\x07c\x1b[31md\te\nf\x7fg\x85h\x9fi\rj\x0bk\x0cl")
    assert event.human == "abc[31md\te\nfghijkl"
    assert event.fields is None  # cleaning text is not flagged


def test_zero_width_and_bidi_override_characters_are_stripped() -> None:
    text = "pay\u200b\u200c\u200dme\u2060\ufeff now\u202e gnp.exe\u2066x\u2069"
    assert emit("zw", text).human == "payme now gnp.exex"


def test_lone_surrogates_are_stripped() -> None:
    """UTF-8 (hence JSON) cannot hold a lone surrogate; it would break every stream."""
    assert emit("sur", "bad\ud800 half\udfff").human == "bad half"
    assert emit("sur", "arg: {}", "\udc80x").human == "arg: x"


def test_ordinary_unicode_is_kept() -> None:
    text = "Grüße, 世界 🚀 — naïve café"
    assert emit("uni", text).human == text


def test_a_message_of_exactly_8_kib_is_kept_whole() -> None:
    assert MAX_MESSAGE_CHARS == 8192
    text = "a" * 8192
    assert emit("big", text).human == text


def test_a_longer_message_is_cut_at_8_kib_with_a_visible_marker() -> None:
    assert emit("big", "a" * 8193).human == "a" * 8192 + "… (+1 chars)"
    assert emit("big", "b" * 10_000).human == "b" * 8192 + "… (+1808 chars)"


def test_the_cut_counts_characters_left_after_stripping() -> None:
    assert emit("big", "\x00" * 50 + "c" * 8192).human == "c" * 8192
    assert emit("big", "\u200b" * 10 + "d" * 8200).human == "d" * 8192 + "… (+8 chars)"


def test_the_cut_applies_after_formatting() -> None:
    assert emit("big", "{}{}", "x" * 8000, "y" * 300).human == (
        "x" * 8000 + "y" * 192 + "… (+108 chars)"
    )


@pytest.mark.parametrize(
    ("action", "sanitized"),
    [
        ("spawn worker!", "spawn_worker"),
        ("héllo wörld", "h_llo_w_rld"),
        ("", "invalid"),
        ("✓✓", "invalid"),
        ("  padded  ", "padded"),
        ("a" * 65, "a" * 64),
        ("line\nbreak", "line_break"),
    ],
)
def test_an_invalid_action_is_sanitized_and_flagged(action: str, sanitized: str) -> None:
    event = emit(action, "message")
    assert event.action == sanitized
    assert event.fields == {"invalid_action": True}
    assert event.human == "message"


@pytest.mark.parametrize("action", ["spawn", "hive_list", "job.start", "a:b-c_d.e", "x" * 64, "0"])
def test_a_valid_action_is_kept_unflagged(action: str) -> None:
    event = emit(action, "message")
    assert event.action == action
    assert event.fields is None


def test_clean_action_directly() -> None:
    assert clean_action("ok.action") == ("ok.action", False)
    assert clean_action("not ok") == ("not_ok", True)


def test_clean_text_directly() -> None:
    assert clean_text("a\x00b") == "ab"
    assert clean_text("abcdef", limit=3) == "abc… (+3 chars)"
    assert clean_text("fine\ttext\n") == "fine\ttext\n"


@pytest.mark.parametrize(
    ("template", "args", "error"),
    [
        (
            "GPU {} of {}",
            (1,),
            "IndexError: Replacement index 1 out of range for positional args tuple",
        ),
        ("{:d}", ("x",), "ValueError: Unknown format code 'd' for object of type 'str'"),
        ("{name}", (1,), "KeyError: 'name'"),
        ("{", (1,), "ValueError: Single '{' encountered in format string"),
    ],
)
def test_a_format_error_emits_the_raw_template_and_a_format_error_field(
    template: str, args: tuple[object, ...], error: str
) -> None:
    event = emit("fmt", template, *args, gpu=3)
    assert event.human == template
    assert event.fields == {"gpu": 3, "format_error": error}


def test_an_argument_whose_format_raises_is_a_format_error_too() -> None:
    class Hostile:
        def __format__(self, spec: str) -> str:
            raise RuntimeError("no formatting for you")

    event = emit("fmt", "value {}", Hostile())
    assert event.human == "value {}"
    assert event.fields == {"format_error": "RuntimeError: no formatting for you"}


def test_braces_without_args_are_left_alone() -> None:
    event = emit("fmt", "literal {braces} {}")
    assert event.human == "literal {braces} {}"
    assert event.fields is None


def test_the_formatted_text_is_sanitized_too() -> None:
    assert emit("fmt", "user said: {}", "hi\x1b[2J\u200bthere").human == "user said: hi[2Jthere"


@pytest.mark.parametrize(
    ("action", "message", "complaint"),
    [
        (1, "message", "narration action must be str, not int"),
        (None, "message", "narration action must be str, not NoneType"),
        ("spawn", None, "narration message must be str, not NoneType"),
        ("spawn", b"bytes", "narration message must be str, not bytes"),
        ("spawn", 42, "narration message must be str, not int"),
    ],
)
def test_a_non_str_action_or_message_is_a_type_error(
    action: object, message: object, complaint: str
) -> None:
    with pytest.raises(TypeError) as raised:
        n(action, message)  # type: ignore[arg-type]
    assert str(raised.value) == complaint


def test_str_subclasses_are_accepted_as_plain_str() -> None:
    class Name(str):
        pass

    event = emit(Name("spawn"), Name("hello {}"), "there")
    assert (event.action, event.human) == ("spawn", "hello there")
    assert type(event.action) is str
    assert type(event.human) is str


def test_cute_story_and_target_are_cleaned_like_the_message() -> None:
    event = emit("spawn", "plain", cute="cute\x00 one", story="a\u200b story", target="bad target!")
    assert (event.cute, event.story, event.target) == ("cute one", "a story", "bad_target")
