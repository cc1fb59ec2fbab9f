"""The archive's files: NDJSON lines and SSE frames round trip, retention by days and the size
cap prune the oldest jobs, listings read the index newest first, merged pages and cursors."""

from __future__ import annotations

import gzip
import time
import uuid
from pathlib import Path

import pytest

from narration.archive import Archive, ArchivedEventLog
from narration.events import Level, NarrationEvent
from narration.frames import frame_to_line, line_to_frame, parse_frame, split_frames
from narration.store.base import JobRecord
from narration.store.query import (
    JobPage,
    JobQuery,
    decode_cursor,
    encode_cursor,
    merge_pages,
    record_key,
)
from narration.wire import event_frame, gap_frame, terminal_frame

pytestmark = pytest.mark.unit

DAY = 86400.0


def job_id() -> str:
    return f"job-{uuid.uuid4()}"


def frames_of(job: str, count: int) -> list[bytes]:
    events = [
        event_frame(
            i,
            NarrationEvent(
                ts=1.5, level=Level.INFO, actor="a", action="step", human=f"step {i}", job_id=job
            ),
        )
        for i in range(1, count + 1)
    ]
    return [*events, terminal_frame(count + 1, job, "completed", None)]


def test_frames_and_lines_round_trip() -> None:
    job = job_id()
    frames = [*frames_of(job, 2)[:2], gap_frame(3, 6), terminal_frame(6, job, "failed", "boom")]
    joined = b"".join(frames)
    pieces = [joined[:10], joined[10:70], joined[70:]]  # cut anywhere, as a log may hand them
    assert list(split_frames(pieces)) == frames
    lines = [frame_to_line(parse_frame(raw)) for raw in frames]  # type: ignore[arg-type]
    assert lines[2] == b'{"event":"gap","missed":3,"next_id":6}\n'
    assert lines[3] == (
        b'{"id":6,"event":"error","job_id":"%s","state":"failed","error":"boom"}\n' % job.encode()
    )
    assert [line_to_frame(line) for line in lines] == [
        ("event", 1, frames[0]),
        ("event", 2, frames[1]),
        ("gap", 6, b""),
        ("terminal", 6, frames[3]),
    ]
    with pytest.raises(ValueError, match="not a narration NDJSON line"):
        line_to_frame(b'{"ts":1}\n')


def write_job(archive: Archive, created_at: float, events: int = 3, **fields: str) -> JobRecord:
    record = JobRecord(
        job_id=job_id(),
        operation={"operation": fields.get("operation", "op")},
        correlation_id=fields.get("correlation_id", "c-1"),
        state=fields.get("state", "completed"),
        created_at=created_at,
        finished_at=created_at + 1,
    )
    frames = frames_of(record.job_id, events)
    lines = [frame_to_line(parse_frame(raw)) for raw in frames]  # type: ignore[arg-type]
    archive.write(record, events, events + 1, [lines[:1], lines[1:]])
    return record


async def test_an_archived_log_reads_like_a_live_one(tmp_path: Path) -> None:
    archive = Archive(str(tmp_path))
    record = write_job(archive, time.time(), events=3)
    stored = archive.get(record.job_id)
    assert stored is not None and stored.events == 3 and stored.terminal_id == 4
    assert stored.summary()["archived"] is True
    log = ArchivedEventLog(archive, stored)
    first = await log.read(0, 0.0)
    assert first.done and first.cursor == 4
    assert first.frames == frames_of(record.job_id, 3)
    later = ArchivedEventLog(archive, stored)
    resumed = await later.read(2, 0.0)
    assert resumed.frames == frames_of(record.job_id, 3)[2:]
    assert (await later.read(4, 0.0)).done
    # A file lost under the reader: a gap for what is missing, the terminal from the record.
    (tmp_path / Archive.events_path(record.job_id)).unlink()
    lost = await ArchivedEventLog(archive, stored).read(1, 0.0)
    assert lost.frames == [gap_frame(2, 4), terminal_frame(4, record.job_id, "completed", None)]
    assert lost.done


