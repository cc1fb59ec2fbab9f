"""The `narration` command: run a server, submit work and watch it live.

    narration serve --jobs myservice.jobs:jobs      a server for your operations
    narration serve --app myservice.main:app        or your whole app
    narration submit build_report --set report_id=r-1 --url http://127.0.0.1:7833
    narration jobs | status JOB | cancel JOB | tail JOB | operations
    narration queen --hive gpu=http://10.0.0.5:7835 / narration hive --id gpu
    narration demo                                   queen + hive + worker, end to end
    narration keys new --name ci --scopes submit,read   an API key and its server line

Client commands send the API key in NARRATION_TOKEN (never on the command line).

`submit` is the keeper: it submits the operation, streams the job live (one line per event:
time, actor, action, message, colored by level) and exits 0 when the job is `done`, 1 on
`error` (the error is printed) and 130 when `cancelled`; Ctrl-C cancels the job (DELETE)
before exiting 130; a usage error exits 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

try:
    from . import job_commands, key_commands, server_commands
    from .base import app
    from .keeper import EXIT_CANCELLED, EXIT_DONE, EXIT_ERROR, EXIT_USAGE
    from .operations import build_operation
    from .render import Printer, render_event
except ImportError as missing:  # installed without the `cli` extra
    if missing.name not in ("typer", "rich", "httpx", "httpx_sse", "pydantic", "fastapi"):
        raise
    _MISSING: ImportError | None = missing
else:
    _MISSING = None

__all__ = [
    "EXIT_CANCELLED",
    "EXIT_DONE",
    "EXIT_ERROR",
    "EXIT_USAGE",
    "Printer",
    "app",
    "build_operation",
    "main",
    "render_event",
]

_COMMANDS = (job_commands, key_commands, server_commands)  # imported for the commands they register


def main(argv: Sequence[str] | None = None) -> None:
    """The `narration` console script."""
    if _MISSING is not None:
        sys.exit(
            f"narration: the command needs the `cli` extra ({_MISSING.name} is not installed): "
            "pip install 'narration-core[cli]'"
        )
    app(args=list(argv) if argv is not None else None, prog_name="narration")
