"""The in-memory EventLog: numbering, bounds with exact gaps, thread safety, encode-once."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import msgspec
import pytest

from narration.events import Level, NarrationEvent
from narration.store import LogLimits, MemoryEventLog, memory
from narration.testing.sse import parse_sse

pytestmark = pytest.mark.unit

JOB = "job-00000000-0000-4000-8000-000000000001"


def _event(i: int, text: str = "") -> NarrationEvent:
    return NarrationEvent(
        ts=1.0, level=Level.INFO, actor="t", action="tick", human=text or f"e{i}", job_id=JOB
    )


def _parse(chunks: list[bytes]) -> list[tuple[str | None, int | None, dict[str, object]]]:
    """(event name, id, data) of each SSE frame (a chunk may hold several frames)."""
    return [
        (frame.event, None if frame.id is None else int(frame.id), msgspec.json.decode(frame.data))
        for frame in parse_sse(b"".join(chunks))
    ]


def _start_producers(log: MemoryEventLog, threads: int, per_thread: int) -> list[threading.Thread]:
    """`threads` threads appending `per_thread` events each, texts "<thread>:<i>"; started."""

    def producer(t: int) -> None:
        for i in range(per_thread):
            log.append(_event(i, text=f"{t}:{i}"))

    workers = [threading.Thread(target=producer, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    return workers


def _count_encodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Ids the log encodes, in order (to prove each event is encoded exactly once)."""
    encoded: list[int] = []
    original = memory.encode_now

    def counting(event: NarrationEvent, event_id: int, caps: Any) -> bytes | None:
        encoded.append(event_id)
        return original(event, event_id, caps)

    monkeypatch.setattr(memory, "encode_now", counting)
    return encoded


async def test_ids_order_and_terminal() -> None:
    log = MemoryEventLog(JOB)
    for i in range(3):
        log.append(_event(i))
    log.seal("completed", None)
    result = await log.read(0, timeout=0)
    parsed = _parse(result.frames)
    assert [(name, i) for name, i, _ in parsed] == [
        ("narration", 1),
        ("narration", 2),
        ("narration", 3),
        ("done", 4),
    ]
    assert [d.get("human") for _, _, d in parsed[:3]] == ["e0", "e1", "e2"]
    assert parsed[3][2] == {"job_id": JOB, "state": "completed", "error": None}
    assert (result.cursor, result.done) == (4, True)
    assert log.terminal_id() == 4 and log.count() == 3


async def test_after_terminal_nothing_more_and_late_events_are_counted() -> None:
    log = MemoryEventLog(JOB)
    log.append(_event(0))
    log.seal("failed", "boom")
    log.append(_event(1))
    log.seal("completed", None)  # a second seal changes nothing
    assert log.late == 1
    result = await log.read(0, timeout=0)
    assert [(n, i) for n, i, _ in _parse(result.frames)] == [("narration", 1), ("error", 2)]
    after = await log.read(2, timeout=1)
    assert (after.frames, after.done) == ([], True)


async def test_drop_oldest_gives_an_exact_gap() -> None:
    log = MemoryEventLog(JOB, LogLimits(max_events=5))
    for i in range(12):
        log.append(_event(i))
    assert log.dropped == 7
    result = await log.read(0, timeout=0)
    parsed = _parse(result.frames)
    assert parsed[0] == ("gap", None, {"missed": 7, "next_id": 8})
    assert [i for _, i, _ in parsed[1:]] == [8, 9, 10, 11, 12]
    # A reader already past the dropped part sees no gap.
    later = _parse((await log.read(9, timeout=0)).frames)
    assert [(n, i) for n, i, _ in later] == [
        ("narration", 10),
        ("narration", 11),
        ("narration", 12),
    ]


async def test_byte_limit_drops_oldest() -> None:
    log = MemoryEventLog(JOB, LogLimits(max_events=1000, max_bytes=4000))
    for i in range(20):
        log.append(_event(i, text="x" * 500))
    retained, size = log.retained()
    assert size <= 4000 and retained == 20 - log.dropped and log.dropped > 0
    parsed = _parse((await log.read(0, timeout=0)).frames)
    assert parsed[0][0] == "gap" and parsed[0][2]["missed"] == log.dropped


async def test_each_event_is_encoded_once_for_all_readers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encoded = _count_encodes(monkeypatch)
    log = MemoryEventLog(JOB)
    for i in range(10):
        log.append(_event(i))
    first = await log.read(0, timeout=0)
    second = await log.read(0, timeout=0)
    third = await log.read(4, timeout=0)
    assert first.frames == second.frames
    assert [i for _, i, _ in _parse(third.frames)] == list(range(5, 11))
    assert encoded == list(range(1, 11))


