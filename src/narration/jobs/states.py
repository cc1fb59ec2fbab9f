"""Job states and the only transitions between them."""

from __future__ import annotations

from enum import StrEnum

from ..errors import JobError

__all__ = ["FINAL_STATES", "IllegalTransitionError", "JobState", "check_transition"]


class JobState(StrEnum):
    """queued -> running -> completed | failed | cancelled."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})
_ALLOWED = {
    JobState.QUEUED: {JobState.RUNNING},
    JobState.RUNNING: set(FINAL_STATES),
}


class IllegalTransitionError(JobError):
    """A state change the job lifecycle does not allow (for example completed -> running)."""


def check_transition(current: str, new: str) -> JobState:
    """`new` as a JobState if `current -> new` is allowed; IllegalTransitionError otherwise."""
    target = JobState(new)
    if target not in _ALLOWED.get(JobState(current), set()):
        raise IllegalTransitionError(f"a job cannot go from {current} to {new}")
    return target
