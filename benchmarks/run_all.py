"""Run every benchmark; write `benchmarks/results/latest.json` and docs/PERFORMANCE.md tables.

    python -m benchmarks.run_all            # what `make bench` runs (< 10 min on 2 cores)
    python -m benchmarks.run_all --quick    # smoke: small sizes, writes results/quick.json only

Each benchmark module (`bench_emit`, `bench_stream`, `bench_redis`, `bench_redis_scale`) exposes
`run(quick: bool) -> dict` and is imported lazily; a module that is missing is recorded as
"not available". A module is run `RUN_ALL_REPEATS` times (its own attribute; default 3, 1 with
`--quick`) and every number of its answer becomes `{median, min, max, runs}`; a module that
repeats internally (bench_stream) sets `RUN_ALL_REPEATS = 1` and reports its own spread.

The generated tables go between `<!-- results:start -->` and `<!-- results:end -->` in
docs/PERFORMANCE.md; everything else in that file is prose and is left alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["BENCHMARKS", "aggregate", "machine", "main", "render_tables"]

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
DOC = REPO / "docs" / "PERFORMANCE.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
BENCHMARKS = ("bench_stream", "bench_emit", "bench_redis", "bench_redis_scale")
DEFAULT_REPEATS = 3
BUDGET_S = 540.0  # the whole suite must stay under 10 minutes on a 2-core machine
RESERVE_S = 90.0  # kept for each benchmark still to run when deciding on another repeat
PACKAGES = (
    "narration",
    "msgspec",
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "httpx",
    "httpx-sse",
    "pydantic",
    "redis",
    "hiredis",
    "sse-starlette",
    "orjson",
    "structlog",
    "loguru",
    "pyinstrument",
)


# --------------------------------------------------------------------------- machine


def machine() -> dict[str, Any]:
    """Where and when the figures were measured."""
    cpu = platform.processor() or platform.machine()
    ram = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    ram = round(int(line.split()[1]) / 2**20, 1)
                    break
    except OSError:
        pass
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_gib": ram,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "interpreter": os.path.realpath(sys.executable),  # which build: see PERFORMANCE.md
        "libpython": _libpython(),
        "packages": versions,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git": _git(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _libpython() -> str:
    """How libpython is linked: "shared" (a separate .so, as in pyenv's default build, where
    3.12+ reaches its thread state through a call on every access) or "static"."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            return "shared" if "/libpython" in maps.read() else "static"
    except OSError:
        return "unknown"


def _git() -> str | None:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + (" (with uncommitted changes)" if dirty else "")


# --------------------------------------------------------------------------- running


def aggregate(runs: list[Any]) -> Any:
    """Merge repeated answers: numbers become {median, min, max, runs}; the rest is the first."""
    first = runs[0]
    if isinstance(first, bool) or first is None or isinstance(first, str):
        return first
    if isinstance(first, int | float):
        values = [float(r) for r in runs if isinstance(r, int | float) and not isinstance(r, bool)]
        if len(runs) == 1:
            return first
        return {
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
            "runs": values,
        }
    if isinstance(first, dict):
        return {
            key: aggregate([r[key] for r in runs if isinstance(r, dict) and key in r])
            for key in first
        }
    return first


def _run_one(name: str, quick: bool, deadline: float) -> dict[str, Any]:
    """`name`'s answer, repeated while the suite's time budget allows (at least once)."""
    began = time.perf_counter()
    try:
        module = importlib.import_module(f"benchmarks.{name}")
    except ModuleNotFoundError as exc:
        if exc.name in (f"benchmarks.{name}", "benchmarks"):
            return {"status": "not available"}
        return {"status": "failed", "error": f"import: {exc!r}"}
    wanted = 1 if quick else int(getattr(module, "RUN_ALL_REPEATS", DEFAULT_REPEATS))
    run: Callable[[bool], dict[str, Any]] = module.run
    runs: list[dict[str, Any]] = []
    try:
        while len(runs) < wanted:
            if runs and time.perf_counter() + (time.perf_counter() - began) / len(runs) > deadline:
                break  # one more would overrun the budget: fewer repeats, said so below
            print(f"  {name}: run {len(runs) + 1} of {wanted}", file=sys.stderr, flush=True)
            runs.append(run(quick))
    except Exception:
        return {
            "status": "failed",
            "error": traceback.format_exc(limit=8)[-3000:],
            "seconds": round(time.perf_counter() - began, 1),
        }
    answer = {
        "status": "ok",
        "repeats": len(runs),
        "seconds": round(time.perf_counter() - began, 1),
        "results": aggregate(runs) if len(runs) > 1 else runs[0],
    }
    if len(runs) < wanted:
        answer["note"] = f"{len(runs)} of {wanted} repeats (time budget)"
    return answer


