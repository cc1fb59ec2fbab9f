"""`Archive`: finished jobs' records and logs, kept after the live store has forgotten them.

Layout under the archive's root (`xx`: the first two hex digits of the job's uuid):

    jobs/xx/<job_id>.jsonl.gz   its events as gzip NDJSON (narration.frames): exactly what
                                `GET /v1/jobs/{id}/events` returns for the whole job
    jobs/xx/<job_id>.json       its record: the job summary, terminal id, archive time, size
    index/<YYYY-MM-DD>/<created µs>_<job_id>.json
                                the same record, by creation day (UTC): listings, retention

A job is written events first, then its record, then its index entry, each file whole. Every
method blocks: `Archiver` and the routes call them in worker threads.
"""

from __future__ import annotations

import gzip
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from typing import IO, Any

import msgspec

from ..store.base import JobRecord
from ..store.query import JobPage, JobQuery, record_key
from .fs import ArchiveFS, open_fs

__all__ = ["Archive", "ArchivedJob"]

SCAN_LIMIT = 5000
"""Most index entries one listing page reads: a selective filter gets a short page + cursor."""
_DAY = 86400.0
_RECORD_FIELDS = tuple(field.name for field in fields(JobRecord))
"""Every field of a job record: all of them are archived, whatever is added later."""


