"""The keeper: submit a job, follow its stream to the end, and turn the end into an exit code.

Ctrl-C while following cancels the job (DELETE) first when the keeper submitted it; the
remaining events and the `cancelled` terminal are shown (bounded), then 130 is returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from typing import Any

from .. import environment
from ..client import Gap, JobClient, JobClientError, Submitted, Terminal
from ..events import NarrationEvent
from .render import Printer

TOKEN_ENV = "NARRATION_TOKEN"
"""The environment variable holding the API key client commands send."""


def api_token() -> str | None:
    """The API key to send (env NARRATION_TOKEN), or None."""
    return environment.get(TOKEN_ENV)


__all__ = [
    "EXIT_CANCELLED",
    "EXIT_DONE",
    "EXIT_ERROR",
    "EXIT_USAGE",
    "TOKEN_ENV",
    "api_token",
    "follow",
    "keep",
    "run",
]

EXIT_DONE = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130

_REFUSED = frozenset({400, 413, 415, 422})
"""Statuses that mean the request itself was wrong: a usage error (exit 2), not a failed job."""


async def keep(
    url: str | Sequence[str],
    operation: Mapping[str, Any],
    printer: Printer,
    *,
    correlation_id: str | None = None,
    on_submitted: Callable[[Submitted], None] | None = None,
) -> int:
    """Submit `operation` (a request body) and follow its job to the end; the exit code."""
    name = operation.get("operation")
    async with JobClient(url, correlation_id=correlation_id, token=api_token()) as client:
        try:
            submitted = await client.submit(operation)
        except JobClientError as exc:
            printer.note(f"✖ could not submit {name}: {exc}", "bold red")
            return EXIT_USAGE if exc.status_code in _REFUSED else EXIT_ERROR
        printer.note(f"▶ {name}: job {submitted.job_id}, correlation id {submitted.correlation_id}")
        if on_submitted is not None:
            on_submitted(submitted)
        return await follow(client, submitted.job_id, printer, cancel_on_interrupt=True)


async def follow(
    client: JobClient,
    job_id: str,
    printer: Printer,
    *,
    cancel_on_interrupt: bool,
    after: int | None = None,
) -> int:
    """Print the job's stream to its terminal; the exit code (0 done, 1 error, 130 cancelled).

    On Ctrl-C (SIGINT) the job is cancelled first when `cancel_on_interrupt` (its remaining
    events and its `cancelled` terminal are shown, bounded to a few seconds; a second Ctrl-C
    stops waiting), then 130 is returned.
    """
    interrupted = asyncio.Event()
    reader = asyncio.create_task(_print_stream(client, job_id, printer, after))
    with _on_sigint(interrupted.set):
        if not await _interrupted_first(reader, interrupted, None):
            return reader.result()
        interrupted.clear()
        if cancel_on_interrupt:
            printer.note(f"Ctrl-C: cancelling {job_id} …", "yellow")
            try:
                await asyncio.wait_for(client.cancel(job_id), 5.0)
            except (JobClientError, TimeoutError) as exc:
                printer.note(f"could not cancel {job_id}: {exc}", "yellow")
            else:
                await _interrupted_first(reader, interrupted, 5.0)
        else:
            printer.note("Ctrl-C: stopped following (the job goes on)", "yellow")
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    return EXIT_CANCELLED


async def _interrupted_first(
    reader: asyncio.Task[int], interrupted: asyncio.Event, timeout: float | None
) -> bool:
    """Wait for the reader to end or an interrupt; True unless the reader ended."""
    waiter = asyncio.create_task(interrupted.wait())
    try:
        await asyncio.wait((reader, waiter), timeout=timeout, return_when="FIRST_COMPLETED")
    finally:
        waiter.cancel()
    return not reader.done()


async def _print_stream(
    client: JobClient, job_id: str, printer: Printer, after: int | None = None
) -> int:
    try:
        async for item in client.stream(job_id, after=after):
            if isinstance(item, NarrationEvent):
                printer.event(item)
            elif isinstance(item, Gap):
                printer.gap(item)
            else:
                printer.terminal(item)
                return _exit_code(item)
    except JobClientError as exc:
        if exc.code == "unknown_job":
            printer.note(f"✖ no such job: {job_id} ({exc.message})", "bold red")
        else:
            printer.note(f"✖ lost the stream of {job_id}: {exc}", "bold red")
    return EXIT_ERROR


def _exit_code(terminal: Terminal) -> int:
    if terminal.state == "completed":
        return EXIT_DONE
    if terminal.state == "cancelled":
        return EXIT_CANCELLED
    return EXIT_ERROR


@contextlib.contextmanager
def _on_sigint(callback: Callable[[], None]) -> Iterator[None]:
    """Call `callback` on SIGINT inside the block (instead of raising KeyboardInterrupt)."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, callback)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def run(main: Coroutine[Any, Any, int]) -> int:
    """Run `main`; a KeyboardInterrupt that still gets through means 130."""
    try:
        return asyncio.run(main)
    except KeyboardInterrupt:
        return EXIT_CANCELLED
