"""Streams, scale and memory: narration's SSE path measured end to end, next to sse-starlette.

Run: `python -m benchmarks.bench_stream [--quick] [--json]` (also part of `make bench`).

The server (with the producer inside it, as a job handler would be) runs in its own process
(`benchmarks._stream_server`); the client runs here, in the benchmark process, so on a 2-core
machine each side has a core. The client is `benchmarks._sse_client` (raw socket, msgspec
decode), fast enough that the server is what is measured; `JobClient` (httpx + httpx-sse,
what a user would use) and the one-process figure (server, producer and client on one event
loop, as in the test harness) are reported too. The reference server
(`benchmarks.reference_sse_starlette`) runs the same scenarios; ours and theirs alternate
repeat by repeat, so machine noise hits both alike, and each ratio is "ours / theirs" from the
same run.

Scenarios (docs/ARCHITECTURE.md section 6 targets in brackets):

a. throughput: 100k events, one job, one client: events/s and µs/event [>= 100k ev/s, >= 3x]
b. latency: 100 streams at 10,000 events/s in total, emit -> parsed p50/p99 [0.3 / 1 ms]
c. fan-out: one job, 100 subscribers, every one gets every event: deliveries/s [>= 3x]
d. 1, 10, 100, 1,000 concurrent jobs each with a stream: events/s, every event checked
e. memory per idle job (10k jobs) and per retained event (100k events, before/after encoding)
   [<= 4 KB/job, <= 300 B/event]
f. 10,000 idle connected streams: server RSS [10,000 idle]
g. 100,000 job lifecycles with retention 0: RSS and tracemalloc at 10k/50k/100k [flat]
h. 1,000,000 events into one job with a slow reader: emit cost of the first vs last 100k
   (flat), and every event delivered or counted by an exact `gap`

Every scenario checks its counts; what did not add up is listed under `failures` (a
benchmark that loses events has no speed worth reporting).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from narration.server.app import server_state

from ._server_process import ServerProcess
from ._sse_client import SSEStream, open_streams, wait_all
from ._stream_server import raise_nofile_limit, rss_bytes

__all__ = ["RUN_ALL_REPEATS", "TARGETS", "run", "stat"]

RUN_ALL_REPEATS = 1  # repeats happen inside (servers are started once per scenario group)
REPO = Path(__file__).resolve().parent.parent
SLOW_READER_RCVBUF = 64 * 1024  # the slow reader's socket buffer (the kernel's own can be MBs)

TARGETS = {
    "end_to_end_ev_s_min": 100_000,
    "end_to_end_vs_sse_starlette_min": 3.0,
    "latency_p50_ms_max": 0.3,
    "latency_p99_ms_max": 1.0,
    "active_streams": 1_000,
    "idle_streams": 10_000,
    "idle_job_bytes_max": 4096,
    "retained_event_bytes_max": 300,
}


@dataclass(frozen=True)
class Sizes:
    """How big each scenario is (full or quick)."""

    repeats: int
    events: int  # (a)
    latency_streams: int  # (b)
    latency_rate: int
    latency_seconds: float
    latency_warmup: float
    fanout_subscribers: int  # (c)
    fanout_events: int
    concurrency: tuple[int, ...]  # (d)
    concurrency_events: int  # in total, split over the jobs
    idle_jobs: int  # (e)
    retained_events: int
    idle_streams: int  # (f)
    lifecycles: int  # (g)
    slow_events: int  # (h)
    slow_cap: int
    slow_block: int
    slow_read_rate: float


FULL = Sizes(
    repeats=5,
    events=100_000,
    latency_streams=100,
    latency_rate=10_000,
    latency_seconds=3.0,
    latency_warmup=0.5,
    fanout_subscribers=100,
    fanout_events=3_000,
    concurrency=(1, 10, 100, 1_000),
    concurrency_events=100_000,
    idle_jobs=10_000,
    retained_events=100_000,
    idle_streams=10_000,
    lifecycles=100_000,
    slow_events=1_000_000,
    slow_cap=100_000,
    slow_block=100_000,
    slow_read_rate=100_000.0,
)
QUICK = Sizes(
    repeats=1,
    events=5_000,
    latency_streams=100,
    latency_rate=10_000,
    latency_seconds=0.4,
    latency_warmup=0.1,
    fanout_subscribers=20,
    fanout_events=200,
    concurrency=(1, 10, 100),
    concurrency_events=3_000,
    idle_jobs=500,
    retained_events=5_000,
    idle_streams=200,
    lifecycles=1_000,
    # The socket buffers hold ~16,000 frames: 60,000 events put the reader (20,000 ev/s) past the
    # cap unless producing them takes over 2 s (~0.3 s here); 20,000 needed it done in 0.1 s,
    # which a busy 2-core machine missed.
    slow_events=60_000,
    slow_cap=2_000,
    slow_block=5_000,
    slow_read_rate=20_000.0,
)


def stat(values: list[float], unit: str, digits: int = 3) -> dict[str, Any]:
    """A figure: the median of repeated runs, with min, max and every run."""
    clean = [v for v in values if v == v]  # drop NaN (a failed run)
    if not clean:
        return {"median": None, "min": None, "max": None, "runs": [], "unit": unit}
    return {
        "median": round(statistics.median(clean), digits),
        "min": round(min(clean), digits),
        "max": round(max(clean), digits),
        "runs": [round(v, digits) for v in clean],
        "unit": unit,
    }


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    for name in list(env):  # the server runs with the defaults, whatever this shell set
        if name.startswith("NARRATION_"):
            del env[name]
    return env


def _problems(label: str, streams: list[SSEStream], expected: int) -> list[str]:
    found: list[str] = []
    for index, stream in enumerate(streams):
        for problem in stream.check(expected):
            found.append(f"{label}: stream {index}: {problem}")
            if len(found) >= 5:
                return found
    return found


# --------------------------------------------------------------------------- (a) throughput


async def _one_stream(
    server: ServerProcess, events: int, decode: bool = True
) -> tuple[float, list[str]]:
    """Events/s from the start of production to the terminal parsed by the lean client."""
    jobs = await server.jobs(1)
    streams = await open_streams(server.stream_port, jobs, decode=decode, wait_first_byte=True)
    began = time.perf_counter()
    await server.produce(jobs, events, streams=1)
    await wait_all(streams, timeout=300)
    elapsed = time.perf_counter() - began
    return events / elapsed, _problems(f"{server.impl} one stream", streams, events)


async def _jobclient_stream(base_url: str, job_id: str, events: int) -> list[str]:
    """Read one job with `JobClient.stream` (httpx-sse); what did not add up."""
    from narration.client import Gap, JobClient, Terminal
    from narration.events import NarrationEvent

    count, last, terminal = 0, 0, None
    async with JobClient(base_url, timeout=300.0) as client:
        async for item in client.stream(job_id):
            if isinstance(item, NarrationEvent):
                count += 1
                if item.id != last + 1:
                    return [f"JobClient: id {item.id} after {last}"]
                last = item.id
            elif isinstance(item, Gap):
                return [f"JobClient: unexpected gap {item}"]
            elif isinstance(item, Terminal):
                terminal = item
    if count != events or terminal is None or terminal.state != "completed":
        return [f"JobClient: {count} of {events} events, terminal {terminal}"]
    return []


async def _one_stream_jobclient(server: ServerProcess, events: int) -> tuple[float, list[str]]:
    jobs = await server.jobs(1)
    reader = asyncio.create_task(_jobclient_stream(server.base_url, jobs[0], events))
    began = time.perf_counter()
    await server.produce(jobs, events, streams=1)
    problems = await asyncio.wait_for(reader, 300)
    return events / (time.perf_counter() - began), problems


async def _one_process(events: int, client: str) -> tuple[float, list[str]]:
    """Server, producer and client on this one event loop (the test-harness set-up)."""
    from narration.testing import NarrationTestHarness

    from ._stream_server import OursProducer

    async with NarrationTestHarness(retention_s=1.0) as harness:
        producer = OursProducer(harness.app)
        jobs = await producer.make_jobs(1)
        port = int(harness.base_url.rsplit(":", 1)[1])
        began = time.perf_counter()
        if client == "lean":
            streams = await open_streams(port, jobs, wait_first_byte=True)
            began = time.perf_counter()
            await producer.run_job(jobs[0], {"events": events}, 0.0)
            await producer.finish(jobs[0])
            await wait_all(streams, timeout=300)
            problems = _problems("one process", streams, events)
        else:
            reader = asyncio.create_task(_jobclient_stream(harness.base_url, jobs[0], events))
            await harness.state.streams.wait_for_open(1, timeout=10)
            began = time.perf_counter()
            await producer.run_job(jobs[0], {"events": events}, 0.0)
            await producer.finish(jobs[0])
            problems = await asyncio.wait_for(reader, 300)
        return events / (time.perf_counter() - began), problems


# --------------------------------------------------------------------------- (b) latency


async def _latency(server: ServerProcess, size: Sizes) -> tuple[dict[str, float], list[str]]:
    """Emit -> parsed latency over `latency_streams` jobs at `latency_rate` events/s in all."""
    count = size.latency_streams
    per_job = int(size.latency_rate * (size.latency_seconds + size.latency_warmup)) // count
    jobs = await server.jobs(count)
    samples: list[int] = []
    streams = await open_streams(
        server.stream_port, jobs, latencies=samples, since_ns=1 << 62, wait_first_byte=True
    )
    since = time.time_ns() + int((0.05 + size.latency_warmup) * 1e9)
    for stream in streams:
        stream.since_ns = since
    cpu = (await server.stats())["cpu_s"]
    answer = await server.produce(
        jobs, per_job, streams=count, rate=size.latency_rate, warmup=size.latency_warmup
    )
    cpu = (await server.stats())["cpu_s"] - cpu
    await wait_all(streams, timeout=120)
    problems = _problems(f"{server.impl} latency", streams, per_job)
    samples.sort()
    if not samples:
        return {}, [*problems, f"{server.impl} latency: no samples"]
    ms = [s / 1e6 for s in samples]
    quantiles = statistics.quantiles(ms, n=1000, method="inclusive")
    achieved = per_job * count / max(answer["emit_s"] - 0.05, 1e-9)  # it starts 50 ms in
    return {
        "p50_ms": statistics.median(ms),
        "p90_ms": quantiles[899],
        "p99_ms": quantiles[989],
        "p999_ms": quantiles[998],
        "max_ms": ms[-1],
        "samples": len(ms),
        "achieved_rate": achieved,
        "server_cpu_us_per_event": cpu / (per_job * count) * 1e6,
        **{
            f"pacing_{name}_{key}": value
            for name in ("events_per_wakeup", "gap_us")
            for key, value in answer.get("pacing", {}).get(name, {}).items()
        },
    }, problems


# --------------------------------------------------------------------------- (c) fan-out, (d) jobs


async def _fanout(server: ServerProcess, size: Sizes) -> tuple[float, list[str]]:
    """One job, N subscribers: deliveries/s (events x subscribers / time), all checked."""
    jobs = await server.jobs(1)
    subscribers = size.fanout_subscribers
    streams = await open_streams(
        server.stream_port, jobs * subscribers, decode=False, wait_first_byte=True
    )
    began = time.perf_counter()
    await server.produce(jobs, size.fanout_events, streams=subscribers)
    await wait_all(streams, timeout=300)
    elapsed = time.perf_counter() - began
    problems = _problems(f"{server.impl} fan-out", streams, size.fanout_events)
    return size.fanout_events * subscribers / elapsed, problems


async def _concurrent(
    server: ServerProcess, jobs_count: int, total: int
) -> tuple[float, list[str]]:
    """`jobs_count` jobs emitting at once, each read (and every event decoded) by its stream."""
    per_job = max(total // jobs_count, 1)
    jobs = await server.jobs(jobs_count)
    streams = await open_streams(server.stream_port, jobs, wait_first_byte=True)
    began = time.perf_counter()
    await server.produce(jobs, per_job, streams=jobs_count, batch=64)
    await wait_all(streams, timeout=300)
    elapsed = time.perf_counter() - began
    problems = _problems(f"{jobs_count} jobs", streams, per_job)
    return per_job * jobs_count / elapsed, problems


# --------------------------------------------------------------------------- (f) idle streams


async def _idle_streams(size: Sizes) -> tuple[dict[str, Any], list[str]]:
    """N idle connected streams (one per idle job): the server's RSS before and after."""
    limit = raise_nofile_limit()
    wanted = size.idle_streams
    count = min(wanted, limit - 200)
    problems: list[str] = []
    async with ServerProcess("ours", "--max-running", str(wanted + 1000)) as server:
        server_limit = (await server.stats())["nofile"]
        count = min(count, server_limit - 200)
        jobs = await server.jobs(count)
        before = (await server.stats(collect=True))["rss"]
        began = time.perf_counter()
        streams = await open_streams(
            server.stream_port, jobs, concurrency=250, wait_first_byte=True
        )
        connect_s = time.perf_counter() - began
        open_now = await server.wait_streams(count)
        after = (await server.stats(collect=True))["rss"]
        if open_now != count:
            problems.append(f"idle streams: {open_now} open on the server, {count} connected")
        bad = [s for s in streams if s.status != 200]
        if bad:
            problems.append(f"idle streams: {len(bad)} answered {bad[0].status}")
        for stream in streams:
            stream.close()
        left = await server.wait_streams(0)
        if left:
            problems.append(f"idle streams: {left} still open after every client left")
    result = {
        "wanted": wanted,
        "connected": count,
        "nofile_limit": min(limit, server_limit),
        "server_rss_before_mb": before / 2**20,
        "server_rss_after_mb": after / 2**20,
        "bytes_per_stream": (after - before) / max(count, 1),
        "connect_s": connect_s,
        "open_after_disconnect": left,
    }
    if count < wanted:
        problems.append(f"idle streams: open-file limit {result['nofile_limit']} allows {count}")
    return result, problems


