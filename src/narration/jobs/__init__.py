"""Jobs: the operations registry, states, and the runner that executes operations inside their
job's context."""

from .errors import OperationError, RegistryError
from .registry import Handler, JobRegistry, OperationSpec
from .retry import Retry
from .runner import Job, JobFinishedError, JobManager, NotAcceptingError, UnknownJobError
from .states import FINAL_STATES, IllegalTransitionError, JobState, check_transition

__all__ = [
    "FINAL_STATES",
    "Handler",
    "IllegalTransitionError",
    "Job",
    "JobFinishedError",
    "JobManager",
    "JobRegistry",
    "JobState",
    "NotAcceptingError",
    "OperationError",
    "OperationSpec",
    "RegistryError",
    "Retry",
    "UnknownJobError",
    "check_transition",
]