async def test_events_are_encoded_in_the_background_before_any_reader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encoded = _count_encodes(monkeypatch)
    log = MemoryEventLog(JOB)
    for i in range(300):  # past one encode batch: the log schedules an encode on its loop
        log.append(_event(i))
    await asyncio.sleep(0)  # one loop turn runs the scheduled encode
    assert encoded == list(range(1, 301))
    parsed = _parse((await log.read(0, timeout=0)).frames)
    assert [i for _, i, _ in parsed] == list(range(1, 301))
    assert len(encoded) == 300


async def test_reader_wakes_on_append_from_another_thread() -> None:
    log = MemoryEventLog(JOB)
    reader = asyncio.create_task(log.read(0, timeout=10))
    await asyncio.sleep(0)  # usually lets the reader arm its waiter first; either order works
    threading.Thread(target=log.append, args=(_event(0),)).start()
    result = await asyncio.wait_for(reader, 5)
    assert [i for _, i, _ in _parse(result.frames)] == [1]


async def test_many_threads_appending_while_reading_lose_nothing() -> None:
    log = MemoryEventLog(JOB)
    per_thread, threads = 5_000, 4
    workers = _start_producers(log, threads, per_thread)
    seen: list[int] = []
    texts: list[str] = []
    cursor = 0
    async with asyncio.timeout(30):
        while len(seen) < per_thread * threads:
            result = await log.read(cursor, timeout=1)
            for _, event_id, data in _parse(result.frames):
                seen.append(event_id or 0)
                texts.append(str(data["human"]))
            cursor = result.cursor
    for worker in workers:
        worker.join()
    assert seen == list(range(1, per_thread * threads + 1))
    for t in range(threads):
        mine = [int(x.split(":")[1]) for x in texts if x.startswith(f"{t}:")]
        assert mine == list(range(per_thread))


async def test_concurrent_readers_share_one_wakeup(monkeypatch: pytest.MonkeyPatch) -> None:
    encoded = _count_encodes(monkeypatch)
    log = MemoryEventLog(JOB)
    readers = [asyncio.create_task(log.read(0, timeout=10)) for _ in range(50)]
    await asyncio.sleep(0)
    log.append(_event(0))
    results = await asyncio.wait_for(asyncio.gather(*readers), 5)
    assert all(r.cursor == 1 and [i for _, i, _ in _parse(r.frames)] == [1] for r in results)
    assert encoded == [1]  # encoded once, shared by all


async def test_read_timeout_returns_empty() -> None:
    log = MemoryEventLog(JOB)
    result = await log.read(0, timeout=0.05)
    assert (result.frames, result.cursor, result.done) == ([], 0, False)


async def test_reads_across_chunks_drops_and_rebases_stay_exact() -> None:
    # ~300-byte frames: 64 KiB chunks hold ~200; 3,000 retained of 20,000 forces drops,
    # freed chunks and rebased offsets, while readers start from many different cursors.
    log = MemoryEventLog(JOB, LogLimits(max_events=3_000))
    for i in range(20_000):
        log.append(_event(i, text=f"event {i} " + "x" * 150))
        if i % 1_000 == 999:
            log.encode_pending()  # what the log's loop does in the background
    assert log.dropped == 17_000
    for start in (0, 16_999, 17_000, 17_001, 18_234, 19_999):
        cursor = start
        seen: list[int] = []
        gaps: list[dict[str, object]] = []
        while True:
            result = await log.read(cursor, timeout=0)
            if not result.frames:
                break
            for name, event_id, data in _parse(result.frames):
                if name == "gap":
                    gaps.append(data)
                else:
                    seen.append(event_id or 0)
                    assert data["human"] == f"event {(event_id or 0) - 1} " + "x" * 150
            cursor = result.cursor
        assert seen == list(range(max(start + 1, 17_001), 20_001))
        expected_gap = {"missed": 17_000 - start, "next_id": 17_001}
        assert gaps == ([expected_gap] if start < 17_000 else [])


async def test_threads_appending_past_the_cap_while_reading_account_for_every_event() -> None:
    # Producers in threads, a reader on the loop, the cap forcing drops of encoded and of
    # queued events alike: what is read plus what the gaps report is exactly what was sent.
    log = MemoryEventLog(JOB, LogLimits(max_events=500))
    per_thread, threads = 5_000, 3
    total = per_thread * threads
    workers = _start_producers(log, threads, per_thread)
    read_ids: list[int] = []
    missed = 0
    cursor = 0
    async with asyncio.timeout(30):
        while cursor < total:
            result = await log.read(cursor, timeout=1)
            for name, event_id, data in _parse(result.frames):
                if name == "gap":
                    missed += int(data["missed"])  # type: ignore[call-overload]
                    assert data["next_id"] == cursor + int(data["missed"]) + 1  # type: ignore[call-overload]
                else:
                    read_ids.append(event_id or 0)
            cursor = result.cursor
            await asyncio.sleep(0)  # let the producers run between reads
    for worker in workers:
        worker.join()
    assert read_ids == sorted(set(read_ids))  # strictly increasing: no repeat, no reorder
    assert len(read_ids) + missed == total
    assert log.dropped == total - 500 >= missed  # all but the last 500 left the log
