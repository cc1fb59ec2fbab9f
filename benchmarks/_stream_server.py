"""The server side of the stream benchmarks, run in its own process.

    python -m benchmarks._stream_server --impl ours|theirs [--loop asyncio|uvloop] ...

Serves narration's `create_app()` (`ours`) or the sse-starlette reference (`theirs`) under
uvicorn on `--host`/`--port` (default 127.0.0.1 and an ephemeral port; the port is printed as
`PORT <n>` on stdout), plus the same control routes for both, which run the producer *inside*
the server process as a job's handler would:

- `POST /bench/jobs {"count": n}` -> `{"jobs": [ids]}`: n idle jobs (no events).
- `POST /bench/produce {...}` -> waits until `streams` subscribers are connected, then emits
  `events` per job from one task per job (in that job's context), completes every job and
  answers with the producer's timings. Modes: as fast as possible (yielding to the loop every
  `batch` events), paced (`rate` events/s in total, each event carrying `t_ns`, the
  emit-time `time.time_ns()`), and `block` (time every `block` emits: the flat-cost check).
- `GET /bench/stats` -> CPU seconds, RSS, open streams, jobs, open-file limit.
- `POST /bench/tracemalloc`: start tracing (a baseline); `?top=N`: the N biggest growths since.

SIGTERM (or Ctrl-C) stops it gracefully, `--profile` written; `benchmarks._server_process`
runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import signal
import socket
import sys
import time
from typing import Any

import uvicorn
from fastapi import FastAPI, Request

__all__ = ["main", "raise_nofile_limit", "rss_bytes"]


def rss_bytes() -> int:
    """This process's resident set size, in bytes (Linux /proc; else the peak)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def raise_nofile_limit() -> int:
    """Raise the soft open-file limit to the hard one; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


# --------------------------------------------------------------------------- producers


class Producer:
    """What `/bench/produce` drives: make jobs, emit into one, finish one, count streams."""

    async def make_jobs(self, count: int) -> list[str]:
        raise NotImplementedError

    async def run_job(self, job_id: str, spec: dict[str, Any], t0: float) -> list[float]:
        raise NotImplementedError

    async def finish(self, job_id: str) -> None:
        raise NotImplementedError

    def open_streams(self) -> int:
        raise NotImplementedError

    def jobs(self) -> int:
        raise NotImplementedError


async def _pace(loop: asyncio.AbstractEventLoop, due: float) -> None:
    delay = due - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)


class OursProducer(Producer):
    """Emits with `n()` inside the job's narration context, as a job handler does."""

    def __init__(self, app: FastAPI) -> None:
        from narration.server.app import server_state

        self.state = server_state(app)

    async def make_jobs(self, count: int) -> list[str]:
        from narration.operations import Operation

        submit = self.state.jobs.submit
        op = Operation.hive_list()
        return [(await submit(op, correlation_id="bench-stream")).job_id for _ in range(count)]

    async def run_job(self, job_id: str, spec: dict[str, Any], t0: float) -> list[float]:
        from narration import n, narration_context

        events, batch = int(spec["events"]), int(spec.get("batch", 256))
        rate, block = spec.get("rate"), spec.get("block")
        blocks: list[float] = []
        with narration_context(self.state.jobs.live[job_id].context):
            if rate:  # paced: `rate` events/s for this job, starting at t0
                loop, interval = asyncio.get_running_loop(), 1.0 / float(rate)
                for i in range(events):
                    await _pace(loop, t0 + i * interval)
                    n("tick", f"tick {i}", i=i, t_ns=time.time_ns())
            elif block:  # CPU time of each `block` emits (the emits only, not the yields)
                spent, perf = 0, time.thread_time_ns
                for start in range(0, events, batch):
                    begin = perf()
                    for i in range(start, min(start + batch, events)):
                        n("tick", f"tick {i}", i=i)
                    spent += perf() - begin
                    if (start + batch) % int(block) == 0 or start + batch >= events:
                        blocks.append(spent / 1e3)  # µs
                        spent = 0
                    await asyncio.sleep(0)
            else:
                for start in range(0, events, batch):
                    for i in range(start, min(start + batch, events)):
                        n("tick", f"tick {i}", i=i)
                    await asyncio.sleep(0)
        return blocks

    async def finish(self, job_id: str) -> None:
        await self.state.jobs.complete(job_id)

    def open_streams(self) -> int:
        return int(self.state.streams.open)

    def jobs(self) -> int:
        return len(self.state.store)


