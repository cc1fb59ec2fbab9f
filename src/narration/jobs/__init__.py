"""Jobs: the operations registry, states, and the runner that executes operations inside their
job's context."""

from .registry import Handler, JobRegistry, OperationError, OperationSpec, RegistryError
from .retry import Retry
from .runner import Job, JobFinished, JobManager, NotAccepting, UnknownJob
from .states import FINAL_STATES, IllegalTransition, JobState, check_transition

__all__ = [
    "FINAL_STATES",
    "Handler",
    "IllegalTransition",
    "Job",
    "JobFinished",
    "JobManager",
    "JobRegistry",
    "JobState",
    "NotAccepting",
    "OperationError",
    "OperationSpec",
    "RegistryError",
    "Retry",
    "UnknownJob",
    "check_transition",
]
