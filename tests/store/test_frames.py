"""FrameBuffer: ids, reads from a cursor across chunks, drops with exact gaps, skips (no loop)."""

from __future__ import annotations

import pytest

from narration.store.frames import CHUNK_BYTES, FrameBuffer
from narration.testing.sse import parse_sse

pytestmark = pytest.mark.unit


def _frame(i: int, size: int = 0) -> bytes:
    """An SSE frame of id `i` whose data is `i` padded to about `size` bytes."""
    data = str(i).ljust(size, ".") if size else str(i)
    return f"id: {i}\nevent: narration\ndata: {data}\n\n".encode()


def _read(buffer: FrameBuffer, after: int, limit: int = 10**9) -> tuple[list[object], int]:
    """(ids of the frames read, a gap as ("gap", data)), and the cursor after the read."""
    pieces, cursor = buffer.read(after, limit)
    frames = parse_sse(b"".join(pieces))
    seen: list[object] = [
        int(frame.id) if frame.id is not None else (frame.event, frame.data) for frame in frames
    ]
    return seen, cursor


def test_ids_follow_appends_and_reads_start_after_the_cursor() -> None:
    buffer = FrameBuffer()
    assert (buffer.first_id, buffer.next_id, len(buffer)) == (1, 1, 0)
    for i in range(1, 6):
        buffer.append(_frame(i))
    assert (buffer.first_id, buffer.next_id, len(buffer)) == (1, 6, 5)
    assert _read(buffer, 0) == ([1, 2, 3, 4, 5], 5)
    assert _read(buffer, 3) == ([4, 5], 5)
    assert _read(buffer, 5) == ([], 5)  # caught up: nothing, cursor unchanged
    assert _read(buffer, 1, limit=2) == ([2, 3], 3)


def test_reads_span_sealed_chunks_and_the_open_tail_exactly() -> None:
    buffer = FrameBuffer()
    count = 3 * CHUNK_BYTES // 1000 + 7  # ~1 KB frames: three sealed chunks and a tail
    for i in range(1, count + 1):
        buffer.append(_frame(i, 1000))
    assert len(buffer._chunks) == 3 and buffer._tail
    for after in (0, 1, 64, 65, 66, count - 1):
        ids, cursor = _read(buffer, after)
        assert ids == list(range(after + 1, count + 1))
        assert cursor == count
    assert _read(buffer, 60, limit=10) == (list(range(61, 71)), 70)


def test_extend_adds_a_batch_as_appends_would_and_seals_past_a_chunk() -> None:
    batches = [[_frame(i, 1000) for i in range(start, start + 50)] for start in (1, 51, 101)]
    extended, appended = FrameBuffer(), FrameBuffer()
    added = [extended.extend(batch) for batch in batches]
    for batch in batches:
        for frame in batch:
            appended.append(frame)
    assert added == [sum(map(len, batch)) for batch in batches]
    assert (extended.next_id, len(extended)) == (151, 150)
    # ~51 KB each: the second batch passes 64 KiB, so both are sealed as one chunk after it
    assert [len(chunk) for chunk in extended._chunks] == [added[0] + added[1]]
    assert len(extended._tail) == added[2]
    for after in (0, 1, 49, 50, 51, 99, 100, 120, 149, 150):
        assert _read(extended, after) == _read(appended, after)
    assert [extended.drop_oldest() for _ in range(60)] == [len(f) for f in batches[0][:60]] + [
        len(f) for f in batches[1][:10]
    ]
    assert _read(extended, 55)[0][0] == ("gap", '{"missed":5,"next_id":61}')


def test_dropping_the_oldest_gives_a_reader_behind_one_exact_gap() -> None:
    buffer = FrameBuffer()
    sizes = [len(_frame(i)) for i in range(1, 11)]
    for i in range(1, 11):
        buffer.append(_frame(i))
    assert [buffer.drop_oldest() for _ in range(4)] == sizes[:4]
    assert (buffer.first_id, len(buffer)) == (5, 6)
    assert _read(buffer, 0) == ([("gap", '{"missed":4,"next_id":5}'), 5, 6, 7, 8, 9, 10], 10)
    assert _read(buffer, 2) == ([("gap", '{"missed":2,"next_id":5}'), 5, 6, 7, 8, 9, 10], 10)
    assert _read(buffer, 4) == ([5, 6, 7, 8, 9, 10], 10)  # read up to the drop: no gap


def test_skip_retires_an_id_that_never_became_a_frame() -> None:
    buffer = FrameBuffer()
    buffer.append(_frame(1))
    with pytest.raises(ValueError, match="empty"):
        buffer.skip()
    buffer.drop_oldest()
    buffer.skip()  # id 2 was dropped before it was encoded
    assert (buffer.first_id, buffer.next_id) == (3, 3)
    buffer.append(_frame(3))
    assert _read(buffer, 0) == ([("gap", '{"missed":2,"next_id":3}'), 3], 3)


def test_long_runs_of_drops_free_chunks_and_rebase_without_changing_ids() -> None:
    buffer = FrameBuffer()
    total, keep = 20_000, 100
    for i in range(1, total + 1):
        buffer.append(_frame(i, 200))
        if len(buffer) > keep:
            buffer.drop_oldest()
    assert (buffer.first_id, buffer.next_id, len(buffer)) == (total - keep + 1, total + 1, keep)
    assert len(buffer._offsets) < 2 * 4096 + keep + 2  # the front of the offsets was cut
    assert sum(len(chunk) for chunk in buffer._chunks) < 2 * CHUNK_BYTES  # dropped chunks freed
    ids, cursor = _read(buffer, total - 10)
    assert (ids, cursor) == (list(range(total - 9, total + 1)), total)
    gap, cursor = _read(buffer, 0, limit=3)
    assert gap[0] == ("gap", f'{{"missed":{total - keep},"next_id":{total - keep + 1}}}')
    assert (gap[1:], cursor) == ([total - keep + 1, total - keep + 2, total - keep + 3], 19_903)
