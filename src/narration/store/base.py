"""The storage interface: job records and one append-only event log per job.

Two implementations: `memory` (embedded default) and `redis` (several replicas). The emit path
only ever calls `EventLog.append`, which must never block or raise.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..errors import NarrationError
from ..events import NarrationEvent
from ..safe_encode import EventCaps

if TYPE_CHECKING:
    from .query import JobPage, JobQuery

__all__ = [
    "EventLog",
    "Follower",
    "JobRecord",
    "LogLimits",
    "ReadResult",
    "Store",
    "StoreUnavailableError",
]


class StoreUnavailableError(NarrationError):
    """The backend cannot be reached right now (answered 503: try again shortly)."""


@dataclass(frozen=True, slots=True)
class LogLimits:
    """How much one job's log retains before dropping its oldest events (with a `gap`):
    `max_bytes` counts encoded events (fields included); `caps` bound each event."""

    max_events: int = 100_000
    max_bytes: int = 64 * 1024 * 1024
    caps: EventCaps = field(default_factory=EventCaps)


@dataclass(slots=True)
class ReadResult:
    """What a reader gets from one `EventLog.read`: SSE frames to send as they are.

    `frames` may begin with a `gap` frame and end with the terminal frame; `cursor` is the last
    id covered (the reader's next `after`); `done` means the terminal was included (or was
    already behind the cursor), so the stream is over.
    """

    frames: list[bytes] = field(default_factory=list)
    cursor: int = 0
    done: bool = False


@dataclass(slots=True)
class JobRecord:
    """A job's state as stored; states go queued -> running -> completed | failed | cancelled."""

    job_id: str
    operation: dict[str, Any]
    correlation_id: str
    state: str = "queued"
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    parent_job_id: str | None = None
    trace_id: str | None = None
    owner: str | None = None  # the replica running it (Redis)
    tenant: str | None = None  # whose job it is: the submitter's tenant (None: auth was off)
    attempts: list[dict[str, Any]] | None = None  # operations with a retry policy only

    def matches(
        self, state: str | None, correlation_id: str | None, tenant: str | None = None
    ) -> bool:
        """True when the job is in `state`, has `correlation_id` and belongs to `tenant`
        (None matches any)."""
        return (
            (state is None or self.state == state)
            and (correlation_id is None or self.correlation_id == correlation_id)
            and (tenant is None or self.tenant == tenant)
        )

    def summary(self, events: int) -> dict[str, Any]:
        """The JSON body of `GET /v1/jobs/{id}` (`parent_job_id` only for a forwarded job)."""
        summary: dict[str, Any] = {
            "job_id": self.job_id,
            "operation": self.operation,
            "state": self.state,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
            "events": events,
            "correlation_id": self.correlation_id,
        }
        if self.parent_job_id is not None:
            summary["parent_job_id"] = self.parent_job_id
        if self.attempts is not None:
            summary["attempts"] = self.attempts
        return summary


class Follower(Protocol):
    """A caught-up reader the log hands new frames to as they arrive (`EventLog.follow`)."""

    def deliver(self, frames: list[bytes], cursor: int) -> bool:
        """Take `frames` (ids up to `cursor`) now, on the log's event loop, without waiting;
        False refuses them: the log stops following this reader and calls `wake`."""

    def wake(self) -> None:
        """The reader must read by itself again (the terminal came, or it refused frames);
        the log no longer follows it."""

    def finish(self, frames: list[bytes], cursor: int) -> None:
        """Take the last `frames` (the terminal's last, with id `cursor`) and end: the log no
        longer follows it (it reads for itself if it cannot take them now)."""

    def recheck(self) -> None:
        """As `wake`, and the log may have ended without a terminal (its store was out of
        reach and may be back without the job): read with a short wait, which finds out."""


