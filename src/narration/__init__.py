"""narration: job-scoped, live, human-readable narration for distributed Python systems.

    from narration import n, narration_context
    with narration_context(job_id="job-1"):
        n("spawn", "Spawning worker on GPU {}", 0)

This module holds the core's public API only; importing it configures nothing (output comes
from `configure()` or, explicitly, `configure_from_env()`). The job server, client, stores,
testing helpers and the command are subpackages (docs/ARCHITECTURE.md section 7).
"""

from typing import cast

from .config import configure, configure_from_env, flush
from .context import (
    NarrationContext,
    attach,
    current_context,
    detach,
    narration_context,
    with_narration_context,
)
from .emit import Narrate
from .emit import n as _n
from .errors import NarrationError
from .events import Level, Mode, NarrationEvent
from .propagation.subprocess import init_from_env
from .redact import Redaction

__version__ = "0.1.0"

# `n` typed with its level shortcuts (`n.debug(...)`); the object is the function itself.
n = narrate = cast(Narrate, _n)

__all__ = [
    "Level",
    "Mode",
    "NarrationContext",
    "NarrationError",
    "NarrationEvent",
    "Redaction",
    "__version__",
    "attach",
    "configure",
    "configure_from_env",
    "current_context",
    "detach",
    "flush",
    "init_from_env",
    "n",
    "narrate",
    "narration_context",
    "with_narration_context",
]
