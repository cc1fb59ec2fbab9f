"""The Redis store scaled out: 1 vs 2 server processes on one port, one Redis vs a Redis Cluster.

Run: `python -m benchmarks.bench_redis_scale [--quick] [--json]` (also part of `make bench`).

`narration serve --workers W` (W = 1, then 2) runs as a child process with this module's
handler, on a private `redis-server` (nothing persisted), then on a private Redis Cluster (3
primaries + 3 replicas, all on this machine). The client, here, submits 1,000 jobs (each
request on a new connection, so the kernel spreads them over the workers), reads every job's
SSE stream at once over real sockets, and checks every event: ids 1..N in order, no gap, one
`done`. Each job narrates `EVENTS` events as fast as it can. Per configuration:

- events/s: all events of all jobs, from the first submit to the last terminal at the client;
- CPU seconds per 1,000 events of the server processes (the workers) and of Redis (every node
  of a cluster), from /proc: what a projection to more cores and nodes is made from;
- Redis memory (`MEMORY USAGE`): a finished job's record, and its log per event.

On this 2-core machine the client, the workers and Redis share the cores: the figures show
the cost per event of each part, not the throughput of a machine with a core per process.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any, Literal

import httpx
import redis.asyncio as aioredis
from pydantic import BaseModel

from narration import n
from narration._process import ServiceProcess
from narration.jobs import Job, JobRegistry
from narration.store.redis.cluster import cluster_client
from narration.store.redis.keys import Keys
from narration.testing.redis_cluster import RedisCluster
from narration.testing.redis_server import RedisServer
from narration.testing.sse import SSEParser

from ._cli import table_main

__all__ = ["RUN_ALL_REPEATS", "run"]

RUN_ALL_REPEATS = 1
REPO = Path(__file__).resolve().parent.parent
_TICKS = os.sysconf("SC_CLK_TCK")
_SERVE = ("serve", "--quiet", "--jobs", "benchmarks.bench_redis_scale:jobs")


class Burst(BaseModel):
    """`count` events as fast as possible (yielding every 32), or none until cancelled."""

    mode: Literal["burst", "idle"]
    count: int = 0


jobs = JobRegistry()


@jobs.operation("burst")
async def _burst(operation: Burst, job: Job) -> None:
    if operation.mode == "idle":
        await asyncio.Event().wait()
    for i in range(1, operation.count + 1):
        n("bench", "event {}", i, i=i)
        if i % 32 == 0:
            await asyncio.sleep(0)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _server(store: str, workers: int) -> ServiceProcess:
    return ServiceProcess(
        f"bench-scale-{workers}",
        [*_SERVE, "--store", store, "--workers", str(workers)],
        env={
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            "NARRATION_RETENTION_S": "120",
            "NARRATION_MAX_RUNNING": "20000",
            "NARRATION_SUBMIT_RATE": "100000/second",
        },
    )


async def _stream(http: httpx.AsyncClient, url: str, expected: int) -> list[str]:
    """Read one stream to its terminal; the problems found (none when all is well)."""
    parser, last, problems, terminal = SSEParser(), 0, [], None
    async with http.stream("GET", url) as response:
        async for chunk in response.aiter_raw():
            for frame in parser.feed(chunk):
                if frame.event == "gap":
                    problems.append(f"gap after {last}")
                elif frame.id is not None and frame.event == "narration":
                    if int(frame.id) != last + 1:
                        problems.append(f"id {frame.id} after {last}")
                    last = int(frame.id)
                elif frame.id is not None:
                    terminal = frame.event
            if terminal is not None:
                break
    if terminal != "done" or last != expected:
        problems.append(f"{last} events then {terminal!r}, expected {expected} then 'done'")
    return problems


async def _load(url: str, job_count: int, events: int) -> tuple[float, list[str], list[str]]:
    """Submit `job_count` bursts and read them all; (seconds, problems, job ids)."""
    fresh = httpx.Limits(max_keepalive_connections=0)
    limits = httpx.Limits(max_connections=job_count + 10, max_keepalive_connections=0)
    timeout = httpx.Timeout(120.0, connect=30.0)
    body = {"operation": "burst", "mode": "burst", "count": events}
    async with (
        httpx.AsyncClient(timeout=timeout, limits=fresh, trust_env=False) as submit,
        httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False) as read,
    ):
        started = time.perf_counter()

        ids: list[str] = []

        async def one() -> list[str]:
            response = await submit.post(url + "/v1/jobs", json=body)
            response.raise_for_status()
            job_id = response.json()["job_id"]
            ids.append(job_id)
            return await _stream(read, f"{url}/v1/jobs/{job_id}/stream", events)

        results = await asyncio.gather(*(one() for _ in range(job_count)))
        elapsed = time.perf_counter() - started
    return elapsed, [problem for problems in results for problem in problems], ids


async def _memory(store: str, prefix: str, job_ids: list[str], events: int) -> dict[str, float]:
    """Redis memory (`MEMORY USAGE`) of finished jobs: their record and log, per job and
    per event, averaged over up to 100 of them."""
    plain = store.split("?")[0]  # without the store's own options
    client: Any = (
        cluster_client(plain, 4) if plain.startswith("redis+cluster") else aioredis.from_url(plain)
    )
    keys = Keys(prefix)
    records, logs = [], []
    try:
        for job_id in job_ids[:100]:
            records.append(await client.memory_usage(keys.job(job_id), samples=0) or 0)
            logs.append(await client.memory_usage(keys.log(job_id), samples=0) or 0)
    finally:
        await client.aclose()
    return {
        "redis_bytes_per_job_record": sum(records) / len(records),
        "redis_bytes_per_event": sum(logs) / len(logs) / (events + 1),
    }


async def _measure(store: str, prefix: str, redis_pids: list[int], workers: int,
                   job_count: int, events: int,
                   primaries: list[int] | None = None) -> dict[str, Any]:  # fmt: skip
    server = _server(store, workers).start()
    try:
        await server.wait_healthy_async(60.0)
        await _load(server.url, 20, 50)  # warm-up: connections, scripts, code paths
        worker_pids = _children(server.pid or 0) or [server.pid or 0]
        cpu_before = [_cpu_s(p) for p in worker_pids], [_cpu_s(p) for p in redis_pids]
        client_before = time.process_time()
        elapsed, problems, job_ids = await _load(server.url, job_count, events)
        client_s = time.process_time() - client_before
        cpu_after = [_cpu_s(p) for p in worker_pids], [_cpu_s(p) for p in redis_pids]
        memory = await _memory(store, prefix, job_ids, events)
    finally:
        server.stop(grace=30.0)
        server.remove_log()
    total = job_count * events
    per_k = 1000 / total
    redis_cpu = [
        after - before for before, after in zip(*(cpu_before[1], cpu_after[1]), strict=True)
    ]
    split = {}
    if primaries is not None:  # a cluster: its primaries' share, and its replicas'
        on_primaries = sum(
            c for pid, c in zip(redis_pids, redis_cpu, strict=True) if pid in primaries
        )
        split = {
            "redis_primaries_cpu_s_per_1k_events": on_primaries * per_k,
            "redis_replicas_cpu_s_per_1k_events": (sum(redis_cpu) - on_primaries) * per_k,
        }
    return {
        "workers": workers,
        "jobs": job_count,
        "events": total,
        "seconds": elapsed,
        "events_per_s": total / elapsed,
        "server_cpu_s_per_1k_events": (sum(cpu_after[0]) - sum(cpu_before[0])) * per_k,
        "redis_cpu_s_per_1k_events": sum(redis_cpu) * per_k,
        **split,
        "client_cpu_s_per_1k_events": client_s * per_k,
        **memory,
        "problems": problems[:10] + ([f"... {len(problems)} in all"] if len(problems) > 10 else []),
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Every configuration in turn (see the module doc)."""
    job_count, events = (30, 20) if quick else (1000, 100)
    try:
        single = RedisServer.start()
    except (FileNotFoundError, RuntimeError) as exc:
        return {"skipped": f"no redis-server: {exc}", "quick": quick}
    results: dict[str, Any] = {"quick": quick}
    try:
        for workers in (1, 2):
            prefix = f"scale-{os.getpid()}-{workers}:"
            url = single.url(prefix=prefix)
            results[f"redis_{workers}w"] = asyncio.run(
                _measure(url, prefix, [single.process.pid], workers, job_count, events)
            )
    finally:
        single.stop()
    try:
        cluster = RedisCluster.start()
    except (FileNotFoundError, RuntimeError, OSError) as exc:
        results["cluster_skipped"] = f"no Redis Cluster: {exc}"
        return results
    try:
        pids = [node.process.pid for node in cluster.nodes]
        primaries = [n.process.pid for n in cluster.nodes if n.port in cluster.primaries()]
        for workers in (1, 2):
            prefix = f"scale-{os.getpid()}-{workers}:"
            url = cluster.url(prefix=prefix)
            results[f"cluster_{workers}w"] = asyncio.run(
                _measure(url, prefix, pids, workers, job_count, events, primaries)
            )
    finally:
        cluster.stop()
    results["failures"] = {
        name: r["problems"] for name, r in results.items() if isinstance(r, dict) and r["problems"]
    }
    return results


