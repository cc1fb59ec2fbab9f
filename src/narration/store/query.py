"""Job listing queries: filters, newest-first order and an opaque cursor for the next page."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from .base import JobRecord

__all__ = ["JobPage", "JobQuery", "decode_cursor", "encode_cursor", "merge_pages", "record_key"]

Key = tuple[float, str]
"""Where a job sits in a listing: (created_at, job_id); listings go from the largest key down."""


def record_key(record: JobRecord) -> Key:
    return (record.created_at, record.job_id)


@dataclass(frozen=True, slots=True)
class JobQuery:
    """Which jobs a listing wants. Times are Unix seconds on `created_at`: `since` included,
    `until` excluded; `before` is a cursor (only jobs listed after that key)."""

    state: str | None = None
    correlation_id: str | None = None
    operation: str | None = None
    since: float | None = None
    until: float | None = None
    before: Key | None = None
    limit: int = 100
    tenant: str | None = None  # whose jobs (None: everyone's, for admin or with auth off)

    def matches(self, record: JobRecord) -> bool:
        """True when `record` belongs in this listing (the cursor included)."""
        if not record.matches(self.state, self.correlation_id, self.tenant):
            return False
        if self.operation is not None and record.operation.get("operation") != self.operation:
            return False
        created = record.created_at
        if self.since is not None and created < self.since:
            return False
        if self.until is not None and created >= self.until:
            return False
        return self.before is None or record_key(record) < self.before


@dataclass(slots=True)
class JobPage:
    """Matching records, newest first; `stop` is the key of the last job the source looked
    at when it may hold more (so the next page starts below it), else None."""

    records: list[JobRecord] = field(default_factory=list)
    stop: Key | None = None
    events: dict[str, int] = field(default_factory=dict)  # job id -> events, when known


def merge_pages(pages: list[JobPage], limit: int) -> JobPage:
    """One page from several sources' pages (a job in two sources is listed once, from the
    first). The result's `stop` is the cursor of the next page (None: no more)."""
    seen: set[str] = set()
    merged: list[JobRecord] = []
    for page in pages:
        for record in page.records:
            if record.job_id not in seen:
                seen.add(record.job_id)
                merged.append(record)
    merged.sort(key=record_key, reverse=True)
    events = {job_id: count for page in reversed(pages) for job_id, count in page.events.items()}
    stops = [page.stop for page in pages if page.stop is not None]
    floor = max(stops) if stops else None  # below it, a source may have unseen jobs
    if floor is not None:
        merged = [record for record in merged if record_key(record) >= floor]
    if len(merged) > limit:
        return JobPage(merged[:limit], record_key(merged[limit - 1]), events)
    return JobPage(merged, floor, events)


def encode_cursor(key: Key) -> str:
    """An opaque cursor for `key`."""
    text = f"{key[0]!r}|{key[1]}".encode()
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


def decode_cursor(cursor: str) -> Key:
    """The key of a cursor made by `encode_cursor`; ValueError for anything else."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, job_id = text.split("|", 1)
        return (float(created), job_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError(f"{cursor[:40]!r} is not a cursor from this API") from None
