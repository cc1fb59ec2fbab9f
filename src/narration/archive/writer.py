"""`Archiver`: writes every finished job to the archive, then lets the live store forget it.

A job is archived after its terminal is committed, by a task of its own on the server's loop
(the file work runs in worker threads; `n()` never waits for any of it). Until the write has
succeeded the live copy is kept (its retention is pushed back before each try); a failed write
is logged, counted, shown by `/health` and tried again with a growing delay. Once written, the
live copy is forgotten when its ordinary retention (counted from the job's end) runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from .._backoff import Backoff
from ..errors import NarrationError
from ..frames import frame_to_line, parse_frame, split_frames
from ..redact import drop_job_secrets
from ..store.base import EventLog, JobRecord, Store
from .archive import Archive, ArchivedJob

__all__ = ["ArchiveError", "Archiver"]

logger = logging.getLogger("narration.archive")

SECRETS_GRACE_S = 60.0
"""A job's SecretStr values stay masked this long at least after its log is archived (sinks
may still be writing its last events)."""


class ArchiveError(NarrationError):
    """A job could not be archived (its log ended before its terminal); tried again later."""


class Archiver:
    """Archives finished jobs of one server: retries, expiry of the live copy, pruning."""

    def __init__(
        self,
        archive: Archive,
        store: Store,
        retention_s: float,
        *,
        hold_s: float = 86400.0,
        first_retry_s: float = 0.5,
        max_retry_s: float = 60.0,
        prune_every_s: float = 3600.0,
        concurrency: int = 2,
    ) -> None:
        self.archive = archive
        self.store = store
        self.retention_s = retention_s
        self.hold_s = hold_s
        self.first_retry_s = first_retry_s
        self.max_retry_s = max_retry_s
        self.prune_every_s = prune_every_s
        self.written = 0
        self.failed_writes = 0
        self.last_error: str | None = None
        self.failing: set[str] = set()  # jobs whose last write failed (kept live meanwhile)
        self.concurrency = concurrency
        self._pending: set[asyncio.Task[None]] = set()
        self._pruner: asyncio.Task[None] | None = None
        self._fresh_primitives()

    def _fresh_primitives(self) -> None:
        """asyncio objects for this run's event loop (a server may be run again, on another)."""
        self._slots = asyncio.Semaphore(self.concurrency)
        self._over_cap = asyncio.Event()  # a write took the archive past its size cap
        self._changed = asyncio.Condition()  # notified after every write (failed or not), prune

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start pruning (now, then every `prune_every_s`) on the running loop."""
        if self._pruner is None:
            if not self._pending:
                self._fresh_primitives()
            self._pruner = asyncio.create_task(self._prune_forever(), name="narration-archive")

    async def close(self, timeout: float = 5.0) -> None:
        """Give pending writes `timeout` seconds, then stop (unwritten jobs are logged)."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout)
        for task in set(self._pending):
            task.cancel()
        if self._pending:
            logger.error(
                "narration: %d finished job(s) were not archived before the server stopped",
                len(self._pending),
            )
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._pruner is not None:
            self._pruner.cancel()
            await asyncio.gather(self._pruner, return_exceptions=True)
            self._pruner = None

    @property
    def pending(self) -> int:
        """Jobs finished but not archived yet."""
        return len(self._pending)

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no job waits to be archived (tests, graceful stops)."""
        async with asyncio.timeout(timeout):
            while self._pending:
                await asyncio.wait(set(self._pending))

    async def wait_until(self, done: Callable[[Archiver], bool], timeout: float = 10.0) -> None:
        """Wait until `done(self)` holds, looking after every write and prune (tests, tools)."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: done(self))

    # ------------------------------------------------------------------ archiving

    def archive_job(self, record: JobRecord, log: EventLog) -> None:
        """Archive this finished job in the background (its terminal is committed)."""
        task = asyncio.create_task(self._archive(record, log), name=f"archive-{record.job_id}")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _archive(self, record: JobRecord, log: EventLog) -> None:
        job_id = record.job_id
        ended = record.finished_at or time.time()
        backoff = Backoff(initial=self.first_retry_s, cap=self.max_retry_s)
        while True:
            await self._hold(job_id)
            try:
                async with self._slots:
                    job = await self._write(record, log)
                self.failing.discard(job_id)
                self.written += 1
                break
            except Exception as exc:  # any failure: keep the live copy, say so, try again
                self.failed_writes += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.failing.add(job_id)
                delay = backoff.next_delay()
                logger.warning(
                    "narration: archiving %s failed (%s); the live copy is kept, next try "
                    "in %.1f s",
                    job_id,
                    self.last_error,
                    delay,
                )
            finally:
                async with self._changed:
                    self._changed.notify_all()
            await asyncio.sleep(delay)
        remaining = max(0.0, self.retention_s - (time.time() - ended))
        with contextlib.suppress(Exception):  # the store reports its own outages
            await self.store.expire(job_id, remaining)
        drop_job_secrets(job_id, after_s=max(remaining, SECRETS_GRACE_S))
        if self.archive.total is not None and self.archive.total > self.archive.max_bytes:
            self._over_cap.set()
        logger.debug("narration: archived %s (%d bytes)", job_id, job.size)

    async def _hold(self, job_id: str) -> None:
        """Keep the live copy while the job is not archived (a store with its own expiry,
        like Redis, set one when the job ended)."""
        with contextlib.suppress(Exception):
            await self.store.expire(job_id, self.hold_s)

    async def _write(self, record: JobRecord, log: EventLog) -> ArchivedJob:
        """Read the log on the loop, a batch at a time, and write it in a worker thread."""
        loop = asyncio.get_running_loop()
        terminal = log.terminal_id()
        if terminal is None:
            raise ArchiveError(f"{record.job_id} has no terminal yet")

        def batches() -> Iterator[list[bytes]]:  # runs in the worker thread
            cursor = 0
            while True:
                future = asyncio.run_coroutine_threadsafe(log.read(cursor, 0.0), loop)
                result = future.result(timeout=60.0)
                lines = [
                    frame_to_line(frame)
                    for raw in split_frames(result.frames)
                    if (frame := parse_frame(raw)) is not None
                ]
                if lines:
                    yield lines
                if result.done:
                    return
                if result.cursor == cursor:
                    raise ArchiveError(f"{record.job_id}'s log ended before its terminal")
                cursor = result.cursor

        return await asyncio.to_thread(self.archive.write, record, log.count(), terminal, batches())

    # ------------------------------------------------------------------ pruning

    async def _prune_forever(self) -> None:
        """Prune now, then every `prune_every_s`, or sooner when a write passed the cap."""
        while True:
            await self._prune_once()
            self._over_cap.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.prune_every_s):
                    await self._over_cap.wait()

    async def _prune_once(self) -> None:
        try:
            removed = await asyncio.to_thread(self.archive.prune)
        except Exception as exc:
            logger.warning("narration: pruning the archive failed: %s", exc)
            return
        finally:
            async with self._changed:
                self._changed.notify_all()
        if removed:
            logger.info("narration: %d archived job(s) past retention or the size cap", removed)

    # ------------------------------------------------------------------ health

    def trouble(self) -> str | None:
        """Why `/health` should say degraded, or None."""
        if not self.failing:
            return None
        return (
            f"archive: {len(self.failing)} finished job(s) could not be archived yet, "
            f"kept live meanwhile ({self.last_error})"
        )

    def health(self) -> dict[str, Any]:
        """Archive facts for `/health`."""
        return {
            "archive": {
                "url": self.archive.url,
                "pending": self.pending,
                "written": self.written,
                "failed_writes": self.failed_writes,
                "last_error": self.last_error,
            }
        }
