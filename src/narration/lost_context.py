"""Noticing events that lost their job: narrated in a plain thread while jobs run here.

A plain `threading.Thread` or `ThreadPoolExecutor` starts its work in an empty context, so an
event narrated there carries no job id and reaches no job's stream. `n()` calls `note()` only
when its context is the untouched default, jobs are routed in this process and the thread is
not the main thread; `note()` then counts the event unless the thread runs an event loop
(the main thread and loop threads narrate outside jobs on purpose), and says so once per
process on stderr.
Entering any narration context in a thread (`narration_context(actor=...)`) marks its events
as deliberately job-less.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import TextIO

__all__ = ["WARNING", "note", "stats"]

WARNING = (
    "narration: an event without a job id was narrated in thread {thread!r} while jobs run in"
    " this process, so no job's stream shows it. A plain threading.Thread or ThreadPoolExecutor"
    " does not carry the job's context: use narration.propagation.Thread, wrap the target with"
    " narration.propagation.wrap(fn), or use narration.propagation.ContextExecutor. (Reported"
    " once; narration.lost_context.stats() counts them.)"
)


class _Counts:
    events = 0
    warned = False


_counts = _Counts()
# The main thread's id: `n()` compares it before calling `note()` (the main thread narrates
# outside jobs on purpose). After a fork, the forking thread is the child's main thread.
main_ident = threading.main_thread().ident


def _after_fork() -> None:
    global main_ident
    main_ident = threading.main_thread().ident


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def note(stream: TextIO | None = None) -> None:
    """Count an event narrated without a context in a worker thread; warn the first time.

    Called by `n()` for a job-less event narrated outside the main thread while jobs run.
    """
    asyncio = sys.modules.get("asyncio")  # not imported: no loop can be running
    if asyncio is not None and asyncio.events._get_running_loop() is not None:
        return
    _counts.events += 1
    if _counts.warned:
        return
    _counts.warned = True
    with contextlib.suppress(Exception):  # a closed or re-entered stderr: n() must not raise
        name = threading.current_thread().name
        print(WARNING.format(thread=name), file=stream or sys.stderr, flush=True)


def stats() -> dict[str, int | bool]:
    """How many job-less worker-thread events were seen, and whether the warning was shown."""
    return {"events": _counts.events, "warned": _counts.warned}


def reset() -> None:
    """Forget the count and the warning (for tests)."""
    _counts.events = 0
    _counts.warned = False
