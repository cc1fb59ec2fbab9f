"""SSE frames of one batch of stream entries, built once and read by every reader it wakes.

The replica's shared tail (`tail.py`) hands the same list of entries to every reader of a job
it wakes; building each reader's frames from it would encode the same frame once per reader.
`SharedFrames` builds them once, and each reader takes the frames past its own cursor (with a
`gap` first when entries it had not read are gone), as `reader.frames_of` would give them.
The writer's batches are shared the same way with the readers it follows (`of_written`), and
`hand_over` is the one loop that hands a batch to the readers followed (`EventLog.follow`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from typing import Any

from ...wire import event_frame_from_json, gap_frame, terminal_frame_from_json
from ..base import Follower, ReadResult
from .scripts import EVENT_HEAD

__all__ = ["SharedFrames", "hand_over", "stream_entry_id"]


def stream_entry_id(raw: bytes) -> int:
    """The event id of a job-log stream entry id (`b"42-0"` -> 42)."""
    return int(raw.partition(b"-")[0])


class SharedFrames:
    """The frames of `entries` (as XREAD gives them), ids in order, the terminal last if any."""

    __slots__ = ("_frames", "_ids", "_terminal", "entries")

    def __init__(self, entries: list[Any]) -> None:
        self.entries = entries  # kept: the cache matches a batch by identity
        ids: list[int] = []
        frames: list[bytes] = []
        self._terminal = False
        for entry_id, fields in entries:
            event_id = stream_entry_id(entry_id)
            if ids and event_id <= ids[-1]:
                continue
            ids.append(event_id)
            if fields[0] == b"d":
                frames.append(event_frame_from_json(event_id, fields[1]))
                continue
            values = dict(zip(fields[::2], fields[1::2], strict=True))
            frames.append(terminal_frame_from_json(event_id, values[b"e"], values[b"d"]))
            self._terminal = True
            break
        self._ids, self._frames = ids, frames

    @classmethod
    def of_written(cls, parts: list[bytes]) -> SharedFrames:
        """The frames of events the writer just wrote, `parts` as it sent them: [head, JSON,
        head, JSON, ...] in id order (an id sent again after a loss counts once)."""
        shared = cls.__new__(cls)
        shared.entries = parts
        ids: list[int] = []
        frames: list[bytes] = []
        for index in range(0, len(parts), 2):
            event_id = EVENT_HEAD.unpack(parts[index])[0]
            if ids and event_id <= ids[-1]:
                continue
            ids.append(event_id)
            frames.append(event_frame_from_json(event_id, parts[index + 1]))
        shared._ids, shared._frames, shared._terminal = ids, frames, False
        return shared

    def after(self, cursor: int) -> ReadResult | None:
        """The frames past `cursor`; None when the batch has a hole past it (ids that jump:
        the caller builds those frames itself, with their gaps)."""
        ids = self._ids
        start = bisect_right(ids, cursor)
        if start == len(ids):
            return ReadResult([], cursor, False)
        if ids[-1] - ids[start] != len(ids) - 1 - start:
            return None
        frames = self._frames[start:]
        if ids[start] > cursor + 1:
            frames.insert(0, gap_frame(ids[start] - cursor - 1, ids[start]))
        return ReadResult(frames, ids[-1], self._terminal)


def hand_over(
    followers: dict[Follower, int], newest: int, frames: Callable[[], SharedFrames]
) -> None:
    """Hand one batch (ids up to `newest`; its `frames()` built at the first follower that
    needs them) to each follower {follower: cursor} it concerns, the terminal with `finish`.
    One that refuses its frames, or that a hole in the ids leaves with a gap to make, is woken
    (`wake`) to read for itself; those ended or woken are no longer followed."""
    shared: SharedFrames | None = None
    for follower, after in list(followers.items()):
        if after >= newest:
            continue
        if shared is None:
            shared = frames()
        result = shared.after(after)  # None: a hole; done: the terminal
        if result is not None and not result.done:
            batch, cursor = result.frames, result.cursor
            if not batch or follower.deliver(batch, cursor):
                followers[follower] = cursor
                continue
        del followers[follower]
        if result is not None and result.done:
            follower.finish(result.frames, result.cursor)
        else:
            follower.wake()