def run_all(quick: bool, only: tuple[str, ...] = BENCHMARKS) -> dict[str, Any]:
    """Run the benchmarks in turn; their answers with the machine they ran on."""
    began = time.perf_counter()
    answer: dict[str, Any] = {"machine": machine(), "quick": quick, "benchmarks": {}}
    for index, name in enumerate(only):
        # Repeats stop early when they would leave too little time for the benchmarks after.
        deadline = began + BUDGET_S - RESERVE_S * (len(only) - index - 1)
        print(f"{name} ...", file=sys.stderr, flush=True)
        result = answer["benchmarks"][name] = _run_one(name, quick, deadline)
        print(f"{name}: {result['status']} ({result.get('seconds', 0)} s)", file=sys.stderr)
    answer["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    answer["seconds"] = round(time.perf_counter() - began, 1)
    return answer


# --------------------------------------------------------------------------- rendering


def _median(value: Any) -> Any:
    return value.get("median") if isinstance(value, dict) else value


def _fmt(value: Any, digits: int = 0, unit: str = "") -> str:
    """`median (min–max)` for a figure, or the plain number."""
    if value is None:
        return "—"
    if isinstance(value, dict) and "median" in value:
        med, low, high = value.get("median"), value.get("min"), value.get("max")
        if med is None:
            return "—"
        text = f"{med:,.{digits}f}{unit}"
        if low is not None and high is not None and (low != high):
            text += f" ({low:,.{digits}f}–{high:,.{digits}f})"
        return text
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}{unit}"
    return str(value)


def _verdict(met: Any) -> str:
    return {True: "**met**", False: "**missed**"}.get(met, "—")


def _ok(bench: dict[str, Any] | None) -> dict[str, Any] | None:
    if bench and bench.get("status") == "ok":
        results: dict[str, Any] = bench["results"]
        return results
    return None


