"""Noticing that the process is being stopped, so open job streams can end before the server
waits for its connections to close.

An SSE stream of a running job never closes by itself, and uvicorn (like most ASGI servers)
waits for open connections before it runs the app's lifespan shutdown. So the server's lifespan
chains itself behind the exit-signal handler the ASGI server installed: on SIGINT/SIGTERM the
server handles the signal as usual, and narration starts ending its jobs and streams at once.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["on_exit_signals"]

EXIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def on_exit_signals(callback: Callable[[], Any]) -> Iterator[None]:
    """Inside the block, call `callback` in this event loop when SIGINT or SIGTERM arrives.

    Only a Python-level handler already in place (the ASGI server's) is chained, and it runs
    first; with no such handler (or off the main thread) nothing is installed. The previous
    handlers come back on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    installed: dict[signal.Signals, tuple[Any, Any]] = {}
    for sig in EXIT_SIGNALS:
        previous = signal.getsignal(sig)
        if not callable(previous) or previous is signal.default_int_handler:
            continue

        def chained(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
            previous(signum, frame)
            loop.call_soon_threadsafe(callback)

        signal.signal(sig, chained)
        installed[sig] = (previous, chained)
    try:
        yield
    finally:
        for sig, (previous, chained) in installed.items():
            if signal.getsignal(sig) is chained:
                signal.signal(sig, previous)
