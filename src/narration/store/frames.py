"""`FrameBuffer`: a log's encoded SSE frames back to back, addressed by event id (pure, sync).

The memory log keeps every encoded event as its frame in one byte stream: sealed, exact-size
chunks of 64 KiB or a little more (sealed at the end of the append that passed 64 KiB) plus
an open tail, and one 8-byte offset per frame. A read of many
events is a slice or two; dropping the oldest moves a head index; a reader whose cursor fell
behind the oldest retained frame is told how many it missed (its `gap`). Nothing here knows
about threads, locks or event loops: `MemoryEventLog` (store/memory.py) holds the lock.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from itertools import accumulate

from ..wire import gap_frame

__all__ = ["CHUNK_BYTES", "FrameBuffer"]

CHUNK_BYTES = 64 * 1024  # frames are kept in sealed chunks of about this size
_REBASE = 4096  # dropped offsets kept before the front of the offsets array is cut


class FrameBuffer:
    """Frames of ids `first_id` .. `next_id - 1`, oldest first.

    Ids are consecutive: `append` gives the next one, `drop_oldest` forgets the oldest frame,
    and `skip` retires an id that never became a frame (an event dropped before it was
    encoded; only when no frame is retained).
    """

    __slots__ = (
        "_base_id",
        "_chunk_starts",
        "_chunks",
        "_head",
        "_offsets",
        "_tail",
        "_tail_start",
    )

    def __init__(self, first_id: int = 1) -> None:
        # Frame i (id _base_id + i, for i in [_head, len(_offsets) - 1)) spans
        # [_offsets[i], _offsets[i + 1]) of the stream: sealed `_chunks` (starting at
        # `_chunk_starts`), then the open `_tail` starting at `_tail_start`.
        self._chunks: list[bytes] = []
        self._chunk_starts: list[int] = []
        self._tail = bytearray()
        self._tail_start = 0
        self._offsets = array("Q", (0,))
        self._head = 0
        self._base_id = first_id

    @property
    def first_id(self) -> int:
        """The id of the oldest retained frame (the next one's id when none is retained)."""
        return self._base_id + self._head

    @property
    def next_id(self) -> int:
        """The id the next appended frame gets."""
        return self._base_id + len(self._offsets) - 1

    def __len__(self) -> int:
        """Frames retained."""
        return len(self._offsets) - 1 - self._head

    def append(self, frame: bytes) -> None:
        """Add `frame` as id `next_id`."""
        tail = self._tail
        tail += frame
        self._offsets.append(self._tail_start + len(tail))
        if len(tail) >= CHUNK_BYTES:
            self._seal()

    def _seal(self) -> None:
        """Turn the open tail into a sealed chunk: an exact-size copy, no growth slack."""
        tail = self._tail
        self._chunks.append(bytes(tail))
        self._chunk_starts.append(self._tail_start)
        self._tail_start += len(tail)
        self._tail = bytearray()

    def extend(self, frames: list[bytes]) -> int:
        """Add `frames` as the next ids, in order (one call per encoded batch: the offsets are
        summed in C); their total size in bytes. The tail is sealed once it passes
        `CHUNK_BYTES`, at the end of the batch."""
        if len(frames) == 1:  # a lone frame (low rates): `append` costs less than the sums
            self.append(frames[0])
            return len(frames[0])
        tail = self._tail
        before = len(tail)
        ends = accumulate(map(len, frames), initial=self._tail_start + before)
        next(ends)  # the initial value: where the first frame starts
        self._offsets.extend(ends)
        for frame in frames:
            tail += frame
        if len(tail) >= CHUNK_BYTES:
            self._seal()
        return len(tail) - before

    def drop_oldest(self) -> int:
        """Forget the oldest retained frame (there must be one); returns its size in bytes."""
        offsets, head = self._offsets, self._head
        size = offsets[head + 1] - offsets[head]
        head += 1
        self._head = head
        chunks = self._chunks
        while chunks and self._chunk_starts[0] + len(chunks[0]) <= offsets[head]:
            del chunks[0], self._chunk_starts[0]  # every frame in it was dropped
        if head > _REBASE and head * 2 > len(offsets):  # offsets are absolute: cut the front
            del offsets[:head]
            self._base_id += head
            self._head = 0
        return size

    def skip(self) -> None:
        """Retire id `next_id` without a frame (it was dropped before being encoded)."""
        if len(self):
            raise ValueError("only an empty buffer can skip an id")
        self._base_id += 1

    def read(self, after: int, limit: int) -> tuple[list[bytes], int]:
        """Up to `limit` frames with ids above `after`, as byte pieces, and the last id covered.

        When frames the reader had not read were dropped, the pieces begin with one `gap`
        frame saying how many (and the cursor moves past them).
        """
        pieces: list[bytes] = []
        head = self._head
        first_id = self._base_id + head
        if after < first_id - 1:
            pieces.append(gap_frame(first_id - 1 - after, first_id))
            after = first_id - 1
        offsets = self._offsets
        start = head + (after + 1 - first_id)
        end = min(len(offsets) - 1, start + limit)
        if end > start:
            self._slice(offsets[start], offsets[end], pieces)
            after += end - start
        return pieces, after

    def _slice(self, start: int, end: int, pieces: list[bytes]) -> None:
        """Add the bytes of the stream in [start, end) to `pieces`."""
        tail_start = self._tail_start
        if start >= tail_start:  # the common case: a caught-up reader's frames, all in the tail
            pieces.append(bytes(self._tail[start - tail_start : end - tail_start]))
            return
        index = max(bisect_right(self._chunk_starts, start) - 1, 0)
        for chunk_start, chunk in zip(
            self._chunk_starts[index:], self._chunks[index:], strict=True
        ):
            if chunk_start >= end:
                break
            if chunk_start + len(chunk) > start:
                pieces.append(chunk[max(start - chunk_start, 0) : end - chunk_start])
        if end > self._tail_start:
            with memoryview(self._tail) as view:
                pieces.append(
                    bytes(view[max(start - self._tail_start, 0) : end - self._tail_start])
                )