def _machine_block(data: dict[str, Any]) -> list[str]:
    m = data["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    loads = f"{m['load_average'][0]:.2f} before, {m.get('load_average_after', ['?'])[0]} after"
    return [
        f"Measured {m['date']} on **{m['cpu']}**, {m['cores']} cores, {m['ram_gib']} GiB RAM, "
        f"{m['os']}, {m['python']} ({m.get('interpreter', 'interpreter not recorded')}, "
        f"libpython {m.get('libpython', 'not recorded')}; "
        f"commit {m['git']}); 1-minute load average {loads}. "
        f"Whole suite: {data['seconds']:.0f} s.",
        "",
        f"Versions: {versions}.",
        "",
        "Figures are medians of repeated runs with the (min–max) range in brackets.",
        "",
    ]


def _baseline_table(emit: Any, stream: Any) -> list[str]:
    lines = [
        "### The seed's baseline table",
        "",
        "| what | seed target | our target | actual | verdict |",
        "|---|---|---|---|---|",
    ]
    if emit:
        ns = emit["emit"]["narration"]
        ev_s = emit.get("narration_events_per_second")
        ratio = emit["ratios"]["emit"]["structlog"]
        lines.append(
            f"| events/sec: `n()` with job context, no sink | 1,000 ev/s | >= 1,000,000 ev/s/core "
            f"(<= 1,000 ns) | {_fmt(ev_s)} ev/s ({_fmt(ns)} ns) | "
            f"{_verdict(_median(ns) <= 1000)} |"
        )
        lines.append(
            f"| `n()` cost vs structlog, same event | — | <= 0.25x | {_fmt(ratio, 2, 'x')} | "
            f"{_verdict(_median(ratio) <= 0.25)} |"
        )
    else:
        lines.append(
            "| events/sec: `n()` | 1,000 ev/s | >= 1,000,000 ev/s/core | not available | — |"
        )
    if stream:
        v = stream["verdicts"]
        t, lat, mem = stream["throughput"], stream["latency"]["ours"], stream["memory"]
        idle, points = stream["idle_streams"], stream["lifecycles"]["points"]
        c1000 = stream["concurrent_jobs"].get("1000_jobs")
        lines += [
            f"| events/sec end to end, one stream (emit -> SSE -> parsed) | — | >= 100,000 ev/s | "
            f"{_fmt(t['ours_lean'])} ev/s ({_fmt(t['ours_us_per_event'], 2)} µs/event) | "
            f"{_verdict(v['end_to_end_ev_s']['met'])} |",
            f"| concurrent streams, active (every event delivered) | 100 | 1,000 | "
            f"1,000 jobs: {_fmt(c1000)} ev/s in total | "
            f"{_verdict(v['active_streams_1000']['met'])} |",
            f"| concurrent streams, idle connected | — | 10,000 | {idle['connected']:,} "
            f"(server RSS +{idle['bytes_per_stream'] / 1024:,.1f} KiB each) | "
            f"{_verdict(v['idle_streams_10000']['met'])} |",
            f"| memory per idle job | < 1 MB/job | <= 4 KB | "
            f"{mem['idle_job_bytes_tracemalloc']:,.0f} B (tracemalloc), "
            f"{mem['idle_job_bytes_rss']:,.0f} B (RSS) | {_verdict(v['idle_job_bytes']['met'])} |",
            f"| memory per retained event | — | <= 300 B | "
            f"{mem['event_bytes_tracemalloc_unread']:,.0f} B unread, "
            f"{mem['event_bytes_tracemalloc_encoded']:,.0f} B once read "
            f"(its SSE frame alone is {mem['frame_bytes']} B) | "
            f"{_verdict(v['retained_event_bytes']['met'])} |",
            "| RSS over job lifecycles (retention 0) | — | flat over 100k | "
            + ", ".join(f"{p['jobs']:,}: {p['rss_mb']:.1f} MiB" for p in points)
            + f" | {_verdict(v['flat_rss_100k_jobs']['met'])} |",
            f"| latency emit -> delivered, p50 (100 streams, 10k ev/s) | < 1 ms | <= 0.3 ms | "
            f"{_fmt(lat['p50_ms'], 3, ' ms')} | {_verdict(v['latency_p50_ms']['met'])} |",
            f"| latency emit -> delivered, p99 | < 1 ms | <= 1 ms | "
            f"{_fmt(lat['p99_ms'], 3, ' ms')} | {_verdict(v['latency_p99_ms']['met'])} |",
        ]
    else:
        lines.append("| streams, memory, latency | | | not available | — |")
    return [*lines, ""]


def _stream_peer_table(stream: dict[str, Any]) -> list[str]:
    t, lat, fan = stream["throughput"], stream["latency"], stream["fanout"]
    o, th = lat["ours"], lat["theirs"]

    def ratio(a: Any, b: Any) -> str:
        a, b = _median(a), _median(b)
        return f"{a / b:.2f}x" if a and b else "—"

    return [
        "### Streams: narration vs sse-starlette (same run, alternating)",
        "",
        "Reference: FastAPI + sse-starlette `EventSourceResponse`, one bounded `asyncio.Queue` "
        "(1,024) per subscriber, orjson encoding in each subscriber's generator "
        "(`benchmarks/reference_sse_starlette.py`). Server and producer in one process, "
        "the client in another.",
        "",
        "| scenario | narration | sse-starlette | ours / theirs | target |",
        "|---|---|---|---|---|",
        f"| one stream, {t['events']:,} events, lean client (ev/s) | {_fmt(t['ours_lean'])} | "
        f"{_fmt(t['theirs_lean'])} | {_fmt(t['ours_over_theirs_lean'], 2, 'x')} | >= 3x |",
        f"| one stream: server µs per event (lower is better) | "
        f"{_fmt(t['ours_us_per_event'], 2)} | {_fmt(t.get('theirs_us_per_event'), 2)} | "
        f"{ratio(t['ours_us_per_event'], t.get('theirs_us_per_event'))} | — |",
        f"| one stream, `JobClient` (httpx-sse) as the client (ev/s) | "
        f"{_fmt(t['ours_jobclient'])} | {_fmt(t['theirs_jobclient'])} | "
        f"{_fmt(t['ours_over_theirs_jobclient'], 2, 'x')} | — |",
        f"| latency p50, {lat['streams']} streams at {lat['rate']:,} ev/s (ms, lower is better) | "
        f"{_fmt(o['p50_ms'], 3)} | {_fmt(th['p50_ms'], 3)} | {ratio(o['p50_ms'], th['p50_ms'])} "
        "| <= 0.7x |",
        f"| latency p99 (ms) | {_fmt(o['p99_ms'], 3)} | {_fmt(th['p99_ms'], 3)} | "
        f"{ratio(o['p99_ms'], th['p99_ms'])} | <= 0.7x, <= 1 ms |",
        f"| latency p99.9 (ms) | {_fmt(o['p999_ms'], 3)} | {_fmt(th['p999_ms'], 3)} | "
        f"{ratio(o['p999_ms'], th['p999_ms'])} | — |",
        f"| server CPU per event in the latency run (µs, lower is better) | "
        f"{_fmt(o.get('server_cpu_us_per_event'), 1)} | "
        f"{_fmt(th.get('server_cpu_us_per_event'), 1)} | "
        f"{ratio(o.get('server_cpu_us_per_event'), th.get('server_cpu_us_per_event'))} "
        "| <= 0.5x |",
        "| the producer's pacing in that run: events per wake-up p50 / p99, gap between "
        f"wake-ups p50 / p99 (µs) | {_pacing(o)} | {_pacing(th)} | | |",
        f"| fan-out: 1 job -> {fan['subscribers']} subscribers, {fan['events']:,} events "
        f"(deliveries/s) | {_fmt(fan['ours'])} | {_fmt(fan['theirs'])} | "
        f"{_fmt(fan['ours_over_theirs'], 2, 'x')} | >= 3x |",
        "",
        f"One process (server, producer and client on one event loop, as in the test harness): "
        f"{_fmt(t['ours_one_process_lean'])} ev/s with the lean client, "
        f"{_fmt(t['ours_one_process_jobclient'])} ev/s with `JobClient`.",
        "",
    ]


def _pacing(latency: dict[str, Any]) -> str:
    """How the latency run's producer actually paced events (one timer chain for all jobs)."""
    keys = ("events_per_wakeup_p50", "events_per_wakeup_p99", "gap_us_p50", "gap_us_p99")
    values = [_median(latency.get(f"pacing_{key}")) for key in keys]
    if any(value is None for value in values):
        return "—"
    return f"{values[0]:.0f} / {values[1]:.0f}; {values[2]:.0f} / {values[3]:.0f} µs"


def _scale_tables(stream: dict[str, Any]) -> list[str]:
    conc, idle, slow = stream["concurrent_jobs"], stream["idle_streams"], stream["slow_reader"]
    mem, life = stream["memory"], stream["lifecycles"]
    lines = [
        "### Scale and memory (narration)",
        "",
        f"Concurrent jobs, each with its own stream, {conc['total_events']:,} events in total "
        "(every event decoded and its id checked):",
        "",
        "| jobs | events/s in total |",
        "|---|---|",
    ]
    for key, value in conc.items():
        if key.endswith("_jobs"):
            lines.append(f"| {int(key.split('_')[0]):,} | {_fmt(value)} |")
    lines += [
        "",
        "| measure | value |",
        "|---|---|",
        f"| idle connected streams | {idle['connected']:,} of {idle['wanted']:,} "
        f"(open-file limit {idle['nofile_limit']:,}); server RSS {idle['server_rss_before_mb']:.0f}"
        f" -> {idle['server_rss_after_mb']:.0f} MiB, {idle['bytes_per_stream'] / 1024:.1f} KiB "
        f"per stream; {idle['open_after_disconnect']} left open after the clients left |",
        f"| idle job | {mem['idle_job_bytes_tracemalloc']:,.0f} B tracemalloc, "
        f"{mem['idle_job_bytes_rss']:,.0f} B RSS ({mem['idle_jobs']:,} jobs) |",
        f"| retained event, queued (before the log's next loop turn encodes it) | "
        f"{mem.get('event_bytes_tracemalloc_queued', float('nan')):,.0f} B tracemalloc |",
        f"| retained event, not yet read (encoded in the background) | "
        f"{mem['event_bytes_tracemalloc_unread']:,.0f} B "
        f"tracemalloc, {mem['event_bytes_rss_unread']:,.0f} B RSS ({mem['retained_events']:,} "
        "events) |",
        f"| retained event, read (kept as its SSE frame in the log's buffer) | "
        f"{mem['event_bytes_tracemalloc_encoded']:,.0f} B tracemalloc (frame {mem['frame_bytes']}"
        " B) |",
        "| job lifecycles, retention 0 (RSS / tracemalloc growth since warm-up) | "
        + "; ".join(
            f"{p['jobs']:,}: {p['rss_mb']:.1f} MiB / {p['traced_growth_kb']:+.0f} KiB"
            for p in life["points"]
        )
        + f"; left behind: {life['left_behind']} |",
        f"| {slow['events']:,} events, one job, slow reader ({slow['read_rate']:,.0f} ev/s, "
        f"cap {slow['cap']:,}) | received {slow['received']:,} + missed {slow['missed']:,} "
        f"(in {slow['gaps']} gaps) = {slow['received_plus_missed']:,} "
        f"({'exact' if slow['exact'] else 'NOT exact'}); emit CPU cost first/last block "
        f"{slow['emit_ns_first_block']:,.0f} / {slow['emit_ns_last_block']:,.0f} ns "
        f"(all blocks: {', '.join(f'{x:,.0f}' for x in slow['emit_ns_per_block'])}) |",
    ]
    if stream["failures"]:
        lines += ["", "**Delivery failures:** " + "; ".join(stream["failures"][:10])]
    return [*lines, ""]


def _emit_table(emit: dict[str, Any]) -> list[str]:
    libraries = (
        "narration",
        "narration+encode",
        "structlog-plain",
        "structlog",
        "logging",
        "loguru",
    )
    cases = ("emit", "below_threshold", "emit_200_contextvars")
    lines = [
        "### Emit: `n()` vs structlog, stdlib logging, loguru (ns per call, lower is better)",
        "",
        "| case | " + " | ".join(libraries) + " | narration / structlog |",
        "|---|" + "---|" * (len(libraries) + 1),
    ]
    for case in cases:
        row = emit.get(case, {})
        cells = " | ".join(_fmt(row.get(lib)) if lib in row else "—" for lib in libraries)
        ratio = emit.get("ratios", {}).get(case, {}).get("structlog")
        lines.append(f"| {case} | {cells} | {_fmt(ratio, 2, 'x')} |")
    pairs = emit.get("like_for_like")
    if isinstance(pairs, dict):
        lines += [
            "",
            "Like for like (`structlog-plain`: the same processors without `JSONRenderer`): "
            + "; ".join(
                f"{case}: `n()` / structlog-plain {_fmt(pair['no_encoding'], 2, 'x')}, "
                f"`n()`+encode / structlog (JSON) {_fmt(pair['json'], 2, 'x')}"
                for case, pair in pairs.items()
            )
            + ". The last column above compares `n()` without encoding with structlog's JSON.",
        ]
    slow = emit.get("slowdown_200_contextvars")
    if isinstance(slow, dict):
        lines += [
            "",
            "Cost with 200 unrelated ContextVars set / cost without: "
            + ", ".join(f"{lib} {_fmt(slow[lib], 2, 'x')}" for lib in libraries if lib in slow)
            + ".",
        ]
    return [*lines, ""]


def _generic_table(name: str, results: dict[str, Any]) -> list[str]:
    """Any other benchmark: its numbers, flattened."""
    lines = [f"### {name}", "", "| figure | value |", "|---|---|"]

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and "median" in value:
            lines.append(f"| {prefix} | {_fmt(value, 2)} |")
        elif isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            lines.append(f"| {prefix} | {_fmt(value, 2)} |")
        elif isinstance(value, bool | str):
            lines.append(f"| {prefix} | {_fmt(value)} |")

    walk("", results)
    return [*lines, ""]


def medians(value: Any) -> Any:
    """`value` with every {median, min, max, runs} figure replaced by its median."""
    if isinstance(value, dict):
        if "median" in value and "runs" in value:
            return value["median"]
        return {key: medians(inner) for key, inner in value.items()}
    return value


def _module_table(name: str, title: str, results: dict[str, Any]) -> list[str]:
    """A benchmark's own `format_table` (on the medians) in a code block, else its numbers."""
    try:
        module = importlib.import_module(f"benchmarks.{name}")
        text = module.format_table(medians(results))
    except Exception:
        return _generic_table(title, results)
    lines = [f"### {title}", "", "```text", *str(text).splitlines(), "```", ""]
    figures = _generic_table("", results)[4:]  # the spread of every figure, below the table
    spread = [line for line in figures if "–" in line]
    if spread:
        lines += ["Spread over repeats:", "", "| figure | median (min–max) |", "|---|---|"]
        lines += [*spread, ""]
    return lines


def render_tables(data: dict[str, Any]) -> str:
    """The markdown that goes between the markers of docs/PERFORMANCE.md."""
    benches = data["benchmarks"]
    emit, stream = _ok(benches.get("bench_emit")), _ok(benches.get("bench_stream"))
    lines = ["## Results (generated by `make bench`)", "", *_machine_block(data)]
    lines += _baseline_table(emit, stream)
    if stream:
        lines += _stream_peer_table(stream)
    if emit:
        try:
            lines += _emit_table(emit)
        except (KeyError, TypeError, AttributeError):
            lines += _generic_table("bench_emit", emit)
    if stream:
        lines += _scale_tables(stream)
    redis = _ok(benches.get("bench_redis"))
    if redis:
        lines += _module_table("bench_redis", "Redis store vs memory store (bench_redis)", redis)
    scale = _ok(benches.get("bench_redis_scale"))
    if scale:
        title = "Redis store: 1 vs 2 processes per port, one Redis vs a cluster (bench_redis_scale)"
        lines += _module_table("bench_redis_scale", title, scale)
    not_run = [
        f"`{name}`: {bench.get('status')}"
        + (f" ({bench['error'].strip().splitlines()[-1]})" if bench.get("error") else "")
        for name, bench in benches.items()
        if bench.get("status") != "ok"
    ]
    if not_run:
        lines += ["Not measured in this run: " + "; ".join(not_run) + ".", ""]
    return "\n".join(lines).rstrip() + "\n"


def update_doc(tables: str, doc: Path = DOC) -> None:
    """Replace what is between the markers (the markers are added at the end if missing)."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Performance\n"
    block = f"{START}\n{tables}{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run every narration benchmark")
    parser.add_argument("--quick", action="store_true", help="smoke sizes; no doc update")
    parser.add_argument(
        "--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS), help="a subset"
    )
    parser.add_argument("--out", type=Path, help="results JSON (default results/latest.json)")
    parser.add_argument("--no-doc", action="store_true", help="leave docs/PERFORMANCE.md alone")
    args = parser.parse_args(argv)
    data = run_all(args.quick, tuple(args.only))
    out = args.out or RESULTS / ("quick.json" if args.quick else "latest.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tables = render_tables(data)
    if not args.quick and not args.no_doc:
        update_doc(tables)
    print(tables)
    print(f"results: {out} ({data['seconds']:.0f} s)", file=sys.stderr)
    failed = [n for n, b in data["benchmarks"].items() if b["status"] == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
