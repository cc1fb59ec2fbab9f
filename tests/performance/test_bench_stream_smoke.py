"""Smoke test of `benchmarks/bench_stream.py` and its sse-starlette reference (no timings).

Runs every scenario at its quick size — narration's server in a child process, the reference
server in another, memory scenarios in fresh interpreters — and checks the structure of the
answer and that every event was delivered or accounted for by an exact gap.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import pytest
from benchmarks import bench_stream  # the repo root is on sys.path (pytest `pythonpath`)

run_all = importlib.import_module("benchmarks.run_all")

pytestmark = [pytest.mark.bench, pytest.mark.timeout(120)]


def _figure(value: Any) -> float:
    assert set(value) >= {"median", "min", "max", "runs", "unit"}, value
    assert value["runs"], value
    assert value["min"] <= value["median"] <= value["max"]
    assert math.isfinite(value["median"]) and value["median"] > 0
    return float(value["median"])


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return bench_stream.run(quick=True)


def test_every_event_was_delivered(results: dict[str, Any]) -> None:
    assert results["failures"] == []
    slow = results["slow_reader"]
    assert slow["exact"] is True
    assert slow["received"] + slow["missed"] == slow["events"]
    assert slow["gaps"] >= 1  # the quick sizes make the reader fall behind the cap
    lifecycles = results["lifecycles"]
    assert lifecycles["left_behind"] == {"running": 0, "records": 0, "routes": 0}
    idle = results["idle_streams"]
    assert idle["connected"] == idle["wanted"]
    assert idle["open_after_disconnect"] == 0


def test_ours_and_the_reference_report_every_figure(results: dict[str, Any]) -> None:
    throughput = results["throughput"]
    for key in (
        "ours_lean",
        "theirs_lean",
        "ours_jobclient",
        "theirs_jobclient",
        "ours_one_process_lean",
        "ours_one_process_jobclient",
        "ours_over_theirs_lean",
        "ours_over_theirs_jobclient",
        "ours_us_per_event",
    ):
        _figure(throughput[key])
    for impl in ("ours", "theirs"):
        latency = results["latency"][impl]
        for key in ("p50_ms", "p99_ms", "p999_ms", "max_ms"):
            _figure(latency[key])
        assert latency["samples"] > 0
        assert _figure(latency["p50_ms"]) <= _figure(latency["p99_ms"])
    fanout = results["fanout"]
    for key in ("ours", "theirs", "ours_over_theirs"):
        _figure(fanout[key])
    for count in bench_stream.QUICK.concurrency:
        _figure(results["concurrent_jobs"][f"{count}_jobs"])


def test_memory_figures_and_verdicts(results: dict[str, Any]) -> None:
    memory = results["memory"]
    for key in (
        "idle_job_bytes_tracemalloc",
        "event_bytes_tracemalloc_unread",
        "event_bytes_tracemalloc_encoded",
        "frame_bytes",
    ):
        assert memory[key] > 0, key
    assert [p["jobs"] for p in results["lifecycles"]["points"]] == sorted(
        {
            bench_stream.QUICK.lifecycles // 10,
            bench_stream.QUICK.lifecycles // 2,
            bench_stream.QUICK.lifecycles,
        }
    )
    verdicts = results["verdicts"]
    assert set(verdicts) >= {
        "end_to_end_ev_s",
        "end_to_end_vs_sse_starlette",
        "latency_p50_ms",
        "latency_p99_ms",
        "idle_job_bytes",
        "retained_event_bytes",
        "flat_rss_100k_jobs",
    }
    for verdict in verdicts.values():
        assert verdict["met"] in (True, False, None)


def test_run_all_renders_the_tables(results: dict[str, Any]) -> None:
    data = {
        "machine": run_all.machine(),
        "quick": True,
        "seconds": 1.0,
        "benchmarks": {
            "bench_stream": {"status": "ok", "results": results},
            "bench_redis": {"status": "not available"},
        },
    }
    tables = run_all.render_tables(data)
    assert "The seed's baseline table" in tables
    assert "narration vs sse-starlette" in tables
    assert "`bench_redis`: not available" in tables
    aggregated = run_all.aggregate([{"a": 1.0, "b": {"c": 2}}, {"a": 3.0, "b": {"c": 4}}])
    assert aggregated["a"] == {"median": 2.0, "min": 1.0, "max": 3.0, "runs": [1.0, 3.0]}
    assert run_all.medians(aggregated) == {"a": 2.0, "b": {"c": 3.0}}


async def test_the_latency_run_with_its_floors_delivers_every_event_on_every_server() -> None:
    """`bench_stream --latency 1 --floor` at the quick size: narration, sse-starlette, bare
    uvicorn and the raw asyncio server each deliver every event and report their figures."""
    answer = await bench_stream.latency_only(1, bench_stream.QUICK, floor=True)
    (row,) = answer["rounds"]
    assert [key for key in row if key.endswith("_problems")] == []
    for impl in ("ours", "theirs", "bare", "raw"):
        figures = row[impl]
        assert figures["samples"] > 0, impl
        assert 0 < figures["p50_ms"] <= figures["p99_ms"], impl
        assert figures["server_cpu_us_per_event"] > 0, impl
    assert set(row["ratio"]) == {"p50_ms", "p99_ms", "server_cpu_us_per_event"}
