"""The Redis store measured end to end, next to the memory store in the same run.

Run: `python -m benchmarks.bench_redis [--quick] [--json]` (also part of `make bench`).

A private `redis-server` (free port, nothing persisted) and one narration server per store
(`python -m narration.server`, with this module's handler) run as child processes; the client
runs here and reads the job's SSE stream over a real socket. Both servers run at once and the
throughput repeats alternate between them (each store first in turn), so the ratio compares
runs made back to back.
Per store:

- throughput: one job emits N events as fast as it can (yielding to the loop every 256), one
  SSE client reads them all: events/s from submit to the terminal at the client, and the
  emitter's own rate (events appended per second, reported by the job's last event)
  [target >= 50,000 events/s through Redis];
- latency: one job emits at a steady rate, every event carrying its emit time `t_ns`; emit ->
  parsed by the client, p50 / p99 / max in ms;
- idle streams (Redis only): 1,000 SSE clients watch one quiet job; once all are open and
  caught up, the Redis connections the server holds are counted (`CLIENT LIST`), then the job
  is cancelled and the time until every client has its `cancelled` terminal is measured (the
  replica running the job follows its own readers: its end hands the terminal to all 1,000,
  with no XREAD blocked meanwhile and none read back).

Every stream is checked: ids 1..N in order, no gap, one `done` terminal.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path
from typing import Any, Literal

import httpx
import msgspec
import redis.asyncio as aioredis
from pydantic import BaseModel

from narration import n
from narration._process import ServiceProcess
from narration.jobs import Job, JobRegistry
from narration.testing.redis_server import RedisServer, blocked_xreads, client_list
from narration.testing.sse import SSEFrame, SSEParser

from ._cli import table_main

__all__ = ["RUN_ALL_REPEATS", "TARGET_EVENTS_PER_S", "run"]

RUN_ALL_REPEATS = 1  # run() repeats the throughput run itself (3 times, 1 with quick)
REPO = Path(__file__).resolve().parent.parent
TARGET_EVENTS_PER_S = 50_000
_YIELD_EVERY = 256


# --------------------------------------------------------------------------- server side


class Produce(BaseModel):
    """The benchmark job: `count` events as fast as possible, or `rate` per second (`paced`),
    or none until cancelled (`idle`)."""

    mode: Literal["fast", "paced", "idle"]
    count: int = 0
    rate: float = 0.0


jobs = JobRegistry()


@jobs.operation("produce")
async def _produce(operation: Produce, job: Job) -> None:
    """Narrate as `operation` says, then a `bench_end` event with the emit time."""
    if operation.mode == "idle":  # quiet until cancelled
        await asyncio.Event().wait()
    count = operation.count
    started = time.perf_counter()
    if operation.mode == "fast":
        for i in range(1, count + 1):
            n("bench", "event {}", i, i=i)
            if i % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
    else:
        rate = operation.rate
        loop = asyncio.get_running_loop()
        begin = loop.time()
        sent = 0
        while sent < count:
            due = min(count, int((loop.time() - begin) * rate) + 1)
            while sent < due:
                sent += 1
                n("bench", "event {}", sent, i=sent, t_ns=time.time_ns())
            await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - started
    n("bench_end", "emitted {} events in {:.3f} s", count, elapsed, emit_s=elapsed)


def _server(store: str, max_events: int) -> ServiceProcess:
    """`python -m narration.server --store URL` with this module's handler, in a child."""
    return ServiceProcess(
        "bench-redis",
        ["--store", store, "--jobs", "benchmarks.bench_redis:jobs"],
        module="narration.server",
        env={
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            "NARRATION_MAX_EVENTS": str(max_events),
            # The writer's buffer holds the whole burst: the emitter outruns Redis, and this
            # measures throughput, not the (counted, gap-reported) drop at a full buffer.
            "NARRATION_REDIS_MAX_PENDING": str(max_events),
            "NARRATION_RETENTION_S": "30",
        },
    )


# --------------------------------------------------------------------------- client side


class _Stream:
    """Reads one job's stream: checks ids, counts events, keeps latencies and the end event."""

    def __init__(self, keep_latency: bool) -> None:
        self.keep_latency = keep_latency
        self.events = 0
        self.last_id = 0
        self.terminal: str | None = None
        self.errors: list[str] = []
        self.latencies_ns: list[int] = []
        self.end_fields: dict[str, Any] = {}
        self._sse = SSEParser()

    def feed(self, chunk: bytes, now_ns: int) -> None:
        for frame in self._sse.feed(chunk):
            self._frame(frame, now_ns)

    def _frame(self, frame: SSEFrame, now_ns: int) -> None:
        if frame.id is None:
            if frame.event == "gap":
                self.errors.append(f"gap after {self.last_id}: {frame!r}")
            return
        event_id = int(frame.id)
        if frame.event != "narration":
            self.terminal = frame.event
            return
        if event_id != self.last_id + 1:
            self.errors.append(f"id {event_id} after {self.last_id}")
        self.last_id = event_id
        self.events += 1
        if self.keep_latency or '"bench_end"' in frame.data:
            fields = msgspec.json.decode(frame.data).get("fields", {})
            if "t_ns" in fields:
                self.latencies_ns.append(now_ns - fields["t_ns"])
            if "emit_s" in fields:
                self.end_fields = fields


