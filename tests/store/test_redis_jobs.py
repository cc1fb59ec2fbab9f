"""Jobs and their streams, the same tests against both stores (`store_url`: memory, then Redis).

Each test runs a real server (NarrationTestHarness) whose store is `memory://` or a private
redis-server with a key prefix of its own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest

from narration import n, narration_context
from narration.jobs import JobFinishedError
from narration.operations import Operation
from narration.testing import NarrationTestHarness
from stream_helpers import emit, read_stream

pytestmark = pytest.mark.e2e


@pytest.fixture
async def harness(store_url: str) -> AsyncIterator[NarrationTestHarness]:
    harness = await NarrationTestHarness.start(store=store_url)
    try:
        yield harness
    finally:
        await harness.stop()


async def test_events_arrive_in_order_with_ids(harness: NarrationTestHarness) -> None:
    job_id = await harness.submit_job(Operation.hive_list())
    stream = harness.get_sse_stream(job_id)
    emit(harness, job_id, 3)
    first = await stream.assert_next("step", "step 0")
    assert first.id == 1 and first.job_id == job_id
    emit(harness, job_id, 197, start=3)
    await harness.complete_job(job_id)
    rest = await stream.collect_until_done()
    events = [first, *rest]
    assert [event.id for event in events] == list(range(1, 201))
    assert [event.fields["i"] for event in events if event.fields] == list(range(200))
    assert stream.terminal is not None
    assert (stream.terminal.state, stream.terminal.id) == ("completed", 201)
    status = (await harness.http.get(f"/v1/jobs/{job_id}")).json()
    assert (status["state"], status["events"]) == ("completed", 200)


async def test_resume_with_last_event_id_or_after(harness: NarrationTestHarness) -> None:
    job_id = await harness.submit_job(Operation.hive_list())
    emit(harness, job_id, 20)
    await harness.complete_job(job_id)
    for headers, params in (({"Last-Event-ID": "12"}, {}), ({}, {"after": "12"})):
        status, frames = await read_stream(harness.http, job_id, headers, **params)
        assert status == 200
        assert [int(frame["id"]) for frame in frames] == list(range(13, 22))
        assert [frame["event"] for frame in frames] == ["narration"] * 8 + ["done"]
        assert frames[0]["data"]["human"] == "step 12"


async def test_resume_at_or_after_the_terminal_answers_204(harness: NarrationTestHarness) -> None:
    job_id = await harness.submit_job(Operation.hive_list())
    emit(harness, job_id, 5)
    await harness.complete_job(job_id)
    for cursor in ("6", "7", "1000"):
        status, frames = await read_stream(harness.http, job_id, {"Last-Event-ID": cursor})
        assert (status, frames) == (204, [])
    status, frames = await read_stream(harness.http, job_id, {"Last-Event-ID": "5"})
    assert status == 200 and [frame["event"] for frame in frames] == ["done"]


async def test_every_reader_gets_exactly_one_terminal(harness: NarrationTestHarness) -> None:
    job_id = await harness.submit_job(Operation.hive_list())
    readers = [asyncio.create_task(read_stream(harness.http, job_id)) for _ in range(4)]
    emit(harness, job_id, 50)
    await harness.fail_job(job_id, "boom")
    with pytest.raises(JobFinishedError, match="already failed"):
        await harness.complete_job(job_id)
    for status, frames in await asyncio.gather(*readers):
        assert status == 200
        terminals = [frame for frame in frames if frame["event"] != "narration"]
        assert [frame["event"] for frame in terminals] == ["error"]
        assert terminals[0]["data"] == {"job_id": job_id, "state": "failed", "error": "boom"}
        assert frames[-1] is terminals[0] and int(frames[-1]["id"]) == 51
        assert [int(frame["id"]) for frame in frames[:-1]] == list(range(1, 51))


async def test_cancel_ends_the_stream_cancelled(harness: NarrationTestHarness) -> None:
    job_id = await harness.submit_job(Operation.hive_list())
    reader = asyncio.create_task(read_stream(harness.http, job_id))
    emit(harness, job_id, 3)
    response = await harness.http.delete(f"/v1/jobs/{job_id}")
    assert response.status_code == 200
    assert response.json() == {"job_id": job_id, "state": "cancelled"}
    status, frames = await reader
    assert status == 200
    assert [frame["event"] for frame in frames] == ["narration"] * 3 + ["cancelled"]
    assert frames[-1]["data"]["state"] == "cancelled"
    again = await harness.http.delete(f"/v1/jobs/{job_id}")
    assert again.status_code == 409
    assert (await harness.http.get(f"/v1/jobs/{job_id}")).json()["state"] == "cancelled"


async def test_events_from_threads_keep_their_order(harness: NarrationTestHarness) -> None:
    job_id = await harness.submit_job(Operation.hive_list())
    ctx = harness.job_context(job_id)

    def worker(name: str) -> None:
        with narration_context(ctx):
            for i in range(500):
                n("tick", "{} {}", name, i, worker=name, i=i)

    threads = [threading.Thread(target=worker, args=(f"w{k}",)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        await asyncio.to_thread(thread.join, 10)
    await harness.complete_job(job_id)
    status, frames = await read_stream(harness.http, job_id)
    assert status == 200 and frames[-1]["event"] == "done"
    events = frames[:-1]
    assert [int(frame["id"]) for frame in events] == list(range(1, 2001))
    for k in range(4):
        mine = [
            f["data"]["fields"]["i"] for f in events if f["data"]["fields"]["worker"] == f"w{k}"
        ]
        assert mine == list(range(500))


async def test_retention_forgets_a_finished_job(store_url: str) -> None:
    async with NarrationTestHarness(store=store_url, retention_s=0.3) as harness:
        job_id = await harness.submit_job(Operation.hive_list())
        emit(harness, job_id, 2)
        await harness.complete_job(job_id)
        codes = []
        async with asyncio.timeout(5):
            while not codes or codes[-1] != 404:
                codes.append((await harness.http.get(f"/v1/jobs/{job_id}")).status_code)
                await asyncio.sleep(0.05)
        assert set(codes) <= {200, 404}
        assert (await harness.http.get(f"/v1/jobs/{job_id}/stream")).status_code == 404


async def test_retention_cap_drops_oldest_with_an_exact_gap(store_url: str) -> None:
    async with NarrationTestHarness(store=store_url, max_events=300) as harness:
        job_id = await harness.submit_job(Operation.hive_list())
        for start in range(0, 3000, 500):  # several writes, so Redis trims as it goes
            emit(harness, job_id, 500, start=start)
            await _flushed(harness, job_id)
        await harness.complete_job(job_id)
        status, frames = await read_stream(harness.http, job_id)
    assert status == 200
    gap, events, terminal = frames[0], frames[1:-1], frames[-1]
    assert gap["event"] == "gap" and "id" not in gap
    missed, next_id = gap["data"]["missed"], gap["data"]["next_id"]
    assert missed + len(events) == 3000  # nothing dropped silently
    assert [int(frame["id"]) for frame in events] == list(range(next_id, 3001))
    assert len(events) >= 300  # at least the cap is kept (Redis trims approximately, MAXLEN ~)
    assert (terminal["event"], int(terminal["id"])) == ("done", 3001)


async def _flushed(harness: NarrationTestHarness, job_id: str) -> None:
    log = await harness.state.store.log(job_id)
    assert log is not None
    await log.flush()


async def test_a_job_list_and_status_show_the_job(harness: NarrationTestHarness) -> None:
    job_id = await harness.submit_job(Operation.hive_get("gpu-box"))
    emit(harness, job_id, 7)
    await _flushed(harness, job_id)
    status = (await harness.http.get(f"/v1/jobs/{job_id}")).json()
    assert status["state"] == "running" and status["events"] == 7
    assert status["operation"] == {"operation": "hive_get", "alias": "gpu-box"}
    listed = (await harness.http.get("/v1/jobs", params={"state": "running"})).json()
    assert [job["job_id"] for job in listed] == [job_id]
    await harness.complete_job(job_id)
    listed = (await harness.http.get("/v1/jobs", params={"state": "completed"})).json()
    assert [job["job_id"] for job in listed] == [job_id]
    assert (await harness.http.get("/v1/jobs", params={"state": "running"})).json() == []
