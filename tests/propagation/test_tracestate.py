"""`tracestate` by the W3C Level 2 grammar: members, limits and truncation (the spec's rules)."""

from __future__ import annotations

import pytest

from narration.propagation.tracestate import (
    format_tracestate,
    parse_tracestate,
    parse_tracestate_members,
    truncate_tracestate,
)

pytestmark = pytest.mark.unit


def test_the_spec_examples_parse_to_members_in_order() -> None:
    assert parse_tracestate_members("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE") == [
        ("rojo", "00f067aa0ba902b7"),
        ("congo", "t61rcWkgMzE"),
    ]
    assert parse_tracestate_members(["rojo=00f067aa0ba902b7", "congo=t61rcWkgMzE"]) == [
        ("rojo", "00f067aa0ba902b7"),
        ("congo", "t61rcWkgMzE"),
    ]


@pytest.mark.parametrize("value", [None, "", " , \t,", []])
def test_absent_or_empty_headers_have_no_members(value: str | list[str] | None) -> None:
    assert parse_tracestate_members(value) == []
    assert parse_tracestate(value) is None


@pytest.mark.parametrize(
    "key",
    ["a", "0", "foo@", "foo@@bar", "t" * 241 + "@" + "v" * 14, "t" * 242 + "@v", "z" * 256],
)
def test_keys_of_the_current_grammar_are_accepted(key: str) -> None:
    assert parse_tracestate(f"{key}=1,bar=2") == f"{key}=1,bar=2"


@pytest.mark.parametrize("key", ["@foo", "Foo", "foo.bar", "foo bar", "_foo", "z" * 257, ""])
def test_a_bad_key_invalidates_the_whole_header(key: str) -> None:
    assert parse_tracestate_members(f"bar=2,{key}=1") is None


@pytest.mark.parametrize("value", ["", "a=b", "a,b", "a\tb", "\x7f", "é", "v" * 257])
def test_a_bad_value_invalidates_the_whole_header(value: str) -> None:
    assert parse_tracestate_members(f"bar=2,foo={value}") is None


def test_trailing_spaces_are_ows_leading_ones_part_of_the_value() -> None:
    assert parse_tracestate("foo=  1  ,bar=2") == "foo=  1,bar=2"


def test_a_repeated_key_keeps_its_left_most_member() -> None:
    assert parse_tracestate("foo=1,bar=2,foo=3") == "foo=1,bar=2"


def test_thirty_two_members_at_most() -> None:
    members = [f"k{i}=v" for i in range(33)]
    assert parse_tracestate(",".join(members[:32])) == ",".join(members[:32])
    assert parse_tracestate(",".join(members)) is None


def test_truncation_removes_long_members_first_then_from_the_right() -> None:
    members = [(f"k{i}", "x" * 60) for i in range(8)]  # 8 x 63 chars + 7 commas = 511
    assert truncate_tracestate(members) == members
    long = ("long", "y" * 200)
    assert truncate_tracestate([*members[:4], long, *members[4:]]) == members
    nine = [*members, ("k8", "x" * 60)]  # 575 chars: the right-most goes
    assert truncate_tracestate(nine) == members
    assert format_tracestate(truncate_tracestate(nine, limit=130)) == (
        f"k0={'x' * 60},k1={'x' * 60}"
    )
    assert format_tracestate([]) is None