# --------------------------------------------------------------------------- (h) slow reader


async def _slow_reader(size: Sizes) -> tuple[dict[str, Any], list[str]]:
    """1M events into one job read by a slow client: flat emit cost, exact gaps."""
    async with ServerProcess("ours", "--max-events", str(size.slow_cap)) as server:
        jobs = await server.jobs(1)
        streams = await open_streams(
            server.port,
            jobs,
            decode=True,
            read_rate=size.slow_read_rate,
            rcvbuf=SLOW_READER_RCVBUF,
            wait_first_byte=True,
        )
        began = time.perf_counter()
        answer = await server.produce(
            jobs, size.slow_events, streams=1, block=size.slow_block, batch=1000
        )
        await wait_all(streams, timeout=600)
        elapsed = time.perf_counter() - began
    stream = streams[0]
    blocks = [us * 1000 / size.slow_block for us in answer["blocks_us"]]  # ns per emit
    problems = _problems("slow reader", streams, size.slow_events)
    if size.slow_events > size.slow_cap and not stream.gaps:
        problems.append("slow reader: no gap although the reader fell behind the cap")
    return {
        "events": size.slow_events,
        "cap": size.slow_cap,
        "read_rate": size.slow_read_rate,
        "received": stream.events,
        "gaps": len(stream.gaps),
        "missed": stream.missed,
        "received_plus_missed": stream.events + stream.missed,
        "exact": stream.events + stream.missed == size.slow_events and not stream.errors,
        "emit_ns_per_block": [round(b, 1) for b in blocks],
        "emit_ns_first_block": blocks[0] if blocks else None,
        "emit_ns_last_block": blocks[-1] if blocks else None,
        "last_over_first": blocks[-1] / blocks[0] if blocks else None,
        "seconds": elapsed,
    }, problems


