"""What `JobClient` returns: `Submitted`, and the `StreamItem`s of a stream (events, gaps, end)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from ..events import NarrationEvent

__all__ = ["Gap", "StreamItem", "Submitted", "Terminal"]


@dataclass(frozen=True, slots=True)
class Submitted:
    """What `POST /v1/jobs` answered: the new job, where to stream it, and its ids."""

    job_id: str
    sse_url: str
    correlation_id: str | None
    state: str


@dataclass(frozen=True, slots=True)
class Terminal:
    """The end of a job's stream: its final `state` (completed, failed or cancelled).

    `id` is the terminal event's SSE id, or None when the stream had already ended before this
    client saw the terminal event (the state then comes from `GET /v1/jobs/{id}`).
    """

    job_id: str
    state: str
    error: str | None = None
    id: int | None = None

    @property
    def ok(self) -> bool:
        """True when the job completed."""
        return self.state == "completed"


@dataclass(frozen=True, slots=True)
class Gap:
    """The server dropped `missed` events this reader had not read; the next id is `next_id`."""

    missed: int
    next_id: int


StreamItem: TypeAlias = NarrationEvent | Gap | Terminal
"""What `JobClient.stream()` yields: events, gaps, and finally one `Terminal`."""
