"""Carrying the narration context across boundaries where Python does not carry it by itself.

Threads, thread pools and `loop.run_in_executor` start with an empty context in plain Python;
`wrap`, `Thread` and `ContextExecutor` hand the caller's context over.
"""

from .threads import ContextExecutor, Thread, wrap

__all__ = ["ContextExecutor", "Thread", "wrap"]
