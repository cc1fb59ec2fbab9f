"""`ArchivedEventLog`: an archived job's log read back from its file, as a live log is read.

Streams and downloads read it like any `EventLog`: its frames from a cursor (a `gap` where ids
skip), then its terminal. Each reader gets its own, reading the file forward once in worker
threads; it closes the file at the terminal (or when the reader lets go of it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import IO

from ..events import NarrationEvent
from ..frames import line_to_frame
from ..store.base import EventLog, ReadResult
from ..wire import gap_frame, terminal_frame
from .archive import Archive, ArchivedJob

__all__ = ["ArchivedEventLog"]

_READ_BATCH = 2048  # frames per read


class ArchivedEventLog(EventLog):
    """One reader's view of an archived job's events (appending is ignored: it is over)."""

    def __init__(self, archive: Archive, job: ArchivedJob) -> None:
        self.job_id = job.record.job_id
        self.job = job
        self._archive = archive
        self._lines: Iterator[bytes] | None = None
        self._position = 0  # the last id taken from the file
        self._ended = False  # the file is exhausted (or absent)

    def append(self, event: NarrationEvent) -> None:
        """Nothing: an archived job takes no more events."""

    def terminal_id(self) -> int:
        return self.job.terminal_id

    def count(self) -> int:
        return self.job.events

    async def read(self, after: int, timeout: float) -> ReadResult:
        if after >= self.job.terminal_id:
            return ReadResult([], after, True)
        return await asyncio.to_thread(self._read, after)

    def _read(self, after: int) -> ReadResult:
        if self._lines is None or after < self._position:
            self.close()
            self._lines = self._archive.lines(self.job_id)
            self._position, self._ended = 0, self._lines is None
        frames: list[bytes] = []
        cursor = after
        for line in self._lines or ():
            try:
                kind, event_id, frame = line_to_frame(line)
            except ValueError:
                continue  # not a line the archive writes: skipped, never sent
            if kind == "gap":
                continue  # each reader's gaps come from the ids it skips
            self._position = event_id
            if event_id <= cursor:
                continue
            if event_id > cursor + 1:
                frames.append(gap_frame(event_id - cursor - 1, event_id))
            frames.append(frame)
            cursor = event_id
            if kind == "terminal":
                self.close()
                return ReadResult(frames, cursor, True)
            if len(frames) >= _READ_BATCH:
                return ReadResult(frames, cursor, False)
        return self._without_terminal(frames, cursor)

    def _without_terminal(self, frames: list[bytes], cursor: int) -> ReadResult:
        """The file ended before its terminal (damaged, or pruned meanwhile): what it lacked is
        a gap, and the terminal is made from the job's record."""
        self.close()
        self._ended = True
        record, terminal = self.job.record, self.job.terminal_id
        if cursor < terminal - 1:
            frames.append(gap_frame(terminal - 1 - cursor, terminal))
        frames.append(terminal_frame(terminal, self.job_id, record.state, record.error))
        return ReadResult(frames, terminal, True)

    def archived_file(self) -> IO[bytes] | None:
        """The job's gzip NDJSON file as stored (a whole-job download sends it as it is)."""
        return self._archive.open_events(self.job_id)

    def close(self) -> None:
        """Close the file (a later read opens it again)."""
        lines, self._lines = self._lines, None
        if lines is not None and hasattr(lines, "close"):
            with contextlib.suppress(Exception):
                lines.close()
