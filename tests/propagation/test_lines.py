"""Line splitting of a child's output, without processes or an event loop."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from narration.propagation.lines import LineSplitter

pytestmark = pytest.mark.unit


def test_lines_across_chunks_and_a_last_line_without_newline() -> None:
    lines = LineSplitter()
    assert lines.feed(b"one\ntw") == [(b"one", 0)]
    assert lines.feed(b"o\n\nthr") == [(b"two", 0), (b"", 0)]
    assert lines.end() == [(b"thr", 0)]
    assert lines.end() == []


def test_a_long_line_is_cut_at_the_limit_and_the_rest_counted() -> None:
    lines = LineSplitter(limit=4)
    assert lines.feed(b"abcdefg") == []
    assert lines.feed(b"hij\nxy\n") == [(b"abcd", 6), (b"xy", 0)]
    assert lines.feed(b"123456\n") == [(b"1234", 2)]


@given(st.binary(max_size=300), st.lists(st.integers(1, 40), max_size=20))
def test_any_chunking_gives_the_lines_of_the_whole(data: bytes, sizes: list[int]) -> None:
    whole = LineSplitter(limit=16)
    expected = whole.feed(data) + whole.end()
    chunked = LineSplitter(limit=16)
    got: list[tuple[bytes, int]] = []
    start = 0
    for size in [*sizes, len(data)]:
        got += chunked.feed(data[start : start + size])
        start += size
    got += chunked.end()
    assert got == expected
    assert [line for line, _ in expected] == [piece[:16] for piece in _pieces(data)]


def _pieces(data: bytes) -> list[bytes]:
    pieces = data.split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()
    return pieces