def test_the_events_file_is_the_download_gzipped(tmp_path: Path) -> None:
    archive = Archive(str(tmp_path))
    record = write_job(archive, time.time(), events=2)
    with archive.open_events(record.job_id) as raw:  # type: ignore[union-attr]
        text = gzip.decompress(raw.read()).decode()
    assert [line.split(",")[0] for line in text.splitlines()] == ['{"id":1', '{"id":2', '{"id":3']
    assert list(archive.lines(record.job_id) or ()) == [
        f"{x}\n".encode() for x in text.splitlines()
    ]


def test_prune_deletes_jobs_past_retention_then_the_oldest_over_the_size_cap(
    tmp_path: Path,
) -> None:
    now = time.time()
    archive = Archive(str(tmp_path), retention_days=7, max_bytes=10**9)
    old = [write_job(archive, now - days * DAY) for days in (30, 8)]
    recent = [write_job(archive, now - days * DAY) for days in (3, 2, 1)]
    assert archive.prune(now) == 2
    for record in old:
        assert archive.get(record.job_id) is None
        assert not (tmp_path / Archive.events_path(record.job_id)).exists()
    assert [archive.get(r.job_id) is not None for r in recent] == [True, True, True]
    assert sorted(p.name for p in (tmp_path / "index").iterdir()) == sorted(
        time.strftime("%Y-%m-%d", time.gmtime(r.created_at)) for r in recent
    )

    one_job = archive.fs.total_size("") // 3
    archive.max_bytes = int(one_job * 2.5)  # room for two jobs: the oldest goes
    assert archive.prune(now) == 1
    assert archive.get(recent[0].job_id) is None
    assert [archive.get(r.job_id) is not None for r in recent[1:]] == [True, True]
    assert archive.total is not None and archive.total <= archive.max_bytes


def test_archive_listings_read_the_index_newest_first_with_filters(tmp_path: Path) -> None:
    now = time.time()
    archive = Archive(str(tmp_path))
    made = [
        write_job(archive, now - 3 * DAY, operation="a"),
        write_job(archive, now - 2 * DAY, operation="b", state="failed"),
        write_job(archive, now - 2 * DAY + 5, operation="a", correlation_id="c-2"),
        write_job(archive, now - DAY, operation="b"),
    ]
    newest = list(reversed(made))

    def ids(**query: object) -> list[str]:
        return [r.job_id for r in archive.query(JobQuery(**query)).records]  # type: ignore[arg-type]

    assert ids() == [r.job_id for r in newest]
    assert ids(operation="a") == [made[2].job_id, made[0].job_id]
    assert ids(state="failed") == [made[1].job_id]
    assert ids(correlation_id="c-2") == [made[2].job_id]
    assert ids(since=now - 2 * DAY, until=now - DAY) == [made[2].job_id, made[1].job_id]
    page = archive.query(JobQuery(limit=2))
    assert page.stop == record_key(made[2])
    assert ids(before=page.stop) == [made[1].job_id, made[0].job_id]
    capped = archive.query(JobQuery(operation="zzz"), scan_limit=3)
    assert capped.records == [] and capped.stop == record_key(made[1])


def record(created_at: float, name: str) -> JobRecord:
    return JobRecord(job_id=name, operation={}, correlation_id="c", created_at=created_at)


def test_merged_pages_never_skip_or_repeat_a_job() -> None:
    live = JobPage([record(9, "j9"), record(7, "j7")], stop=None)
    archived = JobPage([record(8, "j8"), record(7, "j7"), record(6, "j6")], stop=(6, "j6"))
    page = merge_pages([live, archived], limit=3)
    assert [r.job_id for r in page.records] == ["j9", "j8", "j7"]
    assert page.stop == (7, "j7")
    short = merge_pages([JobPage([record(5, "j5")]), JobPage([], stop=(4, "x"))], limit=10)
    assert [r.job_id for r in short.records] == ["j5"] and short.stop == (4, "x")
    done = merge_pages([JobPage([record(5, "j5")]), JobPage([])], limit=10)
    assert done.stop is None
    assert decode_cursor(encode_cursor((1764103678.123456, "job-x"))) == (
        1764103678.123456,
        "job-x",
    )
    with pytest.raises(ValueError, match="not a cursor"):
        decode_cursor("%%%")
