"""Locked sections that `n()` may re-enter on their own thread without waiting for itself.

A signal handler or a finalizer runs between two bytecodes of whatever its thread was doing;
if that was a section of an event log and the handler calls `n()`, the log's `append` runs
inside the section. A plain lock would deadlock there. Here the lock is re-entrant and each
section marks the state busy: an append that finds it busy sets its work aside instead, and
the work is replayed right after by a callback on the loop (or by the caller's next section).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any

__all__ = ["ReentrySafe"]


class ReentrySafe:
    """Mixin: `with self:` is a busy section; `_set_aside`/`_replay_set_aside` defer work.

    The subclass sets `_lock = threading.RLock()`, `_busy = False` and `_aside = None` (slots
    of this class), and implements `_replay(item)`. Hot paths check `_busy` under `_lock`
    themselves (entering `with self:` costs a Python call each way).
    """

    __slots__ = ("_aside", "_busy", "_lock")

    _lock: threading.RLock
    _busy: bool
    _aside: deque[Any] | None

    def __enter__(self) -> None:
        self._lock.acquire()
        self._busy = True

    def __exit__(self, *exc_info: object) -> None:
        self._busy = False
        self._lock.release()

    def _set_aside(self, item: Any, loop: asyncio.AbstractEventLoop | None) -> None:
        """Keep `item` for `_replay` and ask `loop` to replay it soon (one C-level deque
        append and a self-pipe write: safe in a signal handler)."""
        aside = self._aside
        if aside is None:
            aside = self._aside = deque()
        aside.append(item)
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._replay_set_aside)

    def _replay_set_aside(self) -> None:
        """Replay, in order, what was set aside so far (never what replaying sets aside)."""
        aside = self._aside
        if aside:
            for _ in range(len(aside)):
                self._replay(aside.popleft())

    def _replay(self, item: Any) -> None:
        raise NotImplementedError
