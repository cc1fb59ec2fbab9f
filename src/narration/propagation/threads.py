"""Threads and thread pools that run their work in the context of the code that started it.

A plain `threading.Thread` or `ThreadPoolExecutor` runs its callable in a fresh, empty context
(the default on regular CPython builds), so the job id would be lost. These helpers copy the
caller's `contextvars` context, which holds the narration context, and run the work inside it.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar, cast

__all__ = ["ContextExecutor", "Thread", "wrap"]

P = ParamSpec("P")
T = TypeVar("T")


def wrap(fn: Callable[P, T]) -> Callable[P, T]:
    """`fn` bound to a copy of the caller's context: it runs there, whichever thread calls it.

    Each call runs in its own copy of that snapshot, so the wrapper may be called from several
    threads at once, and what one call sets does not leak into the next.
    """
    snapshot = contextvars.copy_context()

    @functools.wraps(fn)
    def in_context(*args: P.args, **kwargs: P.kwargs) -> T:
        return snapshot.copy().run(fn, *args, **kwargs)

    return in_context


class Thread(threading.Thread):
    """A `threading.Thread` whose target runs in the context of the code that created it.

    A subclass that overrides `run` loses this unless its `run` calls `super().run()` for the
    work, or is built with `wrap`.
    """

    def __init__(
        self,
        group: None = None,
        target: Callable[..., object] | None = None,
        name: str | None = None,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        daemon: bool | None = None,
    ) -> None:
        super().__init__(group, target, name, args, kwargs, daemon=daemon)
        self._narration_context = contextvars.copy_context()

    def run(self) -> None:
        """Run `target` inside a copy of the creator's context (taken when it was created)."""
        self._narration_context.run(super().run)


class ContextExecutor(ThreadPoolExecutor):
    """A `ThreadPoolExecutor` whose `submit` and `map` run each call in the submitter's context.

    `map` and `loop.run_in_executor(executor, fn, ...)` go through `submit`, so they do too.
    """

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Schedule `fn(*args, **kwargs)` to run in a copy of the caller's context."""
        run_in = contextvars.copy_context().run
        return super().submit(cast("Callable[..., T]", run_in), fn, *args, **kwargs)
