"""SharedFrames: one batch of Redis stream entries read from any cursor, exactly as
`frames_of` reads it (gaps, terminal, duplicates), with its frames built once."""

from __future__ import annotations

from typing import Any

import pytest

from narration.store.redis.reader import frames_of
from narration.store.redis.shared_frames import SharedFrames

pytestmark = pytest.mark.unit


def _entries(ids: list[int], terminal: bool = False) -> list[Any]:
    entries: list[Any] = [(b"%d-0" % i, [b"d", b'{"id":%d,"human":"e%d"}' % (i, i)]) for i in ids]
    if terminal:
        last = ids[-1] + 1
        data = b'{"job_id":"j","state":"completed","error":null}'
        entries.append((b"%d-0" % last, [b"e", b"done", b"d", data]))
    return entries


@pytest.mark.parametrize("cursor", [0, 3, 4, 5, 7, 9, 10, 11, 12, 20])
@pytest.mark.parametrize("terminal", [False, True])
def test_every_cursor_reads_what_frames_of_reads(cursor: int, terminal: bool) -> None:
    entries = _entries(list(range(5, 11)), terminal)
    shared = SharedFrames(entries)
    got, want = shared.after(cursor), frames_of(cursor, entries)
    assert got is not None
    assert (got.frames, got.cursor, got.done) == (want.frames, want.cursor, want.done)


def test_frames_are_built_once_and_shared_by_readers() -> None:
    shared = SharedFrames(_entries(list(range(1, 101))))
    first, second = shared.after(0), shared.after(40)
    assert first is not None and second is not None
    assert len(first.frames) == 100 and len(second.frames) == 60
    assert all(a is b for a, b in zip(first.frames[40:], second.frames, strict=True))


def test_a_batch_with_a_hole_past_the_cursor_is_left_to_frames_of() -> None:
    entries = _entries([1, 2, 3, 7, 8])
    shared = SharedFrames(entries)
    assert shared.after(0) is None  # 3 -> 7 jumps: frames_of makes the gap in the middle
    tail = shared.after(6)
    assert tail is not None and tail.frames == frames_of(6, entries).frames
