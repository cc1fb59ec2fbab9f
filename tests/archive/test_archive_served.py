"""The archive: a job streamed live, ended, forgotten by the live store, then read back over
HTTP (status, the whole stream, the NDJSON download) byte for byte, by the same server and by
a new one on the same archive; an archive that cannot be written keeps the live copy."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from narration import Level, n
from narration.jobs import Job, JobRegistry
from narration.server import create_app
from narration.store import MemoryStore, Store
from narration.testing import NarrationTestHarness

pytestmark = pytest.mark.e2e

jobs = JobRegistry()


class Report(BaseModel):
    """Narrate `pages` pages, the second one as a warning."""

    pages: int = 4


@jobs.operation("report")
async def report(op: Report, job: Job) -> None:
    n("start", "Building {} pages", op.pages)
    for page in range(1, op.pages + 1):
        n("render", "Rendering page {}", page, page=page, level=Level.WARN if page == 2 else None)
    n("built", "Report ready")


class Hold(BaseModel):
    """Declared without a handler: the harness holds such jobs open."""


jobs.add("hold", None, model=Hold)


def data_lines(body: str) -> list[str]:
    """The raw `data:` payloads of an SSE body, in order."""
    return [line[len("data: ") :] for line in body.split("\n") if line.startswith("data: ")]


def sse_ids(body: str) -> list[int]:
    return [int(line[len("id: ") :]) for line in body.split("\n") if line.startswith("id: ")]


async def get_text(http: httpx.AsyncClient, path: str, **kwargs: Any) -> httpx.Response:
    async with asyncio.timeout(10):
        return await http.get(path, **kwargs)


async def raw_gzip(http: httpx.AsyncClient, path: str) -> tuple[httpx.Headers, bytes]:
    """A response's body as sent (not decompressed), asking for gzip."""
    async with (
        asyncio.timeout(10),
        http.stream("GET", path, headers={"Accept-Encoding": "gzip"}) as response,
    ):
        assert response.status_code == 200
        return response.headers, b"".join([chunk async for chunk in response.aiter_raw()])


class WatchedMemoryStore(MemoryStore):
    """The memory store, saying when it forgets a job (its retention ran out)."""

    def __init__(self) -> None:
        super().__init__()
        self.gone: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def _forget(self, job_id: str) -> None:
        super()._forget(job_id)
        self.gone[job_id].set()


def live_store(store_url: str) -> Store | str:
    """A store for `store_url` whose expiries a test can wait on."""
    return WatchedMemoryStore() if store_url.startswith("memory") else store_url


async def forgotten(store: Store, job_id: str, timeout: float = 10.0) -> None:
    """Wait until the live store has forgotten the job (its retention ran out)."""
    async with asyncio.timeout(timeout):
        if isinstance(store, WatchedMemoryStore):
            await store.gone[job_id].wait()
            return
        # Redis expires keys on its own clock and tells no one: look until it has.
        while await store.get(job_id) is not None:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    assert await store.log(job_id) is None


