"""Jobs: states, and the runner that executes operations inside their job's context."""

from .runner import Handler, Job, JobFinished, JobManager, NotAccepting, UnknownJob
from .states import FINAL_STATES, IllegalTransition, JobState, check_transition

__all__ = [
    "FINAL_STATES",
    "Handler",
    "IllegalTransition",
    "Job",
    "JobFinished",
    "JobManager",
    "JobState",
    "NotAccepting",
    "UnknownJob",
    "check_transition",
]
