"""Retry policies: each attempt's events carry `attempt`, a `retry` event says why and when the
next one starts, exactly one terminal comes after the last attempt, and the job's status lists
its attempts (both stores)."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
from pydantic import BaseModel

from narration import n
from narration.jobs import Job, JobRegistry, RegistryError, Retry
from narration.testing import NarrationTestHarness
from stream_helpers import read_stream

pytestmark = pytest.mark.e2e

TERMINALS = {"done", "error", "cancelled"}

jobs = JobRegistry()
_calls: dict[str, itertools.count[int]] = {}


class Flaky(BaseModel):
    """Fail the first `failures` attempts with `error`, then succeed."""

    key: str
    failures: int = 1
    error: str = "OSError"


def _attempt(op: Flaky) -> int:
    return next(_calls.setdefault(op.key, itertools.count(1)))


def _maybe_fail(op: Flaky, attempt: int) -> None:
    n("work", "Attempt {} working", attempt)
    if attempt <= op.failures:
        kind = {"OSError": OSError, "ValueError": ValueError}[op.error]
        raise kind(f"disk busy ({attempt})")
    n("worked", "Done on attempt {}", attempt)


@jobs.operation("flaky", retry=Retry(attempts=3, backoff=0.01, on=(OSError,)))
async def flaky(op: Flaky, job: Job) -> None:
    await asyncio.sleep(0)
    _maybe_fail(op, _attempt(op))


@jobs.operation("flaky_sync", model=Flaky, retry=Retry(attempts=2, backoff=0.01, on=OSError))
def flaky_sync(op: Flaky, job: Job) -> None:
    _maybe_fail(op, _attempt(op))


@jobs.operation("slow_retry", model=Flaky, retry=Retry(attempts=5, backoff=30.0))
async def slow_retry(op: Flaky, job: Job) -> None:
    _maybe_fail(op, _attempt(op))


def events_and_terminals(frames: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    events = [f["data"] for f in frames if f["event"] == "narration"]
    return events, [f["event"] for f in frames if f["event"] in TERMINALS]


async def test_a_retried_job_shows_both_attempts_and_one_terminal(store_url: str) -> None:
    async with NarrationTestHarness(jobs, store=store_url) as harness:
        job_id = await harness.submit_job(
            "flaky", {"key": f"a-{store_url.split(':')[0]}", "failures": 1}
        )
        status, frames = await read_stream(harness.http, job_id)
        assert status == 200
        events, terminals = events_and_terminals(frames)
        assert terminals == ["done"] and frames[-1]["event"] == "done"
        assert [(e["action"], e["fields"]["attempt"]) for e in events] == [
            ("work", 1),
            ("retry", 1),
            ("work", 2),
            ("worked", 2),
        ]
        retry = events[1]
        assert retry["level"] == "warn"
        assert retry["human"] == (
            "Attempt 1 of 3 failed (OSError: disk busy (1)); attempt 2 starts in 0.01 s"
        )
        assert retry["fields"]["error"] == "OSError: disk busy (1)"
        assert retry["fields"]["next_attempt"] == 2 and retry["fields"]["delay_s"] == 0.01
        assert abs(retry["fields"]["retry_at"] - retry["ts"] - 0.01) < 0.01
        body = (await harness.http.get(f"/v1/jobs/{job_id}")).json()
        assert body["state"] == "completed" and body["error"] is None
        first, second = body["attempts"]
        assert (first["attempt"], first["error"]) == (1, "OSError: disk busy (1)")
        assert first["retry_at"] == pytest.approx(first["finished_at"] + 0.01)
        assert (second["attempt"], second["error"]) == (2, None)
        assert first["started_at"] <= first["finished_at"] <= second["started_at"]
        assert second["finished_at"] <= body["finished_at"]
        listed = (await harness.http.get("/v1/jobs")).json()
        assert listed[0]["attempts"] == body["attempts"]


async def test_spent_attempts_fail_the_job_once_with_the_last_error() -> None:
    async with NarrationTestHarness(jobs) as harness:
        job_id = await harness.submit_job("flaky", {"key": "spent", "failures": 9})
        _, frames = await read_stream(harness.http, job_id)
        events, terminals = events_and_terminals(frames)
        assert terminals == ["error"]
        assert [e["action"] for e in events] == [
            "work", "retry", "work", "retry", "work", "job_failed",
        ]  # fmt: skip
        assert events[-1]["human"] == "Job failed after 3 attempts: OSError: disk busy (3)"
        assert frames[-1]["data"]["error"] == "OSError: disk busy (3)"
        body = (await harness.http.get(f"/v1/jobs/{job_id}")).json()
        assert [a["error"] for a in body["attempts"]] == [
            "OSError: disk busy (1)",
            "OSError: disk busy (2)",
            "OSError: disk busy (3)",
        ]
        assert "retry_at" not in body["attempts"][-1]


async def test_an_error_the_policy_does_not_name_fails_at_once() -> None:
    async with NarrationTestHarness(jobs) as harness:
        job_id = await harness.submit_job(
            "flaky", {"key": "other", "failures": 1, "error": "ValueError"}
        )
        _, frames = await read_stream(harness.http, job_id)
        events, terminals = events_and_terminals(frames)
        assert terminals == ["error"]
        assert [e["action"] for e in events] == ["work", "job_failed"]
        assert events[-1]["human"] == "Job failed: ValueError: disk busy (1)"
        body = (await harness.http.get(f"/v1/jobs/{job_id}")).json()
        assert len(body["attempts"]) == 1


async def test_a_plain_def_handler_is_retried_in_its_worker_thread() -> None:
    async with NarrationTestHarness(jobs) as harness:
        job_id = await harness.submit_job("flaky_sync", {"key": "sync", "failures": 1})
        _, frames = await read_stream(harness.http, job_id)
        events, terminals = events_and_terminals(frames)
        assert terminals == ["done"]
        assert [(e["action"], e["fields"]["attempt"]) for e in events] == [
            ("work", 1),
            ("retry", 1),
            ("work", 2),
            ("worked", 2),
        ]


async def test_cancelling_during_the_backoff_ends_the_job_cancelled_once() -> None:
    async with NarrationTestHarness(jobs) as harness:
        job_id = await harness.submit_job("slow_retry", {"key": "cancel", "failures": 9})
        stream = harness.get_sse_stream(job_id)
        await stream.assert_next("work")
        retry = await stream.assert_next("retry", "attempt 2 starts in 30 s")
        assert retry.fields is not None and retry.fields["attempt"] == 1
        started = time.monotonic()
        cancelled = await harness.http.delete(f"/v1/jobs/{job_id}")
        assert cancelled.json() == {"job_id": job_id, "state": "cancelled"}
        assert time.monotonic() - started < 5  # the 30 s wait was cut short
        assert await stream.collect_until_done() == []
        assert stream.terminal is not None and stream.terminal.state == "cancelled"
        _, frames = await read_stream(harness.http, job_id)
        assert events_and_terminals(frames)[1] == ["cancelled"]
        body = (await harness.http.get(f"/v1/jobs/{job_id}")).json()
        assert [a["attempt"] for a in body["attempts"]] == [1]


async def test_the_job_timeout_covers_every_attempt() -> None:
    async with NarrationTestHarness(jobs, job_timeout_s=0.3) as harness:
        job_id = await harness.submit_job("slow_retry", {"key": "timeout", "failures": 9})
        _, frames = await read_stream(harness.http, job_id)
        events, terminals = events_and_terminals(frames)
        assert terminals == ["error"]
        assert frames[-1]["data"]["error"] == "timed out after 0.3 s"
        assert [e["action"] for e in events] == ["work", "retry", "job_timeout"]


async def test_operations_show_their_policy() -> None:
    async with NarrationTestHarness(jobs) as harness:
        listing = (await harness.http.get("/v1/operations")).json()
        assert listing["flaky"]["retry"] == {
            "attempts": 3,
            "backoff": 0.01,
            "factor": 2.0,
            "max_backoff": 300.0,
            "on": ["OSError"],
        }
        assert "retry" not in listing["status"]


def test_policies_are_checked_when_declared() -> None:
    assert Retry(attempts=4, backoff=1.0).delay(1) == 1.0
    assert Retry(attempts=4, backoff=1.0).delay(3) == 4.0
    assert Retry(backoff=100.0, max_backoff=150.0).delay(3) == 150.0
    assert Retry(backoff=lambda k: 0.5 * k).delay(3) == 1.5
    assert Retry(on=KeyError).retries(KeyError("x")) and not Retry(on=KeyError).retries(OSError())
    with pytest.raises(ValueError, match="attempts must be an int >= 1"):
        Retry(attempts=0)
    with pytest.raises(ValueError, match="backoff must be >= 0"):
        Retry(backoff=-1.0)
    with pytest.raises(TypeError, match="Exception subclasses"):
        Retry(on=asyncio.CancelledError)  # type: ignore[arg-type]
    registry = JobRegistry()
    with pytest.raises(RegistryError, match="must be a Retry"):
        registry.add("x", flaky, model=Flaky, retry=3)  # type: ignore[arg-type]