async def test_an_ended_job_is_read_back_from_the_archive_after_retention(
    store_url: str, tmp_path: Path
) -> None:
    archive_dir = tmp_path / "archive"
    async with NarrationTestHarness(
        jobs, store=live_store(store_url), archive=str(archive_dir), retention_s=0.2
    ) as harness:
        job_id = await harness.submit_job("report", {"pages": 4})
        live = await get_text(harness.http, f"/v1/jobs/{job_id}/stream")
        live_summary = (await harness.http.get(f"/v1/jobs/{job_id}")).json()
        assert live.status_code == 200 and sse_ids(live.text) == [1, 2, 3, 4, 5, 6, 7]
        events = data_lines(live.text)[:-1]
        terminal = data_lines(live.text)[-1]
        assert "event: done" in live.text

        archiver = harness.state.archiver
        assert archiver is not None
        await archiver.wait_idle()
        await forgotten(harness.state.store, job_id)

        status = await harness.http.get(f"/v1/jobs/{job_id}")
        assert status.status_code == 200
        assert status.json() == {**live_summary, "archived": True}

        replay = await get_text(harness.http, f"/v1/jobs/{job_id}/stream")
        assert replay.status_code == 200
        assert data_lines(replay.text) == [*events, terminal]  # byte for byte
        assert sse_ids(replay.text) == [1, 2, 3, 4, 5, 6, 7]
        assert "event: done" in replay.text

        resumed = await get_text(harness.http, f"/v1/jobs/{job_id}/stream", params={"after": 4})
        assert data_lines(resumed.text) == [*events[4:], terminal]
        past = await get_text(
            harness.http, f"/v1/jobs/{job_id}/stream", headers={"Last-Event-ID": "7"}
        )
        assert past.status_code == 204

        download = await get_text(
            harness.http, f"/v1/jobs/{job_id}/events", headers={"Accept-Encoding": "identity"}
        )
        assert download.status_code == 200
        assert download.headers["content-type"] == "application/x-ndjson"
        assert "content-encoding" not in download.headers
        lines = download.text.splitlines()
        assert lines[:-1] == events  # byte for byte, as streamed
        assert json.loads(lines[-1]) == {"id": 7, "event": "done", **json.loads(terminal)}

        headers, zipped = await raw_gzip(harness.http, f"/v1/jobs/{job_id}/events")
        assert headers["content-encoding"] == "gzip"
        assert gzip.decompress(zipped) == download.content
        stored = archive_dir / "jobs" / job_id[4:6] / f"{job_id}.jsonl.gz"
        assert gzip.decompress(stored.read_bytes()) == download.content

        warnings = await get_text(harness.http, f"/v1/jobs/{job_id}/stream?level=warn")
        assert sse_ids(warnings.text) == [3, 7]
        only_renders = await get_text(
            harness.http, f"/v1/jobs/{job_id}/events", params={"action": "render", "q": "PAGE 4"}
        )
        assert [json.loads(line)["id"] for line in only_renders.text.splitlines()] == [5, 7]

    # A new server on the same archive (and a store that never saw the job) serves it too.
    async with NarrationTestHarness(jobs, archive=str(archive_dir)) as restarted:
        status = await restarted.http.get(f"/v1/jobs/{job_id}")
        assert status.json() == {**live_summary, "archived": True}
        replay = await get_text(restarted.http, f"/v1/jobs/{job_id}/stream")
        assert data_lines(replay.text) == [*events, terminal]
        download = await get_text(restarted.http, f"/v1/jobs/{job_id}/events")
        assert download.text.splitlines()[:-1] == events
        listing = (await restarted.http.get("/v1/jobs")).json()
        assert [(job["job_id"], job["archived"]) for job in listing] == [(job_id, True)]


async def test_an_archive_that_cannot_be_written_keeps_the_live_copy_and_says_so(
    tmp_path: Path,
) -> None:
    blocked = tmp_path / "blocked"
    if os.geteuid() == 0:  # root writes through permission bits: block the path with a file
        blocked.write_text("not a directory")
        archive_dir = blocked / "archive"
    else:
        blocked.mkdir()
        blocked.chmod(0o555)  # a read-only directory
        archive_dir = blocked / "archive"
    async with NarrationTestHarness(
        jobs, store=WatchedMemoryStore(), archive=str(archive_dir), retention_s=0.1
    ) as harness:
        archiver = harness.state.archiver
        assert archiver is not None
        archiver.first_retry_s = archiver.max_retry_s = 0.05
        job_id = await harness.submit_job("report", {"pages": 1})
        stream = harness.get_sse_stream(job_id)
        assert len(await stream.collect_until_done()) == 3
        await archiver.wait_until(lambda a: a.failed_writes >= 3)  # tried, and tried again
        health = (await harness.http.get("/health")).json()
        assert health["status"] == "degraded"
        assert health["why"].startswith("archive: 1 finished job(s) could not be archived yet")
        assert health["archive"]["pending"] == 1
        assert health["archive"]["written"] == 0
        status = await harness.http.get(f"/v1/jobs/{job_id}")  # long past its retention
        assert status.status_code == 200 and "archived" not in status.json()
        replay = await get_text(harness.http, f"/v1/jobs/{job_id}/stream")
        assert sse_ids(replay.text) == [1, 2, 3, 4]

        if blocked.is_file():  # the path can be written again: the next try succeeds
            blocked.unlink()
        else:
            blocked.chmod(0o755)
        await archiver.wait_idle()
        await forgotten(harness.state.store, job_id)
        health = (await harness.http.get("/health")).json()
        assert health["status"] == "ok" and "why" not in health
        assert health["archive"]["written"] == 1
        status = await harness.http.get(f"/v1/jobs/{job_id}")
        assert status.json()["archived"] is True


