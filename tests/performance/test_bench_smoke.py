"""Smoke test of `benchmarks/bench_emit.py`: it runs and reports every figure (no timing checks)."""

from __future__ import annotations

import math

import pytest
from benchmarks import bench_emit  # the repo root is on sys.path (pytest `pythonpath`)

from narration import current_context, n
from narration.dispatch import dispatcher

pytestmark = pytest.mark.bench

CASES = ("emit", "below_threshold", "emit_200_contextvars")
PEERS = ("structlog", "logging", "loguru")


def test_bench_emit_quick_run_reports_every_figure() -> None:
    sinks, rank = dispatcher.sinks, dispatcher.min_rank
    results = bench_emit.run(quick=True)

    assert results["unit"] == "ns/call"
    assert results["quick"] is True
    assert results["repeats"] >= 7
    assert results["calls"] > 0
    for case in CASES:
        assert set(results[case]) >= {"narration", *PEERS}, case
        for name, ns in results[case].items():
            assert math.isfinite(ns) and ns > 0, (case, name)
        for peer in PEERS:
            ratio = results["ratios"][case][peer]
            assert math.isclose(ratio, results[case]["narration"] / results[case][peer])
    assert results["emit"]["narration+encode"] > 0
    for case in ("emit", "emit_200_contextvars"):  # the like-for-like pairs
        row, pair = results[case], results["like_for_like"][case]
        assert math.isclose(pair["no_encoding"], row["narration"] / row["structlog-plain"])
        assert math.isclose(pair["json"], row["narration+encode"] / row["structlog"])
    assert results["narration_events_per_second"] > 0
    assert set(results["slowdown_200_contextvars"]) >= {"narration", *PEERS}
    assert set(results["targets"]) == {
        "emit_ns_max",
        "ratio_vs_structlog_max",
        "emit_ns_met",
        "like_for_like_max",
        "like_for_like_met",
        "below_threshold_max",
        "below_threshold_met",
        "ratio_vs_structlog_met",
    }
    assert "structlog" in bench_emit.format_table(results)

    # The run left no trace: sinks, threshold and the caller's context are as they were.
    assert (dispatcher.sinks, dispatcher.min_rank) == (sinks, rank)
    assert current_context().job_id is None
    event = n("after", "the benchmark")
    assert event is not None
    assert event.job_id is None


def test_bench_emit_otel_figures_are_reported() -> None:
    """`--otel` runs in a process of its own (it sets the global OpenTelemetry providers)."""
    import json
    import subprocess
    import sys

    command = [sys.executable, "-m", "benchmarks.bench_emit", "--quick", "--otel", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    otel = json.loads(done.stdout)["otel"]
    assert otel["unit"] == "ns/call"
    for case in bench_emit.OTEL_CASES:
        assert 0 < otel[case] < 1_000_000, (case, otel[case])


def test_bench_emit_redaction_figures_are_reported() -> None:
    from narration.redact import redact_text

    results = bench_emit.run_redaction(quick=True)
    assert results["unit"] == "ns/event"
    for case in bench_emit.REDACT_CASES:
        for name in ("redact_event", "encode_off", "encode_on"):
            assert 0 < results[case][name] < 1_000_000, (case, name)
    assert 0 < results["n_secret_in_text"]["n_on"] < 1_000_000
    assert "secret_in_text" in bench_emit.format_redaction(results)
    assert redact_text("password=x") == "password=[REDACTED]"  # left on after the run