async def _submit(http: httpx.AsyncClient, server: ServiceProcess, job: Produce) -> str:
    """Submit the benchmark job; its id."""
    body = {"operation": "produce", **job.model_dump()}
    response = await http.post(server.url + "/v1/jobs", json=body)
    response.raise_for_status()
    job_id: str = response.json()["job_id"]
    return job_id


async def _follow(
    http: httpx.AsyncClient, server: ServiceProcess, job_id: str, keep_latency: bool
) -> _Stream:
    """Read the job's stream to its terminal; the stream's ledger."""
    stream = _Stream(keep_latency)
    url = f"{server.url}/v1/jobs/{job_id}/stream"
    async with http.stream("GET", url, headers={"Accept": "text/event-stream"}) as sse:
        async for chunk in sse.aiter_raw():
            stream.feed(chunk, time.time_ns())
            if stream.terminal is not None:
                break
    return stream


async def _run_job(
    http: httpx.AsyncClient, server: ServiceProcess, job: Produce, keep_latency: bool
) -> tuple[_Stream, float]:
    """Submit, stream to the terminal; (the stream's ledger, seconds from submit to terminal)."""
    started = time.perf_counter()
    job_id = await _submit(http, server, job)
    stream = await _follow(http, server, job_id, keep_latency)
    return stream, time.perf_counter() - started


def _ms(values_ns: list[int], fraction: float) -> float:
    ordered = sorted(values_ns)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1e6


