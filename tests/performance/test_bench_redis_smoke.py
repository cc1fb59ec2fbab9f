"""Smoke test of `benchmarks/bench_redis.py`: a quick run reports every figure, loses nothing."""

from __future__ import annotations

import pytest
from benchmarks import bench_redis  # the repo root is on sys.path (pytest `pythonpath`)

from narration.testing.redis_server import RedisServer

pytestmark = [pytest.mark.bench, pytest.mark.redis]


def test_bench_redis_quick_run_reports_every_figure(redis_server: RedisServer) -> None:
    results = bench_redis.run(quick=True)  # starts its own private redis-server
    assert "skipped" not in results
    assert results["failures"] == {}
    for store in ("memory", "redis"):
        figures = results[store]
        assert figures["events_per_s"] > 0 and figures["emit_events_per_s"] > 0
        latency = figures["latency"]
        assert 0 < latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    assert results["targets"]["redis_events_per_s_min"] == 50_000
    idle = results["redis_idle_streams"]
    assert (idle["streams"], idle["streams_open"], idle["problems"]) == (100, 100, [])
    assert idle["blocked_xreads"] == 0  # the job's replica follows its own readers
    assert idle["redis_connections"] <= 65  # read pool 48, control pool 16, the tail's own
    assert 0 < idle["wake_p50_ms"] <= idle["wake_all_ms"]