# --------------------------------------------------------------------------- (e, g) memory


def emit_ticks(count: int) -> None:
    """`count` typical events into the current job (fn_name: benchmarks.bench_stream.emit_ticks)."""
    from narration import n

    for i in range(count):
        n("tick", f"tick {i}", i=i)


def _child(kind: str, size: Sizes) -> dict[str, Any]:
    """Run a memory scenario in a fresh interpreter (clean RSS); its JSON answer."""
    quick = "--quick" if size is QUICK else "--full"
    cmd = [sys.executable, "-m", "benchmarks.bench_stream", "--child", kind, quick]
    done = subprocess.run(
        cmd, capture_output=True, text=True, cwd=REPO, env=_env(), timeout=600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{kind} child failed: {done.stderr[-2000:]}")
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


async def _memory_jobs(size: Sizes) -> dict[str, Any]:
    """Idle jobs (no events) and retained events; bytes each, by tracemalloc and by RSS."""
    from narration import narration_context
    from narration.operations import Operation
    from narration.server import create_app
    from narration.store.memory import MemoryEventLog

    app = create_app(hold_unhandled=True, max_running=10 * size.idle_jobs + 1000)
    jobs = server_state(app).jobs
    op = Operation.hive_list()

    async def idle_jobs(count: int) -> list[Any]:
        return [await jobs.submit(op, correlation_id="bench-memory") for _ in range(count)]

    keep = await idle_jobs(200)  # warm-up: caches, interned strings, dict growth
    gc.collect()
    rss0 = rss_bytes()
    keep += await idle_jobs(size.idle_jobs)
    gc.collect()
    rss_per_job = (rss_bytes() - rss0) / size.idle_jobs
    tracemalloc.start()
    gc.collect()
    traced0 = tracemalloc.get_traced_memory()[0]
    keep += await idle_jobs(size.idle_jobs)
    gc.collect()
    traced_per_job = (tracemalloc.get_traced_memory()[0] - traced0) / size.idle_jobs
    tracemalloc.stop()

    def fill(count: int) -> tuple[Any, MemoryEventLog]:
        job = jobs.live[keep.pop().job_id]
        with narration_context(job.context):
            emit_ticks(count)
        assert isinstance(job.log, MemoryEventLog)
        return job, job.log

    async def read_all(log: MemoryEventLog) -> int:
        """Read every event; the mean frame size (a read may return many frames in one chunk)."""
        cursor, size_bytes = 0, 0
        while True:
            result = await log.read(cursor, timeout=0)
            if not result.frames:
                return size_bytes // max(cursor, 1)
            size_bytes += sum(len(f) for f in result.frames)
            cursor = result.cursor

    async def background_encode() -> None:
        """One loop turn: the log encodes what was queued (no reader involved)."""
        await asyncio.sleep(0)

    count = size.retained_events
    fill(1000)  # warm-up
    gc.collect()
    rss0 = rss_bytes()
    _, log_rss = fill(count)
    await background_encode()
    gc.collect()
    rss_raw = (rss_bytes() - rss0) / count
    rss1 = rss_bytes()
    frame_bytes = await read_all(log_rss)
    gc.collect()
    rss_encoded = (rss_bytes() - rss0) / count
    rss_encoding_delta = (rss_bytes() - rss1) / count

    tracemalloc.start()
    gc.collect()
    traced0 = tracemalloc.get_traced_memory()[0]
    _, log_traced = fill(count)
    gc.collect()
    traced_queued = (tracemalloc.get_traced_memory()[0] - traced0) / count
    await background_encode()
    gc.collect()
    traced_raw = (tracemalloc.get_traced_memory()[0] - traced0) / count
    await read_all(log_traced)
    gc.collect()
    traced_encoded = (tracemalloc.get_traced_memory()[0] - traced0) / count
    tracemalloc.stop()
    retained = log_traced.retained()
    return {
        "idle_jobs": size.idle_jobs,
        "idle_job_bytes_tracemalloc": traced_per_job,
        "idle_job_bytes_rss": rss_per_job,
        "retained_events": count,
        "event_bytes_tracemalloc_queued": traced_queued,
        "event_bytes_tracemalloc_unread": traced_raw,
        "event_bytes_tracemalloc_encoded": traced_encoded,
        "event_bytes_rss_unread": rss_raw,
        "event_bytes_rss_encoded": rss_encoded,
        "event_bytes_rss_encoding_delta": rss_encoding_delta,
        "frame_bytes": frame_bytes,
        "log_estimate_bytes_per_event": retained[1] / max(retained[0], 1),
    }


async def _memory_lifecycles(size: Sizes) -> dict[str, Any]:
    """Job lifecycles (submit, 5 events read from the log, complete) with retention 0."""
    from narration import n, narration_context
    from narration.dispatch import dispatcher
    from narration.operations import Operation
    from narration.server import create_app

    app = create_app(hold_unhandled=True, retention_s=0)
    state = server_state(app)
    jobs, store, op = state.jobs, state.store, Operation.hive_list()

    async def lifecycle() -> None:
        job = await jobs.submit(op, correlation_id="bench-lifecycle")
        with narration_context(job.context):
            for i in range(5):
                n("tick", f"tick {i}", i=i)
        await job.log.read(0, timeout=0)
        await jobs.complete(job.job_id)

    total = size.lifecycles
    marks = sorted({total // 10, total // 2, total})
    for _ in range(max(total // 100, 100)):  # warm-up
        await lifecycle()
    gc.collect()
    tracemalloc.start()
    base_rss, base_traced = rss_bytes(), tracemalloc.get_traced_memory()[0]
    points = []
    began = time.perf_counter()
    for done in range(1, total + 1):
        await lifecycle()
        if done in marks:
            gc.collect()
            points.append(
                {
                    "jobs": done,
                    "rss_mb": rss_bytes() / 2**20,
                    "rss_growth_kb": (rss_bytes() - base_rss) / 1024,
                    "traced_growth_kb": (tracemalloc.get_traced_memory()[0] - base_traced) / 1024,
                }
            )
    elapsed = time.perf_counter() - began
    tracemalloc.stop()
    return {
        "lifecycles": total,
        "points": points,
        "us_per_lifecycle_traced": elapsed / total * 1e6,
        "left_behind": {
            "running": jobs.running,
            "records": len(store),
            "routes": sum(1 for key in dispatcher.routes if key.startswith("job-")),
        },
    }


# --------------------------------------------------------------------------- the whole run


async def _stream_scenarios(size: Sizes) -> tuple[dict[str, Any], list[str]]:
    failures: list[str] = []
    runs: dict[str, list[float]] = {
        key: []
        for key in (
            "ours_lean",
            "theirs_lean",
            "ours_jobclient",
            "theirs_jobclient",
            "ours_one_process_lean",
            "ours_one_process_jobclient",
            "fanout_ours",
            "fanout_theirs",
        )
    }
    latency: dict[str, list[dict[str, float]]] = {"ours": [], "theirs": []}
    concurrency: dict[int, list[float]] = {k: [] for k in size.concurrency}

    def keep(key: str, measured: tuple[float, list[str]]) -> None:
        value, problems = measured
        failures.extend(problems)
        runs[key].append(float("nan") if problems else value)

    async with AsyncExitStack() as stack:
        ours = await stack.enter_async_context(ServerProcess("ours"))
        theirs = await stack.enter_async_context(ServerProcess("theirs"))
        for server in (ours, theirs):  # warm-up both
            await _one_stream(server, min(size.events, 5_000))
        for _ in range(size.repeats):  # alternate, so drift and noise hit both alike
            keep("ours_lean", await _one_stream(ours, size.events))
            keep("theirs_lean", await _one_stream(theirs, size.events))
        for _ in range(max(size.repeats // 2, 1)):
            keep("ours_jobclient", await _one_stream_jobclient(ours, size.events))
            keep("theirs_jobclient", await _one_stream_jobclient(theirs, size.events))
            keep("ours_one_process_lean", await _one_process(size.events, "lean"))
            keep("ours_one_process_jobclient", await _one_process(size.events, "jobclient"))
        for _ in range(max(size.repeats // 2, 1)):
            for impl, server in (("ours", ours), ("theirs", theirs)):
                figures, problems = await _latency(server, size)
                failures.extend(problems)
                if figures and not problems:
                    latency[impl].append(figures)
        for _ in range(max(size.repeats // 2, 1)):
            keep("fanout_ours", await _fanout(ours, size))
            keep("fanout_theirs", await _fanout(theirs, size))
        for _ in range(max(size.repeats // 2, 1)):
            for jobs_count in size.concurrency:
                rate, problems = await _concurrent(ours, jobs_count, size.concurrency_events)
                failures.extend(problems)
                concurrency[jobs_count].append(float("nan") if problems else rate)

    def ratio(a: str, b: str) -> dict[str, Any]:
        pairs = [x / y for x, y in zip(runs[a], runs[b], strict=False) if x == x and y == y]
        return stat(pairs, "x", 2)

    def lat(impl: str, key: str) -> dict[str, Any]:
        return stat([r[key] for r in latency[impl]], "ms", 4)

    throughput = {
        "events": size.events,
        "ours_lean": stat(runs["ours_lean"], "ev/s", 0),
        "theirs_lean": stat(runs["theirs_lean"], "ev/s", 0),
        "ours_over_theirs_lean": ratio("ours_lean", "theirs_lean"),
        "ours_us_per_event": stat([1e6 / v for v in runs["ours_lean"] if v == v], "µs", 3),
        "theirs_us_per_event": stat([1e6 / v for v in runs["theirs_lean"] if v == v], "µs", 3),
        "ours_jobclient": stat(runs["ours_jobclient"], "ev/s", 0),
        "theirs_jobclient": stat(runs["theirs_jobclient"], "ev/s", 0),
        "ours_over_theirs_jobclient": ratio("ours_jobclient", "theirs_jobclient"),
        "ours_one_process_lean": stat(runs["ours_one_process_lean"], "ev/s", 0),
        "ours_one_process_jobclient": stat(runs["ours_one_process_jobclient"], "ev/s", 0),
    }
    latency_out: dict[str, Any] = {
        "streams": size.latency_streams,
        "rate": size.latency_rate,
        "seconds": size.latency_seconds,
    }
    for impl in ("ours", "theirs"):
        latency_out[impl] = {
            key: lat(impl, key) for key in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms")
        }
        latency_out[impl]["samples"] = sum(int(r["samples"]) for r in latency[impl])
        latency_out[impl]["achieved_rate"] = stat(
            [r["achieved_rate"] for r in latency[impl]], "ev/s", 0
        )
        latency_out[impl]["server_cpu_us_per_event"] = stat(
            [r["server_cpu_us_per_event"] for r in latency[impl]], "µs", 1
        )
        for key in sorted({k for r in latency[impl] for k in r if k.startswith("pacing_")}):
            latency_out[impl][key] = stat([r[key] for r in latency[impl] if key in r], "", 1)
    for key in ("p50_ms", "p99_ms"):
        o, t = latency_out["ours"][key]["median"], latency_out["theirs"][key]["median"]
        latency_out[f"ours_over_theirs_{key}"] = round(o / t, 3) if o and t else None
    fanout = {
        "subscribers": size.fanout_subscribers,
        "events": size.fanout_events,
        "ours": stat(runs["fanout_ours"], "deliveries/s", 0),
        "theirs": stat(runs["fanout_theirs"], "deliveries/s", 0),
        "ours_over_theirs": ratio("fanout_ours", "fanout_theirs"),
    }
    concurrent = {
        "total_events": size.concurrency_events,
        **{f"{k}_jobs": stat(v, "ev/s", 0) for k, v in concurrency.items()},
    }
    results = {
        "throughput": throughput,
        "latency": latency_out,
        "fanout": fanout,
        "concurrent_jobs": concurrent,
    }
    return results, failures


async def latency_only(
    rounds: int, size: Sizes = FULL, floor: bool = False, redis_url: str | None = None
) -> dict[str, Any]:
    """The latency scenario alone, `rounds` times, ours and theirs alternating (a quick check
    of a change to the low-rate path; `--latency N`). With `floor` the floors as well: bare
    uvicorn (`floor_uvicorn.py`) and a raw asyncio server (`floor_asyncio.py`). With
    `redis_url` ours on that Redis store as well (`ours_redis`; its CPU figure is the
    server's, Redis's own is not counted). Each round's figures, and per round ours/theirs
    (and ours_redis/theirs) of p50, p99 and server CPU per event."""
    out: dict[str, Any] = {"load_before": list(os.getloadavg()), "rounds": []}
    impls: list[tuple[str, tuple[str, ...]]] = [("ours", ()), ("theirs", ())]
    if floor:
        impls += [("bare", ()), ("raw", ())]
    if redis_url:
        impls.append(("ours_redis", ("--store", redis_url)))
    keys = ("p50_ms", "p99_ms", "server_cpu_us_per_event")
    async with AsyncExitStack() as stack:
        servers = [
            (label, await stack.enter_async_context(ServerProcess(label.split("_")[0], *args)))
            for label, args in impls
        ]
        for _, server in servers:  # warm-up every one
            await _one_stream(server, 5_000)
        for _ in range(rounds):
            row: dict[str, Any] = {}
            for label, server in servers:
                figures, problems = await _latency(server, size)
                row[label] = {key: round(value, 4) for key, value in figures.items()}
                if problems:
                    row[f"{label}_problems"] = problems
            for label in ("ours", "ours_redis"):
                if row.get(label) and row["theirs"]:
                    name = "ratio" if label == "ours" else f"ratio_{label}"
                    ours, theirs = row[label], row["theirs"]
                    row[name] = {key: round(ours[key] / theirs[key], 3) for key in keys}
            out["rounds"].append(row)
    out["load_after"] = list(os.getloadavg())
    return out


def _latency_with_redis(rounds: int, floor: bool) -> dict[str, Any]:
    """`latency_only` with ours on a private redis-server as well (`--latency N --redis`)."""
    from narration.testing.redis_server import RedisServer

    redis = RedisServer.start()
    try:
        url = redis.url(prefix=f"bench-latency-{os.getpid()}:")
        return asyncio.run(latency_only(rounds, floor=floor, redis_url=url))
    finally:
        redis.stop()


def run(quick: bool = False) -> dict[str, Any]:
    """Every scenario; figures as {median, min, max, runs, unit}; `failures` lists lost events.

    `quick` shrinks every scenario (a smoke run of ~15 s; the figures are then meaningless).
    """
    size = QUICK if quick else FULL
    results: dict[str, Any] = {"quick": quick, "repeats": size.repeats, "targets": TARGETS}
    failures: list[str] = []
    seconds: dict[str, float] = {}
    load: dict[str, list[float]] = {"before": list(os.getloadavg())}

    def timed(name: str, value: Any) -> Any:
        seconds[name] = round(time.perf_counter() - began, 1)
        return value

    began = time.perf_counter()
    streams, problems = timed("streams", asyncio.run(_stream_scenarios(size)))
    results.update(streams)
    failures += problems
    began = time.perf_counter()
    results["idle_streams"], problems = timed("idle_streams", asyncio.run(_idle_streams(size)))
    failures += problems
    began = time.perf_counter()
    results["slow_reader"], problems = timed("slow_reader", asyncio.run(_slow_reader(size)))
    failures += problems
    began = time.perf_counter()
    results["memory"] = timed("memory", _child("memory", size))
    began = time.perf_counter()
    lifecycles = results["lifecycles"] = timed("lifecycles", _child("lifecycles", size))
    if any(lifecycles["left_behind"].values()):
        failures.append(f"lifecycles: left behind {lifecycles['left_behind']}")
    load["after"] = list(os.getloadavg())
    results["failures"] = failures
    results["verdicts"] = verdicts(results)
    results["seconds"] = seconds
    results["load_average"] = load
    return results


def verdicts(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target of docs/ARCHITECTURE.md section 6: the measured median and whether it was met."""
    t = results["throughput"]
    lat = results["latency"]["ours"]
    mem = results["memory"]
    points = results["lifecycles"]["points"]
    growth = points[-1]["rss_growth_kb"] - points[0]["rss_growth_kb"] if points else None
    concurrent_1000 = results["concurrent_jobs"].get("1000_jobs", {}).get("median")

    def check(value: Any, ok: bool, target: str) -> dict[str, Any]:
        return {"value": value, "target": target, "met": bool(ok) if value is not None else None}

    e2e = t["ours_lean"]["median"]
    vs = t["ours_over_theirs_lean"]["median"]
    p50, p99 = lat["p50_ms"]["median"], lat["p99_ms"]["median"]
    idle = results["idle_streams"]
    return {
        "end_to_end_ev_s": check(e2e, e2e is not None and e2e >= 100_000, ">= 100,000 ev/s"),
        "end_to_end_vs_sse_starlette": check(vs, vs is not None and vs >= 3.0, ">= 3x"),
        "latency_p50_ms": check(p50, p50 is not None and p50 <= 0.3, "<= 0.3 ms"),
        "latency_p99_ms": check(p99, p99 is not None and p99 <= 1.0, "<= 1 ms"),
        "active_streams_1000": check(
            concurrent_1000, concurrent_1000 is not None, "1,000 active, every event delivered"
        ),
        "idle_streams_10000": check(
            idle["connected"], idle["connected"] >= 10_000, "10,000 idle connected"
        ),
        "idle_job_bytes": check(
            round(mem["idle_job_bytes_tracemalloc"]),
            mem["idle_job_bytes_tracemalloc"] <= 4096,
            "<= 4 KB per idle job",
        ),
        "retained_event_bytes": check(
            round(mem["event_bytes_tracemalloc_encoded"]),
            max(mem["event_bytes_tracemalloc_encoded"], mem["event_bytes_tracemalloc_unread"])
            <= 300,
            "<= 300 B per retained event",
        ),
        "flat_rss_100k_jobs": check(
            growth, growth is not None and growth < 1024, "flat RSS over 100k job lifecycles"
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="narration stream, scale and memory benchmarks")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--full", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=("memory", "lifecycles"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--latency", type=int, metavar="ROUNDS", help="only the latency scenario, ROUNDS times"
    )
    parser.add_argument("--idle", action="store_true", help="only the idle-streams scenario")
    parser.add_argument(
        "--floor", action="store_true", help="--latency: bare uvicorn and raw asyncio as well"
    )
    parser.add_argument(
        "--redis", action="store_true", help="--latency: ours on a private Redis store as well"
    )
    args = parser.parse_args()
    if args.idle:
        print(json.dumps(asyncio.run(_idle_streams(QUICK if args.quick else FULL)), indent=2))
        return
    if args.latency:
        if args.redis:
            figures = _latency_with_redis(args.latency, args.floor)
        else:
            figures = asyncio.run(latency_only(args.latency, floor=args.floor))
        print(json.dumps(figures, indent=2))
        return
    size = QUICK if args.quick else FULL
    if args.child == "memory":
        print(json.dumps(asyncio.run(_memory_jobs(size))))
        return
    if args.child == "lifecycles":
        print(json.dumps(asyncio.run(_memory_lifecycles(size))))
        return
    print(json.dumps(run(quick=args.quick), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