@pytest.mark.parametrize("scheme", ["memory", "file"])
async def test_an_fsspec_url_archive_serves_jobs_after_retention(
    scheme: str, tmp_path: Path
) -> None:
    url = f"memory://narration-{uuid.uuid4().hex}" if scheme == "memory" else f"file://{tmp_path}"
    async with NarrationTestHarness(
        jobs, store=WatchedMemoryStore(), archive=url, retention_s=0.1
    ) as harness:
        job_id = await harness.submit_job("report", {"pages": 2})
        live = await get_text(harness.http, f"/v1/jobs/{job_id}/stream")
        archiver = harness.state.archiver
        assert archiver is not None
        await archiver.wait_idle()
        await forgotten(harness.state.store, job_id)
        replay = await get_text(harness.http, f"/v1/jobs/{job_id}/stream")
        assert data_lines(replay.text) == data_lines(live.text)
        assert (await harness.http.get(f"/v1/jobs/{job_id}")).json()["archived"] is True
    async with NarrationTestHarness(jobs, archive=url) as restarted:
        replay = await get_text(restarted.http, f"/v1/jobs/{job_id}/stream")
        assert data_lines(replay.text) == data_lines(live.text)


async def test_listings_page_through_live_and_archived_jobs_with_filters(tmp_path: Path) -> None:
    async with NarrationTestHarness(
        jobs, store=WatchedMemoryStore(), archive=str(tmp_path), retention_s=0.1
    ) as harness:
        ended = []
        for i in range(5):
            job_id = await harness.submit_job(
                "report", {"pages": 1}, correlation_id=f"batch-{i % 2}"
            )
            await harness.get_sse_stream(job_id).collect_until_done()
            ended.append(job_id)
        archiver = harness.state.archiver
        assert archiver is not None
        await archiver.wait_idle()
        for job_id in ended:
            await forgotten(harness.state.store, job_id)
        held = [await harness.submit_job("hold", {}) for _ in range(2)]
        newest_first = [*reversed(held), *reversed(ended)]

        seen: list[tuple[str, bool]] = []
        cursor: str | None = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            response = await harness.http.get("/v1/jobs", params=params)
            assert response.status_code == 200
            seen += [(job["job_id"], job.get("archived", False)) for job in response.json()]
            pages += 1
            cursor = response.headers.get("x-next-cursor")
            if cursor is None:
                assert "link" not in response.headers
                break
            assert response.headers["link"] == (f'</v1/jobs?limit=3&cursor={cursor}>; rel="next"')
        assert pages == 3
        assert seen == [(job_id, job_id in ended) for job_id in newest_first]

        async def ids(**params: Any) -> list[str]:
            response = await harness.http.get("/v1/jobs", params=params)
            assert response.status_code == 200, response.text
            return [job["job_id"] for job in response.json()]

        assert await ids(operation="hold") == list(reversed(held))
        assert await ids(operation="report", state="completed") == list(reversed(ended))
        assert await ids(state="running") == list(reversed(held))
        assert await ids(correlation_id="batch-1") == [ended[3], ended[1]]
        created = {
            job["job_id"]: job["created_at"] for job in (await harness.http.get("/v1/jobs")).json()
        }
        middle = created[ended[2]]
        assert await ids(since=middle, operation="report") == [ended[4], ended[3], ended[2]]
        assert await ids(until=middle) == [ended[1], ended[0]]
        iso = "1970-01-01T00:00:00Z"
        assert len(await ids(since=iso)) == 7

        for params, code in [
            ({"cursor": "nope"}, "invalid_cursor"),
            ({"since": "yesterday"}, "invalid_since"),
            ({"state": "paused"}, "invalid_state"),
            ({"limit": 0}, "invalid_limit"),
        ]:
            response = await harness.http.get("/v1/jobs", params=params)
            assert response.status_code == 422
            assert response.json()["error"]["code"] == code


def test_one_app_archives_in_each_run_on_a_new_event_loop(tmp_path: Path) -> None:
    app = create_app(jobs, archive=str(tmp_path), retention_s=0, hold_unhandled=True)

    async def one_run() -> str:
        async with NarrationTestHarness(app=app) as harness:
            events, terminal = await harness.client.run("report", {"pages": 1})
            assert len(events) == 3 and terminal.state == "completed"
            archiver = harness.state.archiver
            assert archiver is not None
            await archiver.wait_idle()
            await archiver.wait_until(lambda a: a.archive.total is not None)  # pruned once
            status = await harness.http.get(f"/v1/jobs/{terminal.job_id}")
            assert status.json()["archived"] is True
            pruner = archiver._pruner
            assert pruner is not None and not pruner.done()  # alive, on this run's loop
            return terminal.job_id

    first = asyncio.run(one_run())
    second = asyncio.run(one_run())
    assert (tmp_path / "jobs" / first[4:6] / f"{first}.json").is_file()
    assert (tmp_path / "jobs" / second[4:6] / f"{second}.json").is_file()
