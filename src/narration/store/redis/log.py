"""`RedisEventLog`: one job's event log, a Redis stream written by the store's writer."""

from __future__ import annotations

from functools import partial

from ...events import NarrationEvent
from ...wire import event_frame_from_json, terminal_frame
from ..base import EventLog, Follower, LogLimits, ReadResult
from .keys import Keys
from .reader import StreamReader
from .scripts import EVENT_HEAD
from .shared_frames import SharedFrames, hand_over
from .writer import EventWriter

__all__ = ["LOST_BY_STORE", "RedisEventLog"]

# The error of the `error` terminal that ends the streams of a job Redis no longer has.
LOST_BY_STORE = (
    "the store lost this job: Redis no longer has its records (restarted without persistence, "
    "flushed, or expired while this stream lagged)"
)


class RedisEventLog(EventLog):
    """One job's log in a Redis stream.

    The replica that created the job holds the writable log (`owned`): `append()` hands
    events to the store's `EventWriter`, which numbers and queues them. Other replicas get
    read-only views from `RedisStore.log()`; appending to those is counted as `late` and
    ignored. The counters below are the writer's (`QueuedLog`), changed under its lock.

    Caught-up readers are followed (`follow`): those of a log this replica writes by the
    writer itself, which hands them each batch Redis acknowledged (no read back, no frames
    rebuilt from the stream); the others, and all of them once the log is handed off (its
    lease lost, or Redis refused its events), by the replica's shared tail (`tail.py`).
    """

    __slots__ = (
        "_followers",
        "_local",
        "_reader",
        "_terminal_id",
        "_writer",
        "can_follow",
        "dropped",
        "encoded",
        "encoded_bytes",
        "job_id",
        "job_key",
        "last_id",
        "late",
        "log_key",
        "lost",
        "owned",
        "queued",
        "sealed",
        "written",
    )
    recheck_when_idle = True  # Redis may forget the job: no terminal is appended then

    def __init__(
        self,
        job_id: str,
        writer: EventWriter,
        reader: StreamReader,
        keys: Keys,
        *,
        owned: bool,
        last_id: int = 0,
        terminal_id: int | None = None,
    ) -> None:
        self.job_id = job_id
        self.owned = owned
        self._writer = writer
        self._reader = reader
        self.can_follow = reader.can_follow
        self._local = owned  # followers here get what the writer wrote (else: the tail's)
        self._followers: dict[Follower, int] | None = None  # the writer's, with cursors
        self.job_key = keys.job(job_id)
        self.log_key = keys.log(job_id)
        self.last_id = last_id  # ids handed out so far (owner) / last seen (view)
        self._terminal_id = terminal_id
        self.sealed = not owned or terminal_id is not None
        self.queued = 0  # events queued or being written
        self.encoded = 0  # events encoded so far (for the byte limit)
        self.encoded_bytes = 0  # their JSON size
        self.dropped = 0  # dropped while Redis was unreachable (readers get a gap)
        self.late = 0  # arrived after the terminal (counted, not written)
        self.lost = 0  # the job was gone from Redis when they were written
        self.written = last_id  # the last id Redis acknowledged (the writer's)

    def append(self, event: NarrationEvent) -> None:
        self._writer.append(self, event)

    async def read(self, after: int, timeout: float) -> ReadResult:
        terminal = self._terminal_id
        if terminal is not None and after >= terminal:
            return ReadResult([], after, True)
        if terminal is None and self.owned and after < self.written:  # maybe still at hand
            kept = self._writer.kept(self, after)
            if kept:
                frames = [event_frame_from_json(event_id, body) for event_id, body in kept]
                return ReadResult(frames, kept[-1][0], False)
        result = await self._reader.read(self.log_key, self.job_key, after, timeout)
        if result.done:
            if not result.frames:  # Redis no longer has the job: end the stream with an error
                frame = terminal_frame(after + 1, self.job_id, "failed", LOST_BY_STORE)
                result = ReadResult([frame], after + 1, True)
            self._terminal_id = result.cursor
        elif result.frames and not self.owned and result.cursor > self.last_id:
            self.last_id = result.cursor
        return result

    def follow(self, after: int, follower: Follower) -> bool:
        """Followed from `after` by the writer (an owned log read up to what Redis has
        acknowledged; False when behind that) or else by the shared tail (which reads what
        is already there at once); False past the terminal."""
        terminal = self._terminal_id
        if terminal is not None and after >= terminal:
            return False
        if not self._local or terminal is not None:  # (the writer has nothing more for it)
            self._reader.follow(self.log_key, after, follower)
            return True
        if after < self.written:
            return False
        if self._followers is None:
            self._followers = {}
        self._followers[follower] = after
        return True

    def unfollow(self, follower: Follower) -> None:
        if self._followers is not None and self._followers.pop(follower, None) is not None:
            return
        self._reader.unfollow(self.log_key, follower)

    def acknowledged(self, parts: list[bytes]) -> None:
        followers = self._followers
        if followers:
            newest = EVENT_HEAD.unpack(parts[-2])[0]
            hand_over(followers, newest, partial(SharedFrames.of_written, parts))

    def hand_off(self) -> None:
        """From now on the shared tail follows this log's readers here (its lease is gone,
        or Redis refused its events): those followed are woken to read and check."""
        self._local = False
        followers, self._followers = self._followers, None
        for follower in followers or ():
            follower.recheck()

    def terminal_id(self) -> int | None:
        return self._terminal_id

    def ended(self, terminal_id: int, frame: bytes | None = None) -> None:
        """The terminal was written, with id `terminal_id` (its `frame`, if known, is handed
        to the followers it follows on; the others read it themselves)."""
        self._terminal_id = terminal_id
        followers, self._followers = self._followers, None
        for follower, cursor in (followers or {}).items():
            if frame is not None and cursor == terminal_id - 1:
                follower.finish([frame], terminal_id)
            else:
                follower.wake()

    def count(self) -> int:
        if self._terminal_id is not None:
            return self._terminal_id - 1
        return self.last_id

    async def flush(self) -> None:
        await self._writer.flush(self)

    def maxlen(self, limits: LogLimits) -> int:
        """Entries to keep: the event cap, lowered to fit the byte cap at the mean event size."""
        if not self.encoded or not self.encoded_bytes:
            return limits.max_events
        by_bytes = limits.max_bytes * self.encoded // self.encoded_bytes
        return max(1, min(limits.max_events, by_bytes))
