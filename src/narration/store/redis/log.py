"""`RedisEventLog`: one job's event log, a Redis stream written by the store's writer."""

from __future__ import annotations

from ...events import NarrationEvent
from ...wire import terminal_frame
from ..base import EventLog, LogLimits, ReadResult
from .keys import Keys
from .reader import StreamReader
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
    """

    __slots__ = (
        "_reader",
        "_terminal_id",
        "_writer",
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
        result = await self._reader.read(self.log_key, self.job_key, after, timeout)
        if result.done:
            if not result.frames:  # Redis no longer has the job: end the stream with an error
                frame = terminal_frame(after + 1, self.job_id, "failed", LOST_BY_STORE)
                result = ReadResult([frame], after + 1, True)
            self._terminal_id = result.cursor
        elif result.frames and not self.owned and result.cursor > self.last_id:
            self.last_id = result.cursor
        return result

    def terminal_id(self) -> int | None:
        return self._terminal_id

    def ended(self, terminal_id: int) -> None:
        """The terminal was written, with id `terminal_id`."""
        self._terminal_id = terminal_id

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
