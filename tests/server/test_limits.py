"""Limits nobody can exhaust, each against the probe that broke it: memory by big fields and by
many finished jobs (RSS of a real server process), the submission rate, request heads too big
or too slow (real sockets), and a slow `repr` that must not stall other requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
from tests.apps.security_ops import jobs as security_jobs

from auth_helpers import ALICE, BOB, SPECS
from narration._process import ServiceProcess
from narration.testing import NarrationTestHarness
from stream_helpers import parse_frames

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024


def _status_kib(pid: int, field: str) -> int:
    """A `/proc/<pid>/status` memory figure (VmRSS, VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


def rss(pid: int) -> int:
    return _status_kib(pid, "VmRSS")


def peak_rss(pid: int) -> int:
    return _status_kib(pid, "VmHWM")


@pytest.fixture
def server_process(request: pytest.FixtureRequest) -> Iterator[ServiceProcess]:
    """`narration serve --jobs tests.apps.security_ops:jobs` with the env of the test's
    `server_env` marker (submission rate limit off)."""
    marker = request.node.get_closest_marker("server_env")
    extra = dict(marker.args[0]) if marker else {}
    env = {"PYTHONPATH": str(REPO), "NARRATION_SUBMIT_RATE": "off", **extra}
    with ServiceProcess(
        "limits", ["serve", "--jobs", "tests.apps.security_ops:jobs", "--quiet"], env=env
    ).running() as service:
        yield service


@pytest.fixture
async def http(server_process: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server_process.url, timeout=30.0) as client:
        yield client


async def run_job(http: httpx.AsyncClient, body: dict[str, object]) -> dict[str, object]:
    """Submit `body` and wait (bounded) until its job has finished; its summary."""
    job_id = (await http.post("/v1/jobs", json=body)).json()["job_id"]
    async with asyncio.timeout(60):
        while True:
            summary: dict[str, object] = (await http.get(f"/v1/jobs/{job_id}")).json()
            if summary["state"] != "running":
                return summary
            await asyncio.sleep(0.05)


async def test_big_field_values_count_toward_max_bytes_and_are_cut(
    server_process: ServiceProcess, http: httpx.AsyncClient
) -> None:
    """Before: 255 events with a 1 MB field each grew RSS 58 -> 302 MiB, held for the whole
    retention (max_bytes counted an estimate without the field values)."""
    await run_job(http, {"operation": "blob", "count": 5, "size": 1000})  # warm-up
    before = rss(server_process.pid or 0)
    summary = await run_job(http, {"operation": "blob", "count": 255, "size": 1_000_000})
    grown = rss(server_process.pid or 0) - before
    assert summary["state"] == "completed" and summary["events"] == 255
    assert grown < 32 * MiB, f"RSS grew {grown / MiB:.0f} MiB"
    stream = await http.get(f"/v1/jobs/{summary['job_id']}/stream")
    frames = parse_frames(stream.text)
    assert [frame["event"] for frame in frames] == ["narration"] * 255 + ["done"]
    fields = frames[0]["data"]["fields"]
    assert fields["fields_truncated"] == ["data"]
    kept = fields["data"].split("…")[0]
    assert kept == "x" * len(kept)
    assert fields["data"] == f"{kept}… (+{1_000_000 - len(kept)} bytes)"
    assert len(msgspec.json.encode(fields["data"])) <= 16 * 1024
    assert max(len(frame["data"]["fields"]["data"]) for frame in frames[:-1]) < 16 * 1024


@pytest.mark.server_env({"NARRATION_MAX_FINISHED_JOBS": "200"})
async def test_finished_jobs_are_capped_oldest_first(
    server_process: ServiceProcess, http: httpx.AsyncClient
) -> None:
    """Before: 10,000 `status` jobs in 2.7 s added 35 MiB, all kept for the retention."""

    async def submit(count: int) -> list[str]:
        ids: list[str] = []
        for _first in range(0, count, 50):  # 50 at a time, bounded
            answers = await asyncio.gather(
                *(http.post("/v1/jobs", json={"operation": "status"}) for _ in range(50))
            )
            ids += [answer.json()["job_id"] for answer in answers]
        return ids

    await submit(300)  # warm-up: fills the cap, grows what grows once
    before = rss(server_process.pid or 0)
    ids = await submit(1000)
    async with asyncio.timeout(30):
        while (health := (await http.get("/health")).json())["jobs_running"]:  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.05)
    grown = rss(server_process.pid or 0) - before
    assert health["jobs_finished_retained"] == 200
    assert health["max_finished_jobs"] == 200
    assert health["jobs_evicted"] == 1100
    assert (await http.get(f"/v1/jobs/{ids[0]}")).status_code == 404  # the oldest went first
    assert (await http.get(f"/v1/jobs/{ids[-1]}")).status_code == 200
    listed = (await http.get("/v1/jobs", params={"limit": 1000})).json()
    retained = {job["job_id"] for job in listed}
    assert len(retained) == 200 and retained <= set(ids[-250:])  # the newest (batches of 50)
    assert grown < 4 * MiB, f"RSS grew {grown / MiB:.1f} MiB over 1,000 finished jobs"


