"""The server side of the stream benchmarks, run in its own process.

    python -m benchmarks._stream_server --impl ours|theirs [--loop asyncio|uvloop] ...

Serves narration's `create_app()` (`ours`) or the sse-starlette reference (`theirs`) under
uvicorn on `--host`/`--port` (default 127.0.0.1 and an ephemeral port; the port is printed as
`PORT <n>` on stdout), plus the same control routes for both, which run the producer *inside*
the server process as a job's handler would:

- `POST /bench/jobs {"count": n}` -> `{"jobs": [ids]}`: n idle jobs (no events).
- `POST /bench/produce {...}` -> waits until `streams` subscribers are connected, then emits
  `events` per job, completes every job and answers with the producer's timings. Modes: as
  fast as possible (one task per job, in that job's context, yielding to the loop every
  `batch` events), `block` (the same, timing every `block` emits: the flat-cost check), and
  paced (`rate` events/s in total, each event carrying `t_ns`, the emit-time
  `time.time_ns()`): ONE task for all jobs, a single timer chain, which at each wake-up emits
  every event that is due (job k's i-th event is due at k / rate + i * jobs / rate), so the
  producer costs both servers as little as it can; it reports the pacing that actually
  happened (wake-ups, events per wake-up, gaps between wake-ups).
- `GET /bench/stats` -> CPU seconds, RSS, open streams, jobs, open-file limit.
- `POST /bench/tracemalloc`: start tracing (a baseline); `?top=N`: the N biggest growths since.

SIGTERM (or Ctrl-C) stops it gracefully, `--profile` written; `benchmarks._server_process`
runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import gc
import itertools
import resource
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
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

    async def paced(
        self, job_ids: list[str], events: int, rate: float, t0: float
    ) -> list[tuple[float, int]]:
        """Emit `events` into each job at `rate` events/s in all from one timer chain; the
        (loop time, events emitted) of each wake-up."""
        raise NotImplementedError

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

    def stream_port(self) -> int | None:
        """The port streams are read on, when not the control routes' (the raw floor)."""
        return None


def _due_now(
    loop: asyncio.AbstractEventLoop, t0: float, interval: float, total: int
) -> tuple[float, int]:
    """(now, how many of the `total` events are due by now): event k is due at t0 + k * interval."""
    now = loop.time()
    return now, min(total, int((now - t0) / interval) + 1)


async def _wait_until(loop: asyncio.AbstractEventLoop, due: float) -> None:
    delay = due - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def _paced_batches(
    total: int, rate: float, t0: float, wakeups: list[tuple[float, int]]
) -> AsyncIterator[range]:
    """The indexes of the `total` events due at each wake-up of one timer chain (event k is
    due at t0 + k / rate); each wake-up's (loop time, events due) is added to `wakeups`."""
    loop, interval, done = asyncio.get_running_loop(), 1.0 / rate, 0
    while done < total:
        await _wait_until(loop, t0 + done * interval)
        now, due = _due_now(loop, t0, interval, total)
        wakeups.append((now, due - done))
        yield range(done, due)
        done = due


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

    async def paced(
        self, job_ids: list[str], events: int, rate: float, t0: float
    ) -> list[tuple[float, int]]:
        from narration import n
        from narration.context import attach

        def entered(job_id: str) -> contextvars.Context:
            ctx = contextvars.copy_context()  # that job's context, as its handler runs in
            ctx.run(attach, self.state.jobs.live[job_id].context)
            return ctx

        contexts = [entered(job_id) for job_id in job_ids]
        jobs, wakeups = len(job_ids), []
        async for batch in _paced_batches(events * jobs, rate, t0, wakeups):
            for k in batch:
                i = k // jobs
                contexts[k % jobs].run(n, "tick", f"tick {i}", i=i, t_ns=time.time_ns())
        return wakeups

    async def run_job(self, job_id: str, spec: dict[str, Any], t0: float) -> list[float]:
        from narration import n, narration_context

        events, batch = int(spec["events"]), int(spec.get("batch", 256))
        block = spec.get("block")
        blocks: list[float] = []
        with narration_context(self.state.jobs.live[job_id].context):
            if block:  # CPU time of each `block` emits (the emits only, not the yields)
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
        store = self.state.store  # the memory store counts every job it holds
        return len(store) if hasattr(store, "__len__") else len(self.state.jobs.live)


class TheirsProducer(Producer):
    """Emits with the reference's `emit()` (which awaits full subscriber queues)."""

    def __init__(self, app: FastAPI) -> None:
        self.ref = app.state.ref

    async def make_jobs(self, count: int) -> list[str]:
        return [self.ref.create_job("bench-stream").job_id for _ in range(count)]

    async def paced(
        self, job_ids: list[str], events: int, rate: float, t0: float
    ) -> list[tuple[float, int]]:
        jobs_list = [self.ref.jobs[job_id] for job_id in job_ids]
        emit = self.ref.emit
        jobs, wakeups = len(job_ids), []
        async for batch in _paced_batches(events * jobs, rate, t0, wakeups):
            for k in batch:
                i = k // jobs
                await emit(jobs_list[k % jobs], "tick", f"tick {i}", i=i, t_ns=time.time_ns())
        return wakeups

    async def run_job(self, job_id: str, spec: dict[str, Any], t0: float) -> list[float]:
        events, batch = int(spec["events"]), int(spec.get("batch", 256))
        job, emit = self.ref.jobs[job_id], self.ref.emit
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


