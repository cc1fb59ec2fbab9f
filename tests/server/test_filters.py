"""Filtered streams and downloads: each reader skips what it does not want from its own cursor,
ids unchanged, so a filtered stream resumes exactly after a dropped connection."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from narration import Level, configure, n, narration_context
from narration.client import JobClient, Terminal
from narration.events import NarrationEvent
from narration.testing import NarrationTestHarness
from redis_server import TcpProxy
from stream_helpers import parse_frames

pytestmark = pytest.mark.e2e

# (actor, action, level, text): event i + 1 of the job
SCRIPT = [
    ("db", "connect", Level.INFO, "Connecting to the database"),
    ("db", "slow", Level.WARN, "Disk is slow"),
    ("queue", "push", Level.INFO, "Pushed 3 items"),
    ("queue", "full", Level.ERROR, "Queue full: disk quota"),
    ("web", "serve", Level.WARN, "Serving from DISK cache"),
    ("db", "retry", Level.WARN, "Retrying the write"),
    ("db", "slow", Level.WARN, "disk is slow again"),
    ("queue", "drain", Level.DEBUG, "Drained"),
]
WANTED = {"level": "warn", "actor": "db,queue", "q": "disk"}
WANTED_IDS = [2, 4, 7]


def narrate(harness: NarrationTestHarness, job_id: str, lines: list[tuple[Any, ...]]) -> None:
    context = harness.job_context(job_id)
    for actor, action, level, text in lines:
        with narration_context(context.with_actor(actor)):
            n(action, text, level=level)


@pytest.fixture
async def harness(store_url: str) -> AsyncIterator[NarrationTestHarness]:
    async with NarrationTestHarness(store=store_url) as harness:
        yield harness


async def read_until(
    response: httpx.Response, count: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """Frames of a streaming response until `count` narration events came (then stop)."""
    frames: list[dict[str, Any]] = []
    block: list[str] = []
    async for line in response.aiter_lines():
        if line:
            block.append(line)
            continue
        frames += parse_frames("\n".join(block) + "\n\n")
        block = []
        if sum(f["event"] == "narration" for f in frames) >= count:
            break
    return frames, block


async def test_a_filtered_stream_resumes_exactly_after_a_dropped_connection(
    harness: NarrationTestHarness, restore_level: None
) -> None:
    configure(level="debug")
    job_id = await harness.submit_job("work", {})
    path = f"/v1/jobs/{job_id}/stream"
    narrate(harness, job_id, SCRIPT[:5])
    async with asyncio.timeout(10), harness.http.stream("GET", path, params=WANTED) as response:
        assert response.status_code == 200
        first, _ = await read_until(response, 2)
    # The connection is gone (closed mid-stream); more happens meanwhile.
    narrate(harness, job_id, SCRIPT[5:])
    await harness.complete_job(job_id)
    seen = [f["data"]["id"] for f in first if f["event"] == "narration"]
    assert seen == [2, 4]
    async with asyncio.timeout(10):
        resumed = await harness.http.get(
            path, params=WANTED, headers={"Last-Event-ID": str(seen[-1])}
        )
    rest = parse_frames(resumed.text)
    assert [(f["event"], f.get("id")) for f in rest] == [("narration", "7"), ("done", "9")]
    assert [f["data"]["human"] for f in rest[:1]] == ["disk is slow again"]

    everything = parse_frames((await harness.http.get(path)).text)
    assert [f["data"]["id"] for f in everything[:-1]] == list(range(1, 9))
    only_actions = parse_frames((await harness.http.get(path, params={"action": "slow"})).text)
    assert [f["data"]["id"] for f in only_actions[:-1]] == [2, 7]
    repeated = await harness.http.get(path, params=[("actor", "web"), ("actor", "queue")])
    assert [f["data"]["id"] for f in parse_frames(repeated.text)[:-1]] == [3, 4, 5, 8]

    download = await harness.http.get(f"/v1/jobs/{job_id}/events", params=WANTED)
    lines = [json.loads(line) for line in download.text.splitlines()]
    assert [line["id"] for line in lines] == [*WANTED_IDS, 9]
    assert lines[-1] == {
        "id": 9,
        "event": "done",
        "job_id": job_id,
        "state": "completed",
        "error": None,
    }
    after = await harness.http.get(f"/v1/jobs/{job_id}/events", params={**WANTED, "after": 4})
    assert [json.loads(line)["id"] for line in after.text.splitlines()] == [7, 9]


async def test_the_client_resumes_a_filtered_stream_through_a_cut_network(
    harness: NarrationTestHarness, restore_level: None
) -> None:
    configure(level="debug")
    port = int(harness.base_url.rsplit(":", 1)[1])
    proxy = await TcpProxy.start(port)
    job_id = await harness.submit_job("work", {})
    items: list[NarrationEvent | Terminal] = []
    two_arrived = asyncio.Event()

    async def follow() -> None:
        async with JobClient(f"http://127.0.0.1:{proxy.port}", backoff_initial=0.01) as client:
            async for item in client.stream(job_id, level="warn", actor="db,queue", q="disk"):
                if isinstance(item, NarrationEvent | Terminal):
                    items.append(item)
                if len(items) == 2:
                    two_arrived.set()

    try:
        follower = asyncio.create_task(follow())
        narrate(harness, job_id, SCRIPT[:5])
        async with asyncio.timeout(10):
            await two_arrived.wait()
        await proxy.cut()  # the connection drops; the client reconnects once it may
        proxy.restore()
        narrate(harness, job_id, SCRIPT[5:])
        await harness.complete_job(job_id)
        async with asyncio.timeout(10):
            await follower
    finally:
        await proxy.close()
    assert [item.id for item in items] == [*WANTED_IDS, 9]
    assert isinstance(items[-1], Terminal) and items[-1].state == "completed"


async def test_bad_filters_get_a_400(harness: NarrationTestHarness) -> None:
    job_id = await harness.submit_job("work", {})
    for path in (f"/v1/jobs/{job_id}/stream", f"/v1/jobs/{job_id}/events"):
        for params in ({"level": "loud"}, {"q": "x" * 300}):
            response = await harness.http.get(path, params=params)
            assert response.status_code == 400
            assert response.json()["error"]["code"] == "invalid_filter"
    await harness.complete_job(job_id)
