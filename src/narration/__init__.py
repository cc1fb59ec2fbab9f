"""narration: job-scoped, live, human-readable narration for distributed Python systems.

from narration import n, narration_context
with narration_context(job_id="job-1"):
    n("spawn", "Spawning worker on GPU {}", 0)
"""

from .config import configure, configure_from_env, flush
from .context import NarrationContext, current_context, narration_context, with_narration_context
from .emit import n, narrate
from .events import Level, Mode, NarrationEvent
from .propagation.subprocess import init_from_env
from .redact import Redaction

__version__ = "0.1.0"

__all__ = [
    "Level",
    "Mode",
    "NarrationContext",
    "NarrationEvent",
    "Redaction",
    "__version__",
    "configure",
    "current_context",
    "flush",
    "init_from_env",
    "n",
    "narrate",
    "narration_context",
    "with_narration_context",
]

configure_from_env()