def _pacing(wakeups: list[tuple[float, int]], since: float) -> dict[str, Any]:
    """How the paced producer actually ran after `since`: wake-ups, events per wake-up, and
    the gaps between wake-ups (µs), as medians, p99 and max."""
    kept = [(t, count) for t, count in wakeups if t >= since]
    if len(kept) < 2:
        return {}
    gaps = sorted((b[0] - a[0]) * 1e6 for a, b in itertools.pairwise(kept))
    sizes = sorted(count for _, count in kept)

    def q(values: list[float] | list[int], p: float) -> float:
        return float(values[min(len(values) - 1, int(p * len(values)))])

    return {
        "wakeups": len(kept),
        "events_per_wakeup": {"p50": q(sizes, 0.5), "p99": q(sizes, 0.99), "max": sizes[-1]},
        "gap_us": {"p50": q(gaps, 0.5), "p99": q(gaps, 0.99), "max": gaps[-1]},
    }


class BareProducer(Producer):
    """Emits into a floor: one encode, then per subscriber a list append and a future
    (`floor_uvicorn.py`) or a transport write (`floor_asyncio.py`)."""

    def __init__(self, floor: Any) -> None:
        self.floor = floor

    async def make_jobs(self, count: int) -> list[str]:
        return [self.floor.create_job().job_id for _ in range(count)]

    async def paced(
        self, job_ids: list[str], events: int, rate: float, t0: float
    ) -> list[tuple[float, int]]:
        jobs_list = [self.floor.jobs[job_id] for job_id in job_ids]
        emit = self.floor.emit
        jobs, wakeups = len(job_ids), []
        async for batch in _paced_batches(events * jobs, rate, t0, wakeups):
            for k in batch:
                i = k // jobs
                emit(jobs_list[k % jobs], "tick", f"tick {i}", i=i, t_ns=time.time_ns())
        return wakeups

    async def run_job(self, job_id: str, spec: dict[str, Any], t0: float) -> list[float]:
        events, batch = int(spec["events"]), int(spec.get("batch", 256))
        job, emit = self.floor.jobs[job_id], self.floor.emit
        for start in range(0, events, batch):
            for i in range(start, min(start + batch, events)):
                emit(job, "tick", f"tick {i}", i=i)
            await asyncio.sleep(0)
        return []

    async def finish(self, job_id: str) -> None:
        self.floor.finish(self.floor.jobs.pop(job_id))

    def open_streams(self) -> int:
        return int(self.floor.open_streams)

    def jobs(self) -> int:
        return len(self.floor.jobs)

    def stream_port(self) -> int | None:
        port = getattr(self.floor, "port", None)  # the raw floor's own listening port
        return int(port) if port else None


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
        began = time.perf_counter()
        pacing: dict[str, Any] = {}
        if rate:
            start = loop.time() + 0.05
            wakeups = await producer.paced(job_ids, int(spec["events"]), float(rate), start)
            blocks: list[list[float]] = []
            pacing = _pacing(wakeups, start + float(spec.get("warmup", 0.0)))
        else:
            blocks = await asyncio.gather(
                *(producer.run_job(job_id, spec, 0.0) for job_id in job_ids)
            )
        emitted = time.perf_counter() - began
        for job_id in job_ids:
            await producer.finish(job_id)
        return {"emit_s": emitted, "blocks_us": blocks[0] if blocks else [], "pacing": pacing}

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
            "stream_port": producer.stream_port(),
            "jobs": producer.jobs(),
            "nofile": nofile,
        }


def build(
    impl: str, max_events: int, max_running: int, store: str | None = None
) -> tuple[Any, FastAPI, Producer]:
    """(the ASGI app to serve, the FastAPI app for the control routes, the producer); `store`
    is narration's store URL (the memory store when None)."""
    if impl == "bare":
        from .floor_uvicorn import FloorApp

        control = FastAPI()
        floor = FloorApp(control)
        return floor, control, BareProducer(floor)
    if impl == "raw":
        from .floor_asyncio import RawFloor

        raw = RawFloor()
        control = FastAPI()

        async def listen() -> None:
            await raw.start("127.0.0.1")

        control.router.on_startup.append(listen)
        return control, control, BareProducer(raw)
    app, producer = _build(impl, max_events, max_running, store)
    return app, app, producer


def _build(
    impl: str, max_events: int, max_running: int, store: str | None
) -> tuple[FastAPI, Producer]:
    if impl == "ours":
        from narration.server import create_app

        app = create_app(
            store=store,
            hold_unhandled=True,
            retention_s=1.0,
            max_events=max_events,
            max_running=max_running,
        )
        return app, OursProducer(app)
    from .reference_sse_starlette import create_reference_app

    app = create_reference_app()
    return app, TheirsProducer(app)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="stream benchmark server")
    parser.add_argument("--impl", choices=("ours", "theirs", "bare", "raw"), default="ours")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--max-events", type=int, default=100_000)
    parser.add_argument("--max-running", type=int, default=100_000)
    parser.add_argument("--store", help="ours: narration's store URL (default: memory)")
    parser.add_argument("--profile", help="write a pyinstrument profile (text) here at exit")
    args = parser.parse_args(argv)
    nofile = raise_nofile_limit()
    app, control, producer = build(args.impl, args.max_events, args.max_running, args.store)
    add_control_routes(control, producer, nofile)
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
