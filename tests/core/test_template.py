"""Message templates: `{}`, `{0}` and `{name}` fill in; nothing else runs or grows unbounded."""

from __future__ import annotations

import time

import pytest

from narration import NarrationEvent, n
from narration.template import MAX_FORMAT_WIDTH

pytestmark = pytest.mark.unit

SECRET = "the-secret-value"


def emit(action: str, message: str, *args: object, **fields: object) -> NarrationEvent:
    event = n(action, message, *args, **fields)
    assert event is not None
    return event


# --- what formats -----------------------------------------------------------------------------


def test_named_fields_are_filled_from_the_keyword_fields_which_stay_fields() -> None:
    event = emit("spawn", "Spawning worker on GPU {gpu} for {model!r}", gpu=1, model="llama")
    assert event.human == "Spawning worker on GPU 1 for 'llama'"
    assert event.fields == {"gpu": 1, "model": "llama"}


def test_positional_and_named_fields_mix() -> None:
    event = emit("load", "Loaded {} of {total} layers ({:.0%})", 16, 0.5, total=32)
    assert event.human == "Loaded 16 of 32 layers (50%)"
    assert event.fields == {"total": 32}


def test_numbered_fields_and_ordinary_specs_work() -> None:
    assert emit("x", "{1}-{0}-{1}", "a", "b").human == "b-a-b"
    assert emit("x", "[{:>6}] [{:<4}] [{:^7.2f}]", "ab", 1, 3.14159).human == (
        "[    ab] [1   ] [ 3.14  ]"
    )
    assert emit("x", "{:,} {:#x} {!r}", 1234567, 255, "q").human == "1,234,567 0xff 'q'"


def test_doubled_braces_are_literal_braces() -> None:
    assert emit("x", "{{literal}} {}", 1).human == "{literal} 1"
    assert emit("x", "{{gpu}} is {gpu}", gpu=2).human == "{gpu} is 2"


def test_without_args_or_fields_a_message_is_not_a_template() -> None:
    event = emit("x", "literal {braces} {} {0.__class__}")
    assert event.human == "literal {braces} {} {0.__class__}"
    assert event.fields is None


def test_fields_without_braces_format_nothing() -> None:
    event = emit("x", "50% done", step=3)
    assert event.human == "50% done"
    assert event.fields == {"step": 3}


# --- what is flagged --------------------------------------------------------------------------


def test_a_percent_template_is_flagged_not_formatted() -> None:
    event = emit("x", "GPU %s of %d", 1, 2)
    assert event.human == "GPU %s of %d"
    assert event.fields == {
        "format_error": "TypeError: 2 arguments not used: the template has 0 positional fields"
        " (%-style templates are not formatted; write {} or {name})"
    }


def test_more_args_than_fields_are_formatted_and_flagged() -> None:
    event = emit("x", "GPU {}", 1, 2)
    assert event.human == "GPU 1"
    assert event.fields == {
        "format_error": "TypeError: 1 argument not used: the template has 1 positional field"
    }


def test_a_named_field_missing_from_the_fields_is_flagged() -> None:
    event = emit("x", "GPU {gpu}", gpu_id=1)
    assert event.human == "GPU {gpu}"
    assert event.fields == {"gpu_id": 1, "format_error": "KeyError: 'gpu'"}


def test_braces_in_an_f_string_message_given_fields_are_flagged_and_kept() -> None:
    """With fields given, the message is a template: text with braces is kept and flagged."""
    payload = '{"a": 1}'
    event = emit("recv", f"got {payload}", size=8)
    assert event.human == 'got {"a": 1}'
    assert event.fields is not None
    assert event.fields["size"] == 8
    assert event.fields["format_error"].startswith('ValueError: field {"a"} is not formatted')


# --- safety -----------------------------------------------------------------------------------


class Vault:
    """Records every attribute or item read through a template."""

    def __init__(self) -> None:
        self.reads: list[str] = []

    @property
    def secret(self) -> str:
        self.reads.append("secret")
        return SECRET

    def __getitem__(self, key: object) -> str:
        self.reads.append(f"[{key}]")
        return SECRET


@pytest.mark.parametrize(
    "template",
    [
        "{0.secret}",
        "{.secret}",
        "{0[0]}",
        "{[key]}",
        "{vault.secret}",
        "{vault[0]}",
        "{0.__init__.__globals__[SECRET]}",
        "{0.__class__.__init__.__globals__}",
    ],
)
def test_attribute_and_index_access_read_nothing(template: str) -> None:
    vault = Vault()
    event = emit("x", template, vault, vault=vault)
    assert vault.reads == []
    assert event.human == template  # the raw template
    assert event.fields is not None
    assert SECRET not in str(event.fields["format_error"])
    assert event.fields["format_error"].startswith("ValueError: field {")
    assert event.fields["format_error"].endswith(
        "templates take plain {}, {0} and {name} fields, without attribute or index access"
    )


def test_nested_fields_in_a_spec_are_refused() -> None:
    event = emit("x", "{:>{}}", "a", 100000000)
    assert event.human == "{:>{}}"
    assert event.fields == {
        "format_error": "ValueError: nested fields in a format spec are not formatted"
    }


@pytest.mark.parametrize(
    ("template", "args", "expected"),
    [
        ("{:>100000000}", (1,), " " * (MAX_FORMAT_WIDTH - 1) + "1"),
        ("{:0100000000d}", (7,), "0" * (MAX_FORMAT_WIDTH - 1) + "7"),
        ("{:.100000000f}", (0.5,), "0.5" + "0" * (MAX_FORMAT_WIDTH - 1)),
        ("{x:*^99999999999999999999}", (), "*" * 499 + "x" + "*" * 500),
    ],
)
def test_widths_and_precisions_are_capped_and_flagged(
    template: str, args: tuple[object, ...], expected: str
) -> None:
    start = time.perf_counter()
    event = emit("x", template, *args, x="x")
    elapsed = time.perf_counter() - start
    assert elapsed < 0.1  # uncapped, the first one takes ~0.7 s and 123 MiB
    assert event.human == expected
    assert event.fields is not None
    assert event.fields["format_error"] == (
        f"ValueError: width or precision over {MAX_FORMAT_WIDTH} capped"
    )


def test_a_width_at_the_cap_is_not_flagged() -> None:
    event = emit("x", "{:>1000}", 1)
    assert len(event.human) == 1000
    assert event.fields is None


def test_a_template_over_8_kib_is_not_formatted() -> None:
    template = "{}" + "x" * 9000
    event = emit("x", template, 1)
    assert event.human.startswith("{}xxx")
    assert event.fields == {
        "format_error": "ValueError: a template over 8192 chars is not formatted"
    }


def test_many_distinct_templates_all_format_right() -> None:
    """Past the plan cache's cap it is cleared and refilled: results never change."""
    for i in range(6000):
        assert emit("x", f"{i}:{{}}", i).human == f"{i}:{i}"
    assert emit("x", "{0.secret}", Vault()).human == "{0.secret}"  # still refused afterwards


def test_an_invalid_level_flag_does_not_make_the_message_a_template() -> None:
    event = emit("x", "literal {braces}", level="loud")
    assert event.human == "literal {braces}"
    assert event.fields == {"invalid_level": "'loud'"}