class EventLog(ABC):
    """One job's ordered, append-only event log: ids 1, 2, 3, ..., sealed by one terminal."""

    __slots__ = ()  # so that the slots of a subclass take effect (no __dict__ per job)

    job_id: str
    can_follow: bool = False  # implements `follow` (else readers wait in `read`)
    # A followed reader reads again by itself, with a short wait, after each keepalive period
    # of silence: this log can end without a terminal appended (Redis forgot the job).
    recheck_when_idle: ClassVar[bool] = False

    @abstractmethod
    def append(self, event: NarrationEvent) -> None:
        """Add `event` with the next id; non-blocking, safe from any thread, never raises."""

    @abstractmethod
    async def read(self, after: int, timeout: float) -> ReadResult:
        """Frames for ids > `after`, waiting up to `timeout` s for some (none on timeout)."""

    @abstractmethod
    def terminal_id(self) -> int | None:
        """The id of the terminal event, once the log is sealed."""

    @abstractmethod
    def count(self) -> int:
        """How many events were appended (dropped ones included, terminal excluded)."""

    def follow(self, after: int, follower: Follower) -> bool:
        """Hand frames after `after` to `follower` as they arrive, until it refuses some or
        the terminal comes (then `follower.wake()`); False when frames after `after` are
        already there (read them first). Event loop thread only; logs with `can_follow`."""
        raise NotImplementedError

    def unfollow(self, follower: Follower) -> None:  # noqa: B027 - with `follow`
        """Stop handing frames to `follower` (nothing if it was not followed)."""

    async def flush(self) -> None:  # noqa: B027 - optional hook; memory logs have nothing to flush
        """Wait until appended events are durable and readable by every reader."""


class Store(ABC):
    """Job records and their logs. The runner is the only writer of job state."""

    @abstractmethod
    async def create(self, record: JobRecord) -> EventLog:
        """Store a new job (state queued) and return its empty log."""

    @abstractmethod
    async def get(self, job_id: str) -> JobRecord | None:
        """The job's record, or None when unknown (or expired)."""

    @abstractmethod
    async def log(self, job_id: str) -> EventLog | None:
        """The job's event log, or None when unknown (or expired)."""

    @abstractmethod
    async def list(
        self,
        state: str | None,
        limit: int,
        correlation_id: str | None = None,
        tenant: str | None = None,
    ) -> list[JobRecord]:
        """Jobs, newest first, optionally only those in `state`, of `correlation_id` and of
        `tenant`."""

    async def query(self, query: JobQuery) -> JobPage:
        """Jobs matching `query`, newest first, at most `query.limit` of them.

        This default filters what `list` returns (at most 1,000 jobs): a store holding more
        should page through its own index (the memory and Redis stores do).
        """
        from .query import JobPage

        records = await self.list(query.state, 1000, query.correlation_id)
        matching = [record for record in records if query.matches(record)][: query.limit]
        return JobPage(matching)

    async def save_attempts(self, record: JobRecord) -> None:  # noqa: B027 - optional hook
        """Store `record.attempts` (a retried job's attempts so far); memory shares the record."""

    @abstractmethod
    async def start(self, record: JobRecord) -> None:
        """Commit queued -> running (`record` already updated)."""

    @abstractmethod
    async def finish(self, record: JobRecord, log: EventLog) -> None:
        """Commit the final state of `record`, then seal `log` with its terminal event.

        The two happen together (atomically where the backend allows), and in that order, so a
        reader who sees the terminal always finds the final state.
        """

    @abstractmethod
    async def expire(self, job_id: str, after_s: float) -> None:
        """Forget the job and its log `after_s` seconds from now (retention)."""

    async def request_cancel(self, job_id: str) -> bool:
        """Ask the replica running `job_id` to cancel it; False when no other replica can.

        Only stores shared by several replicas (Redis) can; the replica's own jobs are
        cancelled by the runner directly.
        """
        return False

    def on_cancel_request(self, cancel: Callable[[str], Awaitable[Any]]) -> None:  # noqa: B027
        """Register what to call when another replica asks this one to cancel a job."""

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Start background work (writers, lease timers) in the server's event loop."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and timers."""

    def health(self) -> dict[str, Any]:
        """Backend facts for `/health` (name, and any trouble)."""
        return {"store": type(self).__name__}

    def trouble(self) -> str | None:
        """Why the backend cannot serve right now (`/health` says `degraded`), or None."""
        return None
