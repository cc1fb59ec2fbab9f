"""Prometheus metrics at `GET /metrics` (the `narration-core[metrics]` extra: prometheus-client).

Job metrics are counted as jobs start and end (the runner calls `submitted` and `finished`);
everything the emit path or the stores already count (events appended and dropped, retained
bytes, Redis errors, lease renewals, failovers) is read from those counters when `/metrics` is
scraped and about once a second, never counted again on the emit path.

Several worker processes on one port: with `PROMETHEUS_MULTIPROC_DIR` set (prometheus-client's
multiprocess mode), every process writes its values there and any one of them answers
`/metrics` with the sum; gauges add up the live processes' values.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response

from ..protocol import EVENT_GAP
from .auth import Reader

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ..jobs import Job
    from .app import ServerState

__all__ = ["ServerMetrics", "install_metrics"]

SYNC_EVERY_S = 1.0
_TS = re.compile(rb'"ts":([0-9.eE+-]+)')
_GAP = b"event: " + EVENT_GAP.encode()
_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600, float("inf"))
_LAG_SAMPLE_S = 0.01  # the delivery lag is timed for one batch per this interval at most
_monotonic = time.monotonic
_LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, float("inf"))


def _multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class ServerMetrics:
    """The metrics of one server (its own registry, so two servers in one process never mix)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self._next_lag_sample = 0.0  # monotonic time from which a batch is timed again
        self.registry = registry = CollectorRegistry()
        self.jobs_submitted = Counter(
            "narration_jobs_submitted", "Jobs submitted", ["operation"], registry=registry
        )
        self.jobs_running = Gauge(
            "narration_jobs_running",
            "Jobs running now",
            ["operation"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.jobs_finished = Counter(
            "narration_jobs_finished",
            "Jobs that reached a final state",
            ["operation", "state"],
            registry=registry,
        )
        self.job_duration = Histogram(
            "narration_job_duration_seconds",
            "Time from a job's start to its final state",
            ["operation", "state"],
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        self.events_appended = Counter(
            "narration_events_appended", "Events appended to job logs", registry=registry
        )
        self.events_dropped = Counter(
            "narration_events_dropped",
            "Events dropped (retention limits, or a store that could not keep up)",
            registry=registry,
        )
        self.gaps = Counter(
            "narration_stream_gaps", "Gap frames sent to stream readers", registry=registry
        )
        self.bytes_retained = Gauge(
            "narration_bytes_retained",
            "Bytes of events held in memory by job logs",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.streams_open = Gauge(
            "narration_streams_open",
            "Jobs with at least one open event stream",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.subscribers = Gauge(
            "narration_stream_subscribers",
            "Open event stream connections (SSE readers)",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.delivery_lag = Histogram(
            "narration_stream_delivery_lag_seconds",
            "Time from an event's emission to its frame being sent (last event of a batch; "
            "one batch per 10 ms at most)",
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self.store_errors = Counter(
            "narration_store_errors", "Failed calls to the store backend", registry=registry
        )
        self.lease_renewals = Counter(
            "narration_redis_lease_renewals", "Redis lease renewal rounds", registry=registry
        )
        self.failovers = Counter(
            "narration_redis_failovers",
            "Jobs of a lost replica ended here (Redis lease expired)",
            registry=registry,
        )
        # Counts carried over from finished jobs, and what was already reported.
        self._finished_appended = 0
        self._finished_dropped = 0
        self._reported: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    # ---------------------------------------------------------------- job hooks (the runner)

    def submitted(self, job: Job) -> None:
        operation = _operation(job)
        self.jobs_submitted.labels(operation).inc()
        self.jobs_running.labels(operation).inc()

    def finished(self, job: Job) -> None:
        operation, record = _operation(job), job.record
        state = str(record.state)
        self.jobs_running.labels(operation).dec()
        self.jobs_finished.labels(operation, state).inc()
        started = record.started_at or record.created_at
        self.job_duration.labels(operation, state).observe(
            max((record.finished_at or time.time()) - started, 0.0)
        )
        self._finished_appended += job.log.count()
        self._finished_dropped += int(getattr(job.log, "dropped", 0))

    # ---------------------------------------------------------------- streams

    def frames_sent(self, frames: list[bytes]) -> None:
        """A batch of SSE frames went out: count a leading gap, time the last event (of one
        batch per `_LAG_SAMPLE_S` at most: at low rates timing every batch cost ~10% of the
        server's CPU per event)."""
        if frames[0].startswith(_GAP):
            self.gaps.inc()
        now = _monotonic()
        if now < self._next_lag_sample:
            return
        self._next_lag_sample = now + _LAG_SAMPLE_S
        for frame in reversed(frames[-2:]):
            found = _TS.search(frame)
            if found is not None:
                with contextlib.suppress(ValueError):
                    self.delivery_lag.observe(max(time.time() - float(found[1]), 0.0))
                return

    # ---------------------------------------------------------------- counters read in

    def sync(self) -> None:
        """Bring the counters kept elsewhere (logs, stores, streams) into the metrics."""
        state = self.state
        store = state.store
        live = list(state.jobs.live.values())
        self._advance(
            self.events_appended,
            "appended",
            self._finished_appended + sum(job.log.count() for job in live),
        )
        # (Each log counts its own drops: retention limits, or a Redis store's full buffer.)
        dropped = self._finished_dropped + sum(int(getattr(j.log, "dropped", 0)) for j in live)
        self._advance(self.events_dropped, "dropped", dropped)
        self._advance(self.store_errors, "errors", int(getattr(store, "errors", 0)))
        self._advance(self.lease_renewals, "renewals", int(getattr(store, "lease_renewals", 0)))
        self._advance(self.failovers, "failovers", int(getattr(store, "reaped", 0)))
        retained = getattr(store, "retained_bytes", None)
        if retained is not None:
            self.bytes_retained.set(retained())
        self.streams_open.set(len(state.streams.followed))
        self.subscribers.set(state.streams.open)

    def _advance(self, counter: Counter, name: str, total: int) -> None:
        delta = total - self._reported.get(name, 0)
        if delta > 0:
            counter.inc(delta)
            self._reported[name] = total

    def exposition(self) -> bytes:
        """The Prometheus text of this server (of every process, in multiprocess mode)."""
        self.sync()
        if _multiprocess():
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)

    # ---------------------------------------------------------------- lifetime

    def start(self) -> None:
        """Sync about once a second (other processes' scrapes read what this one wrote)."""
        if self._task is None:
            self._task = asyncio.create_task(self._sync_loop(), name="narration-metrics")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if _multiprocess():
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(SYNC_EVERY_S)
            with contextlib.suppress(Exception):
                self.sync()


def _operation(job: Job) -> str:
    return str(job.record.operation.get("operation", "unknown"))


def install_metrics(app: FastAPI, state: ServerState) -> ServerMetrics:
    """Count `state`'s jobs, logs and streams, and answer `GET /metrics` on `app`."""
    metrics = ServerMetrics(state)
    state.jobs.observer = metrics
    state.streams.on_frames = metrics.frames_sent

    @app.get("/metrics", include_in_schema=False)  # aggregate counts: any `read` key scrapes
    async def prometheus_metrics(_: Request, __: Reader) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return metrics
