"""Smoke test of `benchmarks/bench_redis_scale.py`: a quick run checks every event of every
configuration (1 and 2 processes, one Redis and a cluster) and reports every figure."""

from __future__ import annotations

import pytest
from benchmarks import bench_redis_scale  # the repo root is on sys.path (pytest `pythonpath`)

from narration.testing.redis_server import RedisServer

pytestmark = [pytest.mark.bench, pytest.mark.redis]


def test_bench_redis_scale_quick_run_loses_nothing_and_reports_every_figure(
    redis_server: RedisServer,  # skips (or fails under CI) without redis-server
) -> None:
    results = bench_redis_scale.run(quick=True)  # its own private Redis and cluster
    assert "skipped" not in results and "cluster_skipped" not in results
    assert results["failures"] == {}
    for name in ("redis_1w", "redis_2w", "cluster_1w", "cluster_2w"):
        figures = results[name]
        assert (figures["jobs"], figures["events"], figures["problems"]) == (30, 600, [])
        assert figures["events_per_s"] > 0
        assert figures["server_cpu_s_per_1k_events"] > 0
        assert figures["redis_bytes_per_event"] > 0 and figures["redis_bytes_per_job_record"] > 0
    # Reported for the cluster, split between primaries and replicas; /proc counts CPU in
    # 10 ms ticks, and 600 events can cost each Redis less than one (CI saw 0.0): >= 0 here,
    # the real figure comes from `make bench`'s full run.
    split = results["cluster_1w"]
    assert split["redis_primaries_cpu_s_per_1k_events"] >= 0
    assert split["redis_replicas_cpu_s_per_1k_events"] >= 0
    assert "Cluster 3+3, 2" in bench_redis_scale.format_table(results)