class TheirsProducer(Producer):
    """Emits with the reference's `emit()` (which awaits full subscriber queues)."""

    def __init__(self, app: FastAPI) -> None:
        self.ref = app.state.ref

    async def make_jobs(self, count: int) -> list[str]:
        return [self.ref.create_job("bench-stream").job_id for _ in range(count)]

    async def run_job(self, job_id: str, spec: dict[str, Any], t0: float) -> list[float]:
        events, batch = int(spec["events"]), int(spec.get("batch", 256))
        rate = spec.get("rate")
        job, emit = self.ref.jobs[job_id], self.ref.emit
        if rate:
            loop, interval = asyncio.get_running_loop(), 1.0 / float(rate)
            for i in range(events):
                await _pace(loop, t0 + i * interval)
                await emit(job, "tick", f"tick {i}", i=i, t_ns=time.time_ns())
        else:
            for start in range(0, events, batch):
                for i in range(start, min(start + batch, events)):
                    await emit(job, "tick", f"tick {i}", i=i)
                await asyncio.sleep(0)
        return []

    async def finish(self, job_id: str) -> None:
        job = self.ref.jobs.pop(job_id)
        await self.ref.finish(job)

    def open_streams(self) -> int:
        return int(self.ref.open_streams)

    def jobs(self) -> int:
        return len(self.ref.jobs)


def add_control_routes(app: FastAPI, producer: Producer, nofile: int) -> None:
    """The `/bench/*` routes (same for both implementations)."""

    @app.post("/bench/jobs")
    async def make_jobs(request: Request) -> dict[str, Any]:
        spec = await request.json()
        return {"jobs": await producer.make_jobs(int(spec["count"]))}

    @app.post("/bench/produce")
    async def produce(request: Request) -> dict[str, Any]:
        spec = await request.json()
        job_ids: list[str] = spec["jobs"]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(spec.get("connect_timeout", 60))
        while producer.open_streams() < int(spec.get("streams", 0)):
            if loop.time() > deadline:
                return {"error": f"only {producer.open_streams()} streams connected"}
            await asyncio.sleep(0.005)
        rate = spec.get("rate")
        per_job = {**spec, "rate": float(rate) / len(job_ids)} if rate else spec
        start = loop.time() + (0.05 if rate else 0.0)
        offsets = [k / float(rate) for k in range(len(job_ids))] if rate else [0.0] * len(job_ids)
        began = time.perf_counter()
        blocks = await asyncio.gather(
            *(
                producer.run_job(job_id, per_job, start + offset)
                for job_id, offset in zip(job_ids, offsets, strict=True)
            )
        )
        emitted = time.perf_counter() - began
        for job_id in job_ids:
            await producer.finish(job_id)
        return {"emit_s": emitted, "blocks_us": blocks[0] if blocks else []}

    baseline: list[Any] = []

    @app.post("/bench/tracemalloc")
    async def traced(top: int = 0, group: str = "lineno") -> dict[str, Any]:
        """Start tracing and take a baseline (top=0), or the `top` growths since it."""
        import tracemalloc

        gc.collect()
        if not top:
            if not tracemalloc.is_tracing():
                tracemalloc.start(8)
            baseline[:] = [tracemalloc.take_snapshot()]
            return {"baseline": True}
        snapshot = tracemalloc.take_snapshot()
        stats = snapshot.compare_to(baseline[0], "traceback" if group == "traceback" else group)
        total = sum(stat.size_diff for stat in stats)
        return {
            "total_growth": total,
            "top": [
                {"size": stat.size_diff, "count": stat.count_diff, "where": stat.traceback.format()}
                for stat in stats[:top]
            ],
        }

    @app.get("/bench/stats")
    async def stats(collect: bool = False) -> dict[str, Any]:
        if collect:
            gc.collect()
        return {
            "cpu_s": time.process_time(),
            "rss": rss_bytes(),
            "open_streams": producer.open_streams(),
            "jobs": producer.jobs(),
            "nofile": nofile,
        }


def build(impl: str, max_events: int, max_running: int) -> tuple[FastAPI, Producer]:
    if impl == "ours":
        from narration.server import create_app

        app = create_app(
            hold_unhandled=True, retention_s=1.0, max_events=max_events, max_running=max_running
        )
        return app, OursProducer(app)
    from .reference_sse_starlette import create_reference_app

    app = create_reference_app()
    return app, TheirsProducer(app)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="stream benchmark server")
    parser.add_argument("--impl", choices=("ours", "theirs"), default="ours")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--max-events", type=int, default=100_000)
    parser.add_argument("--max-running", type=int, default=100_000)
    parser.add_argument("--profile", help="write a pyinstrument profile (text) here at exit")
    args = parser.parse_args(argv)
    nofile = raise_nofile_limit()
    app, producer = build(args.impl, args.max_events, args.max_running)
    add_control_routes(app, producer, nofile)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    config = uvicorn.Config(
        app, loop=args.loop, log_level="warning", backlog=4096, timeout_graceful_shutdown=2
    )
    if args.impl == "ours":
        from narration.server import NarrationServer

        server: uvicorn.Server = NarrationServer(config)
    else:
        server = uvicorn.Server(config)
    # uvicorn stops gracefully on SIGTERM, then raises it again once stopped: ignore that
    # second one, so that the profile is written and the exit code is 0.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    if not args.profile:
        server.run(sockets=[sock])
        sys.exit(0)
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    try:
        server.run(sockets=[sock])
    finally:
        profiler.stop()
        with open(args.profile, "w", encoding="utf-8") as out:
            out.write(profiler.output_text(unicode=True, show_all=False, timeline=False))
    sys.exit(0)


if __name__ == "__main__":
    main()