@dataclass(frozen=True, slots=True)
class ArchivedJob:
    """An archived job: its record, its event count and terminal id, and its archive facts."""

    record: JobRecord
    events: int
    terminal_id: int
    archived_at: float
    size: int  # bytes of its events file

    def summary(self) -> dict[str, Any]:
        """The body of `GET /v1/jobs/{id}` (as the live one, plus `"archived": true`)."""
        return {**self.record.summary(self.events), "archived": True}

    def to_json(self) -> bytes:
        record = {name: getattr(self.record, name) for name in _RECORD_FIELDS}
        return msgspec.json.encode(
            {
                "record": record,
                "events": self.events,
                "terminal_id": self.terminal_id,
                "archived_at": self.archived_at,
                "size": self.size,
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> ArchivedJob:
        doc = msgspec.json.decode(data)
        record = JobRecord(**{k: v for k, v in doc["record"].items() if k in _RECORD_FIELDS})
        return cls(
            record=record,
            events=int(doc["events"]),
            terminal_id=int(doc["terminal_id"]),
            archived_at=float(doc["archived_at"]),
            size=int(doc["size"]),
        )


def _shard(job_id: str) -> str:
    return f"jobs/{job_id[4:6]}"


def _day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def _micros(ts: float) -> int:
    return int(ts * 1e6)


class Archive:
    """Finished jobs in a directory or an fsspec URL, with a retention (days) and a size cap."""

    def __init__(
        self,
        url: str,
        *,
        retention_days: float = 30.0,
        max_bytes: int = 1 << 30,
        fs: ArchiveFS | None = None,
    ) -> None:
        if retention_days <= 0:
            raise ValueError("archive retention_days must be > 0")
        if max_bytes <= 0:
            raise ValueError("archive max_bytes must be > 0")
        self.fs = fs if fs is not None else open_fs(url)
        self.url = self.fs.url
        self.retention_days = retention_days
        self.max_bytes = max_bytes
        self.total: int | None = None  # bytes held, as of the last prune plus later writes

    # ------------------------------------------------------------------ paths

    @staticmethod
    def events_path(job_id: str) -> str:
        return f"{_shard(job_id)}/{job_id}.jsonl.gz"

    @staticmethod
    def record_path(job_id: str) -> str:
        return f"{_shard(job_id)}/{job_id}.json"

    @staticmethod
    def index_path(created_at: float, job_id: str) -> str:
        return f"index/{_day(created_at)}/{_micros(created_at):016d}_{job_id}.json"

    # ------------------------------------------------------------------ writing

    def write(
        self, record: JobRecord, events: int, terminal_id: int, batches: Iterable[list[bytes]]
    ) -> ArchivedJob:
        """Write a job: `batches` of its NDJSON lines (gzipped as they come), its record and its
        index entry. Raises whatever the filesystem raises; a retry rewrites every file."""
        compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: the gzip format

        def chunks() -> Iterator[bytes]:
            for lines in batches:
                data = compressor.compress(b"".join(lines))
                if data:
                    yield data
            yield compressor.flush()

        size = self.fs.write(self.events_path(record.job_id), chunks())
        job = ArchivedJob(record, events, terminal_id, time.time(), size)
        body = job.to_json()
        self.fs.write(self.record_path(record.job_id), [body])
        self.fs.write(self.index_path(record.created_at, record.job_id), [body])
        if self.total is not None:
            self.total += size + 2 * len(body)
        return job

    # ------------------------------------------------------------------ reading

    def get(self, job_id: str) -> ArchivedJob | None:
        """The archived job, or None."""
        data = self.fs.read(self.record_path(job_id))
        return ArchivedJob.from_json(data) if data else None

    def open_events(self, job_id: str) -> IO[bytes] | None:
        """The job's gzip NDJSON file as stored, or None."""
        return self.fs.open(self.events_path(job_id))

    def lines(self, job_id: str) -> Iterator[bytes] | None:
        """The job's NDJSON lines, decompressed as they are read (None when it is absent)."""
        raw = self.open_events(job_id)
        if raw is None:
            return None
        return _lines(raw)

    def query(self, query: JobQuery, scan_limit: int = SCAN_LIMIT) -> JobPage:
        """Archived jobs matching `query`, newest first (index entries, read day by day)."""
        page = JobPage()
        newest = query.until if query.until is not None else None
        if query.before is not None and (newest is None or query.before[0] < newest):
            newest = query.before[0]
        last_day = _day(newest) if newest is not None else None
        first_day = _day(query.since) if query.since is not None else None
        cursor = (_micros(query.before[0]), query.before[1]) if query.before else None
        scanned = 0
        for day in reversed(self.fs.names("index")):
            if last_day is not None and day > last_day:
                continue
            if first_day is not None and day < first_day:
                break
            for name in reversed(self.fs.names(f"index/{day}")):
                entry = _entry(name)
                if entry is None or (cursor is not None and entry >= cursor):
                    continue
                data = self.fs.read(f"index/{day}/{name}")
                scanned += 1
                if data is None:
                    continue  # pruned meanwhile
                job = ArchivedJob.from_json(data)
                record = job.record
                if query.matches(record):
                    page.records.append(record)
                    page.events[record.job_id] = job.events
                    if len(page.records) >= query.limit:
                        page.stop = record_key(record)
                        return page
                if scanned >= scan_limit:
                    page.stop = record_key(record)
                    return page
        return page

    # ------------------------------------------------------------------ retention

    def prune(self, now: float | None = None) -> int:
        """Delete jobs created more than `retention_days` ago, then the oldest ones while the
        archive holds more than `max_bytes`; the number of jobs deleted."""
        now = time.time() if now is None else now
        cutoff = now - self.retention_days * _DAY
        cutoff_day, cutoff_micros = _day(cutoff), _micros(cutoff)
        removed = 0
        days = self.fs.names("index")
        for day in days:
            if day > cutoff_day:
                break
            for name in self.fs.names(f"index/{day}"):
                entry = _entry(name)
                if entry is not None and (day < cutoff_day or entry[0] < cutoff_micros):
                    self._remove(day, name)
                    removed += 1
        total = self.fs.total_size("")
        for day in self.fs.names("index"):
            if total <= self.max_bytes:
                break
            for name in self.fs.names(f"index/{day}"):
                if total <= self.max_bytes:
                    break
                if _entry(name) is None:
                    continue
                total -= self._remove(day, name)
                removed += 1
        self.total = total
        return removed

    def _remove(self, day: str, name: str) -> int:
        """Delete one job's three files; the bytes freed (as recorded)."""
        entry = f"index/{day}/{name}"
        data = self.fs.read(entry)
        job_id = name.removesuffix(".json").partition("_")[2]
        self.fs.remove(self.events_path(job_id))
        self.fs.remove(self.record_path(job_id))
        self.fs.remove(entry)
        if data is None:
            return 0
        return ArchivedJob.from_json(data).size + 2 * len(data)


def _entry(name: str) -> tuple[int, str] | None:
    """(created µs, job id) of an index entry's file name; None for any other file."""
    micros, _, job_id = name.removesuffix(".json").partition("_")
    if not (name.endswith(".json") and micros.isdigit() and job_id.startswith("job-")):
        return None
    return int(micros), job_id


def _lines(raw: IO[bytes]) -> Iterator[bytes]:
    try:
        with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
            yield from unzipped
    finally:
        raw.close()