async def test_submissions_are_rate_limited_per_principal() -> None:
    async with (
        NarrationTestHarness(api_keys=SPECS, submit_rate="3/minute") as harness,
        httpx.AsyncClient(base_url=harness.base_url, headers=ALICE.headers) as alice,
        httpx.AsyncClient(base_url=harness.base_url, headers=BOB.headers) as bob,
    ):
        accepted = [await alice.post("/v1/jobs", json={"operation": "held"}) for _ in range(3)]
        refused = await alice.post("/v1/jobs", json={"operation": "held"})
        other = await bob.post("/v1/jobs", json={"operation": "held"})
        running = len(harness.state.jobs.live)
    assert [answer.status_code for answer in accepted] == [201, 201, 201]
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-correlation-id"]
    assert other.status_code == 201  # bob has his own budget
    assert running == 4


async def _answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], dict[str, object]]:
    """Read one HTTP response (status, headers, JSON body) off a raw connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers["content-length"]))
    return status, headers, msgspec.json.decode(body)


async def test_a_64_mib_header_is_refused_early_without_growing_memory(
    server_process: ServiceProcess,
) -> None:
    """Before: a 64 MiB request header was read whole (peak RSS 186 MiB)."""
    pid = server_process.pid or 0
    baseline = peak_rss(pid)
    reader, writer = await asyncio.open_connection("127.0.0.1", server_process.port)
    answer = asyncio.create_task(_answer(reader))  # read while sending, as clients do
    writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
    chunk = b"a" * (64 * 1024)
    sent = 0
    try:
        async with asyncio.timeout(30):
            while sent < 64 * MiB and not answer.done():  # bounded: 64 MiB, or the answer
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
    except (ConnectionError, TimeoutError):
        pass
    status, headers, body = await asyncio.wait_for(answer, 10)
    writer.close()
    assert status == 431
    assert body["error"]["code"] == "headers_too_large"  # type: ignore[index]
    assert headers["x-correlation-id"] and headers["connection"] == "close"
    # (How much the client got to send before it read the answer depends on the machine's
    # load: the server discards what follows the limit while it lingers, never keeping it.)
    assert peak_rss(pid) - baseline < 16 * MiB


async def test_a_head_over_the_limit_in_one_piece_is_refused_too(
    server_process: ServiceProcess,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server_process.port)
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(100))  # ~100 KiB
    writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + b"\r\n")
    status, _answer_headers, body = await _answer(reader)
    writer.close()
    assert status == 431 and body["error"]["code"] == "headers_too_large"  # type: ignore[index]
    reader, writer = await asyncio.open_connection("127.0.0.1", server_process.port)
    small = headers[: 40 * 1024].rsplit(b"\r\n", 1)[0] + b"\r\n"  # ~40 KiB: within the limit
    writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + small + b"\r\n")
    status, _, body = await _answer(reader)
    writer.close()
    assert status == 200 and body["status"] == "ok"  # type: ignore[index]


async def test_slow_headers_are_cut_off_after_the_header_timeout() -> None:
    """Before: 200 slowloris connections were all kept open (no header-read timeout)."""
    async with NarrationTestHarness(header_timeout_s=1.0) as harness:
        port = int(harness.base_url.rsplit(":", 1)[1])

        async def slowloris() -> tuple[int, str, float]:
            started = time.monotonic()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")

            async def trickle() -> None:
                for i in range(40):  # bounded: 40 bytes over ~8 s at most
                    writer.write(b"X-Slow-%d: 1\r\n" % i)
                    await writer.drain()
                    await asyncio.sleep(0.2)

            dripping = asyncio.create_task(trickle())
            try:
                status, _, body = await asyncio.wait_for(_answer(reader), 10)
                closed = await asyncio.wait_for(reader.read(), 5) == b""
            finally:
                dripping.cancel()
                writer.close()
            assert closed
            return status, body["error"]["code"], time.monotonic() - started  # type: ignore[index]

        results = await asyncio.gather(*(slowloris() for _ in range(200)))
        health = await harness.http.get("/health")
    assert {(status, code) for status, code, _ in results} == {(408, "header_timeout")}
    assert max(elapsed for _, _, elapsed in results) < 6.0
    assert health.status_code == 200


async def test_a_slow_repr_stalls_neither_requests_nor_other_streams() -> None:
    """Before: a field whose __repr__ took 3 s stalled every stream and request for 3 s."""
    async with NarrationTestHarness(security_jobs) as harness:
        job_id = await harness.submit_job("slow_repr", {"seconds": 3.0})
        started = time.monotonic()
        stream = harness.get_sse_stream(job_id)
        stream.open()
        await harness.state.streams.wait_for_open(1)
        health = await harness.http.get("/health")
        health_took = time.monotonic() - started
        events = await stream.collect_until_done(timeout=10)
        stream_took = time.monotonic() - started
        other = await harness.submit_job("status")
        other_events = await harness.get_sse_stream(other).collect_until_done()
    assert health.status_code == 200 and health_took < 1.5, health_took
    assert stream_took < 2.5, stream_took  # the repr gets 0.1 s (off the loop), then a mark
    assert [(event.id, event.action) for event in events] == [(1, "slow"), (2, "after")]
    assert events[0].fields == {"value": "<slow repr: Sluggish>"}
    assert stream.terminal is not None and stream.terminal.state == "completed"
    assert [event.action for event in other_events] == ["status"]
