"""Keeper -> queen -> hive -> worker with every service its own OS process.

The queen and the hive run as `python -m narration.cli queen|hive` on free ports (see
`MultiServiceHarness`); the hive runs the stand-in worker as a child process. Failure knobs
are environment variables of the hive, inherited by its workers.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from itertools import groupby
from typing import Any

import httpx
import pytest

from narration._process import ServiceProcess
from narration.client import JobClient, Terminal
from narration.events import Level, NarrationEvent
from narration.operations import Operation
from narration.services.worker import fake_tokens
from narration.testing import MultiServiceHarness

pytestmark = pytest.mark.e2e

PROMPT = "Why is the sky blue?"
TRACE_ID = re.compile(r"[0-9a-f]{32}")
LINE = re.compile(r"\d\d:\d\d:\d\d\.\d{3} (\S+) +(\S+) +(.*)")
CLI_ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"}


@pytest.fixture(scope="module")
def services() -> Iterator[MultiServiceHarness]:
    with MultiServiceHarness() as harness:
        yield harness


@pytest.fixture(scope="module")
def failing_services() -> Iterator[MultiServiceHarness]:
    with MultiServiceHarness(hive_env={"NARRATION_WORKER_FAIL": "1"}) as harness:
        yield harness


@pytest.fixture
def slow_services() -> Iterator[MultiServiceHarness]:
    with MultiServiceHarness(hive_env={"NARRATION_WORKER_TOKEN_DELAY": "0.2"}) as harness:
        yield harness


async def run_job(
    url: str, operation: Any, correlation_id: str | None = None
) -> tuple[list[NarrationEvent], Terminal]:
    async with asyncio.timeout(20), JobClient(url, correlation_id=correlation_id) as client:
        return await client.run(operation)


def actors_in_order(events: list[NarrationEvent]) -> list[str]:
    return [actor for actor, _ in groupby(event.actor for event in events)]


def actions_of(events: list[NarrationEvent], actor: str) -> list[str]:
    return [event.action for event in events if event.actor == actor]


def narration(args: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "narration.cli", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        env=CLI_ENV,
        check=False,
    )


# --------------------------------------------------------------------------- the happy path


async def test_infer_crosses_queen_hive_and_worker_with_one_correlation_and_trace(
    services: MultiServiceHarness,
) -> None:
    operation = Operation.infer("localhost", "tinyllama", PROMPT, max_tokens=5)
    events, terminal = await run_job(services.queen_url, operation, "e2e-infer-1")

    assert terminal.state == "completed"
    assert terminal.error is None
    queen_job = terminal.job_id
    assert [event.id for event in events] == list(range(1, len(events) + 1))
    assert {event.job_id for event in events} == {queen_job}
    assert {event.correlation_id for event in events} == {"e2e-infer-1"}
    traces = {event.trace_id for event in events}
    assert len(traces) == 1
    assert TRACE_ID.fullmatch(next(iter(traces)) or "")

    # causal order: the queen forwards, the hive starts the worker, the worker runs, the hive
    # and then the queen report the end
    assert actors_in_order(events) == ["queen", "hive", "worker", "hive", "queen"]
    assert actions_of(events, "queen") == ["forward", "forwarded", "hive_done"]
    assert actions_of(events, "hive") == ["infer", "infer_done"]
    assert actions_of(events, "worker") == [
        "startup",
        *["model_load"] * 4,
        "model_ready",
        "generate",
        *["token"] * 5,
        "generated",
    ]
    tokens = [event.human for event in events if event.action == "token"]
    assert tokens == fake_tokens(PROMPT, 5) == ["A", "simulated", "answer", "about", "Why"]

    # each hop has its own span of the one trace; relayed events say where they came from
    spans = {actor: {e.span_id for e in events if e.actor == actor} for actor in ("queen", "hive")}
    worker_spans = {event.span_id for event in events if event.actor == "worker"}
    assert len(spans["queen"]) == len(spans["hive"]) == len(worker_spans) == 1
    assert len(spans["queen"] | spans["hive"] | worker_spans) == 3
    hive_job = events[1].fields["hive_job"] if events[1].fields else None
    assert events[1].human == f"Hive localhost runs it as {hive_job}"
    hive_origins = [event.origin for event in events if event.actor == "hive"]
    worker_events = [event for event in events if event.actor == "worker"]
    assert hive_origins == [f"hive:{hive_job}#1", f"hive:{hive_job}#{len(worker_events) + 2}"]
    pid = worker_events[0].fields["pid"] if worker_events[0].fields else None
    assert [event.origin for event in worker_events] == [
        f"worker:pid-{pid}#{seq}" for seq in range(1, len(worker_events) + 1)
    ]
    assert all(event.origin is None for event in events if event.actor == "queen")

    # the hive's own job carries the same correlation id
    async with httpx.AsyncClient(base_url=services.hive_url) as http:
        record = (await http.get(f"/v1/jobs/{hive_job}")).json()
    assert record["correlation_id"] == "e2e-infer-1"
    assert record["state"] == "completed"
    assert record["parent_job_id"] == queen_job  # X-Parent-Job-Id crossed the hop


async def test_worker_spawn_then_worker_list(services: MultiServiceHarness) -> None:
    spawn = Operation.worker_spawn("localhost", "tinyllama", "cpu", device=1)
    events, terminal = await run_job(services.queen_url, spawn, "e2e-spawn")
    assert terminal.state == "completed"
    assert actors_in_order(events) == ["queen", "hive", "worker", "hive", "queen"]
    ready = [event for event in events if event.action == "worker_ready"]
    assert len(ready) == 1
    worker_id = ready[0].fields["worker_id"] if ready[0].fields else None
    assert ready[0].human == f"Worker {worker_id} is ready with tinyllama"

    events, terminal = await run_job(services.queen_url, Operation.worker_list("localhost"))
    assert terminal.state == "completed"
    listed = [event.human for event in events if event.action == "worker"]
    assert f"{worker_id}: tinyllama on cpu device 1" in listed


async def test_hive_list_and_unknown_hive(services: MultiServiceHarness) -> None:
    events, terminal = await run_job(services.queen_url, Operation.hive_list())
    assert terminal.state == "completed"
    assert [(e.actor, e.human) for e in events] == [
        ("queen", "Found 1 hive"),
        ("queen", f"localhost at {services.hive_url}"),
    ]

    operation = Operation.infer("nowhere", "tinyllama", PROMPT)
    events, terminal = await run_job(services.queen_url, operation)
    assert terminal.state == "failed"
    assert terminal.error == "UnknownHiveError: unknown hive 'nowhere'; known hives: localhost"


# --------------------------------------------------------------------------- failures


async def test_worker_exit_code_fails_the_keepers_stream(
    failing_services: MultiServiceHarness,
) -> None:
    operation = Operation.infer("localhost", "tinyllama", PROMPT, max_tokens=5)
    events, terminal = await run_job(failing_services.queen_url, operation, "e2e-fail")

    assert terminal.state == "failed"
    assert terminal.error == (
        "HiveFailedError: hive localhost: WorkerFailedError: worker exited with code 1: "
        "worker: simulated failure, exiting with code 1"
    )
    assert {event.correlation_id for event in events} == {"e2e-fail"}
    assert "token" not in actions_of(events, "worker")
    crash = [event for event in events if event.action == "crash"]
    assert [(e.actor, e.level, e.human) for e in crash] == [
        ("worker", Level.ERROR, "Engine crashed (simulated, exit code 1)")
    ]
    stderr = [(e.actor, e.level, e.human) for e in events if e.action == "stderr"]
    assert stderr == [("worker", Level.WARN, "worker: simulated failure, exiting with code 1")]
    assert events[-1].actor == "queen"
    assert events[-1].action == "job_failed"


async def test_hive_not_running_fails_with_hive_unreachable() -> None:
    async with MultiServiceHarness(start_hive=False) as harness:
        started = time.monotonic()
        operation = Operation.hive_check("localhost")
        events, terminal = await run_job(harness.queen_url, operation, "e2e-unreachable")
        elapsed = time.monotonic() - started

    assert terminal.state == "failed"
    assert terminal.error is not None
    assert terminal.error.startswith(
        f"HiveUnreachableError: hive unreachable: localhost at {harness.hive_url}: "
    )
    assert elapsed < 5.0
    assert actions_of(events, "queen") == ["forward", "job_failed"]


async def test_hive_killed_mid_stream_fails_the_queen_job_within_5s(
    slow_services: MultiServiceHarness,
) -> None:
    operation = Operation.infer("localhost", "tinyllama", PROMPT, max_tokens=40)
    killed_at: float | None = None
    terminal: Terminal | None = None
    seen: list[NarrationEvent] = []
    async with asyncio.timeout(20), slow_services.client("e2e-kill") as client:
        submitted = await client.submit(operation)
        async for item in client.stream(submitted.job_id):
            if isinstance(item, Terminal):
                terminal = item
            elif isinstance(item, NarrationEvent):
                seen.append(item)
                if killed_at is None and item.action == "token":
                    slow_services.kill_hive()
                    killed_at = time.monotonic()
    assert killed_at is not None
    elapsed = time.monotonic() - killed_at

    assert terminal is not None
    assert terminal.state == "failed"
    forwarded = [event for event in seen if event.action == "forwarded"]
    hive_job = forwarded[0].fields["hive_job"] if forwarded[0].fields else None
    assert terminal.error is not None
    assert terminal.error.startswith(
        f"HiveLostError: lost hive localhost while streaming {hive_job}: "
    )
    assert elapsed < 5.0
    assert (seen[-1].actor, seen[-1].action) == ("queen", "job_failed")
    assert "done" not in [event.action for event in seen]


async def test_malformed_traceparent_is_replaced_and_a_valid_one_continued(
    services: MultiServiceHarness,
) -> None:
    async with httpx.AsyncClient(base_url=services.queen_url, timeout=10.0) as http:
        bad = await http.post(
            "/v1/jobs",
            json={"operation": "hive_list"},
            headers={"traceparent": "00-not-a-trace-01", "X-Correlation-Id": "e2e-tp-bad"},
        )
        good = await http.post(
            "/v1/jobs",
            json={"operation": "hive_check", "alias": "localhost"},
            headers={
                "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "X-Correlation-Id": "e2e-tp-good",
            },
        )
    assert bad.status_code == 201
    assert good.status_code == 201
    async with asyncio.timeout(20), JobClient(services.queen_url) as client:
        bad_events = [
            e async for e in client.stream(bad.json()["job_id"]) if isinstance(e, NarrationEvent)
        ]
        good_events = [
            e async for e in client.stream(good.json()["job_id"]) if isinstance(e, NarrationEvent)
        ]

    bad_traces = {event.trace_id for event in bad_events}
    assert len(bad_traces) == 1
    assert TRACE_ID.fullmatch(next(iter(bad_traces)) or "")
    assert {event.correlation_id for event in bad_events} == {"e2e-tp-bad"}
    assert actors_in_order(good_events) == ["queen", "hive", "worker", "hive", "queen"]
    assert {event.trace_id for event in good_events} == {"4bf92f3577b34da6a3ce929d0e0e4736"}
    assert "00f067aa0ba902b7" not in {event.span_id for event in good_events}


# --------------------------------------------------------------------------- the CLI


def test_cli_submit_exits_0_when_done(services: MultiServiceHarness) -> None:
    result = narration(
        ["submit", "hive_list", "--queen", services.queen_url, "--correlation-id", "e2e-cli"]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"▶ hive_list: job (job-\S+), correlation id e2e-cli", lines[0])
    job_id = lines[0].split()[3].rstrip(",")
    assert [LINE.fullmatch(line).groups() for line in lines[1:3]] == [  # type: ignore[union-attr]
        ("queen", "hive_list", "Found 1 hive"),
        ("queen", "hive", f"localhost at {services.hive_url}"),
    ]
    assert lines[3:] == [f"✔ done ({job_id})"]

    tailed = narration(["tail", job_id, "--queen", services.queen_url])
    assert tailed.returncode == 0
    assert tailed.stdout.splitlines() == lines[1:]


def test_cli_submit_exits_1_with_the_error(failing_services: MultiServiceHarness) -> None:
    result = narration(
        [
            "submit",
            "infer",
            "--queen",
            failing_services.queen_url,
            "--set",
            "hive_id=localhost",
            "--set",
            "model=tinyllama",
            "--set",
            "prompt=42",
            "--set",
            "max_tokens=3",
        ]
    )
    assert result.returncode == 1, result.stdout + result.stderr
    last = result.stdout.splitlines()[-1]
    assert last.startswith("✖ error (job-")
    assert last.endswith(
        "): HiveFailedError: hive localhost: WorkerFailedError: worker exited with code 1: "
        "worker: simulated failure, exiting with code 1"
    )
    actors = {m.group(1) for line in result.stdout.splitlines() if (m := LINE.fullmatch(line))}
    assert actors == {"queen", "hive", "worker"}


def test_cli_usage_errors_exit_2(services: MultiServiceHarness) -> None:
    url = services.queen_url
    result = narration(["submit", "infer", "--set", "hive_id=localhost", "--url", url])
    assert result.returncode == 2
    assert result.stdout.strip() == (
        "✖ could not submit infer: HTTP 422 invalid_fields: invalid fields for operation "
        "'infer': model: Field required; prompt: Field required"
    )
    unknown = narration(["submit", "nope", "--url", url])
    assert unknown.returncode == 2
    assert unknown.stdout.strip() == (
        "✖ unknown operation 'nope'; the server runs: status, hive_list, hive_get, "
        "hive_check, worker_spawn, worker_list, infer"
    )
    no_scheme = narration(["submit", "status", "--url", "127.0.0.1:1"])
    assert no_scheme.returncode == 2
    assert no_scheme.stdout.strip() == (
        "✖ '127.0.0.1:1' is not an http(s) URL; did you mean http://127.0.0.1:1?"
    )


def test_cli_ctrl_c_cancels_the_job_then_exits_130(slow_services: MultiServiceHarness) -> None:
    keeper = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "narration.cli",
            "submit",
            "infer",
            "--queen",
            slow_services.queen_url,
            "-s",
            "hive_id=localhost",
            "-s",
            "model=tinyllama",
            "-s",
            f"prompt={PROMPT}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        env=CLI_ENV,
    )
    try:
        assert keeper.stdout is not None
        lines: list[str] = []
        for line in keeper.stdout:  # bounded: the slow worker makes ~30 tokens at 0.2 s each
            lines.append(line.rstrip("\n"))
            if " token " in line:
                keeper.send_signal(signal.SIGINT)
                break
        rest, _ = keeper.communicate(timeout=15)
    finally:
        if keeper.poll() is None:
            keeper.kill()
            keeper.wait()
    lines += rest.splitlines()
    assert keeper.returncode == 130, "\n".join(lines)
    job_id = lines[0].split()[3].rstrip(",")  # "▶ infer: job job-…, correlation id …"
    assert f"Ctrl-C: cancelling {job_id} …" in lines
    assert lines[-1].startswith(f"■ cancelled ({job_id})")

    with httpx.Client(timeout=5.0) as http:
        queen_job = http.get(f"{slow_services.queen_url}/v1/jobs/{job_id}").json()
        hive_jobs = http.get(f"{slow_services.hive_url}/v1/jobs").json()
    assert queen_job["state"] == "cancelled"
    assert [job["state"] for job in hive_jobs] == ["cancelled"]


async def test_cli_serve_runs_a_plain_server() -> None:
    server = ServiceProcess("server", ["serve", "--retention", "5"])
    try:
        await asyncio.to_thread(server.start().wait_healthy)
        events, terminal = await run_job(server.url, Operation.status(), "e2e-serve")
    finally:
        server.stop()
        server.remove_log()
    assert terminal.state == "completed"
    assert [(e.actor, e.action, e.correlation_id) for e in events] == [
        ("narration", "status", "e2e-serve")
    ]


def test_demo_runs_and_exits_0() -> None:
    result = narration(["demo", "--tokens", "4"], timeout=45.0)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    match = re.search(r"correlation id for every job: (demo-[0-9a-f]{12})", out)
    assert match is not None, out
    actors = {m.group(1) for line in out.splitlines() if (m := LINE.fullmatch(line))}
    assert actors == {"queen", "hive", "worker"}
    assert out.count("✔ done (job-") == 3
    assert f"carried correlation id {match.group(1)}" in out
    assert out.rstrip().endswith("demo finished")