def format_table(results: dict[str, Any]) -> str:
    """The results as a plain-text table."""
    if "skipped" in results:
        return f"bench_redis_scale skipped: {results['skipped']}"
    lines = [
        "store, processes  jobs x events  events/s  CPU ms per 1,000 events: server  Redis"
        "  client   Redis B/event  B/record",
    ]
    for name in ("redis_1w", "redis_2w", "cluster_1w", "cluster_2w"):
        r = results.get(name)
        if not isinstance(r, dict):
            continue
        label = f"{'Redis' if name.startswith('redis') else 'Cluster 3+3'}, {r['workers']}"
        lines.append(
            f"{label:<17} {r['jobs']:>5} x {r['events'] // r['jobs']:<5} {r['events_per_s']:>9,.0f}"
            f"  {' ' * 24}{r['server_cpu_s_per_1k_events'] * 1000:>6.1f}"
            f" {r['redis_cpu_s_per_1k_events'] * 1000:>6.1f}"
            f" {r['client_cpu_s_per_1k_events'] * 1000:>7.1f}"
            f"   {r['redis_bytes_per_event']:>13.0f}  {r['redis_bytes_per_job_record']:>8.0f}"
        )
        if "redis_primaries_cpu_s_per_1k_events" in r:
            lines.append(
                f"{'':<17} (Redis: primaries {r['redis_primaries_cpu_s_per_1k_events'] * 1000:.1f},"
                f" replicas {r['redis_replicas_cpu_s_per_1k_events'] * 1000:.1f})"
            )
    if results.get("failures"):
        lines.append(f"FAILURES: {results['failures']}")
    return "\n".join(lines)


def main() -> None:
    """Command line: print the table (or JSON with --json)."""
    table_main(__doc__, run, format_table)


if __name__ == "__main__":
    main()
