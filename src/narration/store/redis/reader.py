"""Reading a job's stream after a reader's cursor, as SSE frames (a `gap` where ids jump)."""

from __future__ import annotations

import asyncio
from typing import Any

from ...wire import event_frame_from_json, gap_frame, terminal_frame_from_json
from ..base import Follower, ReadResult
from .cluster_tail import ClusterTail
from .connection import BLOCK_CHUNK_S, UNREACHABLE, Connections, Reachability
from .keys import Keys
from .shared_frames import SharedFrames, stream_entry_id
from .tail import StreamTail

__all__ = ["StreamReader", "frames_of"]

_READ_BATCH = 2048  # entries per XREAD
_SHORT_BLOCK_S = 0.05  # a reader's own XREAD BLOCK before it waits on the shared tail
_TAIL_SEEN_CAP = 10_000  # streams whose newest entry from the tail is remembered


class StreamReader:
    """Reads job streams for every reader of one store.

    A reader first reads with a short blocking XREAD of its own (a busy stream's next events
    come within it); caught up, it waits on the replica's shared tail (`tail.py`), which holds
    no connection per reader and hands over the entries it read.
    """

    def __init__(
        self, connections: Connections, reachability: Reachability, keys: Keys, replica: str
    ):
        self._redis = connections
        self._reachability = reachability
        # Readers in a short block of their own at once: each holds a pooled connection.
        self._max_short_blocks = max(1, min(32, connections.read_connections // 2))
        self._short_blocks = 0
        # Per stream, the newest entry id the tail handed over: a reader whose cursor is there
        # goes back to the tail at once, without a read of its own (a round trip per event).
        self._tail_seen: dict[str, int] = {}
        self._shared: SharedFrames | None = None  # the frames of the tail's latest batch
        self._tail: StreamTail | ClusterTail
        if connections.cluster:  # no XREAD across slots there: notification streams
            self._tail = ClusterTail(
                connections.tail_command,
                connections.read_command,
                keys,
                UNREACHABLE,
                batch=_READ_BATCH,
            )
        else:
            self._tail = StreamTail(
                connections.tail,  # type: ignore[arg-type]  # a plain client here
                connections.read_command,
                keys.poke(replica),
                UNREACHABLE,
                batch=_READ_BATCH,
            )

    async def read(self, log_key: str, job_key: str, after: int, timeout: float) -> ReadResult:
        """Frames of stream `log_key` after id `after`, waiting up to `timeout` s for some.

        `done` with no frames: the job (`job_key`) is gone from Redis, so the stream is over
        (looked at when the read times out, and after an outage of Redis).
        """
        recoveries = self._reachability.recoveries
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        waited = False
        seen = self._tail_seen.get(log_key)
        to_tail = timeout > 0 and seen is not None and after >= seen
        while True:
            if to_tail:  # caught up with what the tail last handed over: wait there again
                to_tail = False
                left = deadline - loop.time()
            else:  # a read of its own first (a busy stream's next events come within it)
                remaining = deadline - loop.time()
                command: list[Any] = ["XREAD", "COUNT", _READ_BATCH]
                short_block = (
                    remaining > 0 and not waited and self._short_blocks < self._max_short_blocks
                )
                if short_block:
                    block = max(1, int(min(remaining, _SHORT_BLOCK_S) * 1000))
                    command += ["BLOCK", block]
                    self._short_blocks += 1
                command += ["STREAMS", log_key, b"%d-0" % after]
                try:
                    reply = await self._redis.read_command(*command)
                except UNREACHABLE as exc:
                    self._reachability.failed(exc)
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        return ReadResult([], after, False)
                    await asyncio.sleep(min(remaining, 0.5))
                    continue
                finally:
                    if short_block:
                        self._short_blocks -= 1
                if self._reachability.down_since is not None:
                    self._reachability.ok()
                if reply:
                    return frames_of(after, reply[0][1])
                if recoveries != self._reachability.recoveries:  # Redis may have come back empty
                    recoveries = self._reachability.recoveries
                    if not await self._exists(job_key):
                        return ReadResult([], after, True)
                left = deadline - loop.time()
                if left <= 0:
                    if timeout > 0 and not await self._exists(job_key):
                        # Forgotten by Redis (flushed, restarted without persistence): end the
                        # stream instead of waiting forever; a resume then answers 404.
                        return ReadResult([], after, True)
                    return ReadResult([], after, False)
            entries = await self._tail.wait(log_key, after, min(left, BLOCK_CHUNK_S))
            if entries:
                result = self._from_tail(log_key, after, entries)
                if result.frames or result.done:
                    return result
            waited = entries is not None

    @property
    def can_follow(self) -> bool:
        """Whether caught-up readers can be followed (`follow`): on one Redis, by its tail.
        A cluster's tail reads on notifications, which a failover may lose, so there readers
        keep waiting in `read` (which reads for itself every few seconds)."""
        return isinstance(self._tail, StreamTail)

    def follow(self, log_key: str, after: int, follower: Follower) -> None:
        """Hand `follower` the frames of `log_key` past `after` from the tail (`can_follow`)."""
        assert isinstance(self._tail, StreamTail)
        self._tail.follow(log_key, after, follower)

    def unfollow(self, log_key: str, follower: Follower) -> None:
        if isinstance(self._tail, StreamTail):
            self._tail.unfollow(log_key, follower)

    def _from_tail(self, log_key: str, after: int, entries: list[Any]) -> ReadResult:
        """The frames after `after` of what the tail handed over, its newest id noted."""
        tail_seen = self._tail_seen
        if len(tail_seen) >= _TAIL_SEEN_CAP and log_key not in tail_seen:
            tail_seen.clear()  # a cache: forgetting only costs a stream one read of its own
        tail_seen[log_key] = stream_entry_id(entries[-1][0])
        return self._shared_frames(after, entries)

    def _shared_frames(self, after: int, entries: list[Any]) -> ReadResult:
        """`frames_of(after, entries)` for entries the tail handed to several readers: their
        frames are built by the first of them, then shared (`shared_frames.py`)."""
        shared = self._shared
        if shared is None or shared.entries is not entries:
            shared = self._shared = SharedFrames(entries)
        return shared.after(after) or frames_of(after, entries)

    def start(self) -> None:
        """Start a cluster's notification tail now (the single-Redis tail starts on demand)."""
        if isinstance(self._tail, ClusterTail):
            self._tail.start()

    async def close(self) -> None:
        """Stop the shared tail and close its connection."""
        await self._tail.close()

    async def _exists(self, key: str) -> bool:
        try:
            return bool(await self._redis.read_command("EXISTS", key))
        except UNREACHABLE as exc:
            self._reachability.failed(exc)
            return True


def frames_of(after: int, entries: list[Any]) -> ReadResult:
    """SSE frames of stream entries (as XREAD gives them) after id `after`; `done` when they
    end with the terminal entry (then `cursor` is its id)."""
    frames: list[bytes] = []
    cursor = after
    for entry_id, fields in entries:
        event_id = stream_entry_id(entry_id)
        if event_id <= cursor:
            continue
        if event_id > cursor + 1:
            frames.append(gap_frame(event_id - cursor - 1, event_id))
        cursor = event_id
        if fields[0] == b"d":
            frames.append(event_frame_from_json(event_id, fields[1]))
            continue
        values = dict(zip(fields[::2], fields[1::2], strict=True))
        frames.append(terminal_frame_from_json(event_id, values[b"e"], values[b"d"]))
        return ReadResult(frames, cursor, True)
    return ReadResult(frames, cursor, False)