async def _measure(stores: dict[str, str], quick: bool) -> dict[str, dict[str, Any]]:
    """Throughput and latency of every store, each on its own server; the throughput repeats
    alternate between the stores, so that drift and load hit them alike (same-run ratios)."""
    events = 30_000 if quick else 200_000
    rate, seconds = (5_000, 1) if quick else (10_000, 3)
    repeats = 1 if quick else 3
    servers = {name: _server(url, max_events=events + 10).start() for name, url in stores.items()}
    results: dict[str, dict[str, Any]] = {name: {"events": events} for name in stores}
    problems: dict[str, list[str]] = {name: [] for name in stores}
    rates: dict[str, list[float]] = {name: [] for name in stores}
    emit_rates: dict[str, list[float]] = {name: [] for name in stores}
    try:
        timeout = httpx.Timeout(60.0, connect=5.0)
        async with httpx.AsyncClient(timeout=timeout) as http:
            for server in servers.values():
                await server.wait_healthy_async(30.0)
                await _run_job(http, server, Produce(mode="fast", count=2000), False)  # warm-up
            for repeat in range(repeats):
                order = list(servers.items())
                for name, server in order[::-1] if repeat % 2 else order:  # each goes first
                    job = Produce(mode="fast", count=events)
                    stream, elapsed = await _run_job(http, server, job, False)
                    problems[name] += _check(stream, events + 1)
                    rates[name].append(events / elapsed)
                    emit_s = stream.end_fields.get("emit_s")
                    if emit_s:
                        emit_rates[name].append(events / emit_s)
            for name, server in servers.items():
                paced = rate * seconds
                job = Produce(mode="paced", count=paced, rate=rate)
                stream, _ = await _run_job(http, server, job, True)
                problems[name] += _check(stream, paced + 1)
                samples = stream.latencies_ns[len(stream.latencies_ns) // 10 :]  # skip warm-up
                results[name]["latency"] = {
                    "rate_per_s": rate,
                    "samples": len(samples),
                    "p50_ms": _ms(samples, 0.50),
                    "p99_ms": _ms(samples, 0.99),
                    "max_ms": max(samples) / 1e6,
                }
    finally:
        for server in servers.values():
            server.stop(grace=15.0)
            server.remove_log()
    for name, result in results.items():
        result["events_per_s"] = statistics.median(rates[name])
        result["events_per_s_runs"] = [round(value) for value in rates[name]]
        if emit_rates[name]:
            result["emit_events_per_s"] = statistics.median(emit_rates[name])
        result["problems"] = problems[name]
    return results


async def _idle_streams(store: str, redis_port: int, count: int) -> dict[str, Any]:
    """`count` clients on one quiet job: Redis connections held, then the wake-up time."""
    server = _server(store, max_events=1000).start()
    problems: list[str] = []
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
    watcher = aioredis.Redis(port=redis_port)
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(60.0), limits=limits) as http:
            await server.wait_healthy_async(30.0)
            job_id = await _submit(http, server, Produce(mode="idle"))
            ended: list[float] = []

            async def watch() -> None:
                stream = await _follow(http, server, job_id, keep_latency=False)
                ended.append(time.perf_counter())
                if stream.terminal != "cancelled":
                    problems.append(f"terminal {stream.terminal!r}")

            watchers = [asyncio.create_task(watch()) for _ in range(count)]
            for _ in range(600):  # bounded polls: nothing to wait on but the server's count
                health = (await http.get(server.url + "/health")).json()
                if health["streams_open"] >= count:
                    break
                await asyncio.sleep(0.1)
            blocked = count
            for _ in range(100):  # until no XREAD blocks: the job's replica follows its readers
                clients = await client_list(watcher)
                blocked = blocked_xreads(clients)
                if blocked == 0:
                    break
                await asyncio.sleep(0.05)
            held = len(clients) - 1  # not this watcher's own
            started = time.perf_counter()
            (await http.delete(f"{server.url}/v1/jobs/{job_id}")).raise_for_status()
            await asyncio.wait_for(asyncio.gather(*watchers), 60)
    finally:
        await watcher.aclose()
        server.stop(grace=15.0)
        server.remove_log()
    waits = sorted(end - started for end in ended)
    return {
        "streams": count,
        "streams_open": health["streams_open"],
        "redis_connections": held,
        "blocked_xreads": blocked,
        "wake_all_ms": waits[-1] * 1000 if waits else None,
        "wake_p50_ms": waits[len(waits) // 2] * 1000 if waits else None,
        "problems": problems if len(ended) == count else [*problems, f"{len(ended)} ended"],
    }


def _check(stream: _Stream, expected: int) -> list[str]:
    problems = list(stream.errors)
    if stream.terminal != "done":
        problems.append(f"terminal {stream.terminal!r}")
    if stream.events != expected:
        problems.append(f"{stream.events} events, expected {expected}")
    return problems


def run(quick: bool = False) -> dict[str, Any]:
    """Both stores, side by side: throughput and latency (see the module doc)."""
    try:
        redis = RedisServer.start()
    except (FileNotFoundError, RuntimeError) as exc:
        return {"skipped": f"no redis-server: {exc}", "quick": quick}
    try:
        stores = {
            "memory": "memory://",
            "redis": redis.url(prefix=f"bench-{os.getpid()}:"),
        }
        results = asyncio.run(_measure(stores, quick))
        idle = asyncio.run(_idle_streams(stores["redis"], redis.port, 100 if quick else 1000))
    finally:
        redis.stop()
    if idle["problems"]:
        results["redis"]["problems"] += [f"idle streams: {p}" for p in idle["problems"]]
    through_redis = results["redis"]["events_per_s"]
    runs = results["redis"]["events_per_s_runs"], results["memory"]["events_per_s_runs"]
    pairs = zip(*runs, strict=True)
    return {
        "quick": quick,
        **results,
        "redis_vs_memory": through_redis / results["memory"]["events_per_s"],
        # Per repeat (run back to back): the spread the median ratio hides.
        "redis_vs_memory_runs": [round(redis / memory, 3) for redis, memory in pairs],
        "redis_idle_streams": idle,
        "targets": {
            "redis_events_per_s_min": TARGET_EVENTS_PER_S,
            "redis_events_per_s_met": through_redis >= TARGET_EVENTS_PER_S,
        },
        "failures": {name: r["problems"] for name, r in results.items() if r["problems"]},
    }


def format_table(results: dict[str, Any]) -> str:
    """The results as a plain-text table."""
    if "skipped" in results:
        return f"bench_redis skipped: {results['skipped']}"
    lines = [
        "store    events/s (emit->client)   emit rate       latency p50 / p99 / max (ms)",
    ]
    for name in ("memory", "redis"):
        r = results[name]
        lat = r["latency"]
        lines.append(
            f"{name:<8} {r['events_per_s']:>12,.0f}              "
            f"{r.get('emit_events_per_s', 0):>10,.0f}      "
            f"{lat['p50_ms']:.2f} / {lat['p99_ms']:.2f} / {lat['max_ms']:.2f}"
            f"  (at {lat['rate_per_s']:,.0f} ev/s)"
        )
    target = results["targets"]
    runs = ", ".join(f"{ratio:.2f}" for ratio in results["redis_vs_memory_runs"])
    lines.append(
        f"redis / memory: {results['redis_vs_memory']:.2f} (medians; per repeat, run back to "
        f"back: {runs})"
    )
    lines.append(
        f"target >= {target['redis_events_per_s_min']:,.0f} events/s through Redis: "
        f"{'met' if target['redis_events_per_s_met'] else 'MISSED'}"
    )
    idle = results["redis_idle_streams"]
    lines.append(
        f"{idle['streams']:,} idle streams on Redis: {idle['redis_connections']} Redis "
        f"connections held, {idle['blocked_xreads']} blocked XREAD; one entry woke all in "
        f"{idle['wake_all_ms']:.0f} ms (median {idle['wake_p50_ms']:.0f} ms)"
    )
    if results["failures"]:
        lines.append(f"FAILURES: {results['failures']}")
    return "\n".join(lines)


def main() -> None:
    """Command line: print the table (or JSON with --json)."""
    table_main(__doc__, run, format_table)


if __name__ == "__main__":
    main()
