"""Cost of one narration call, side by side with structlog, stdlib logging and loguru.

Run: `python -m benchmarks.bench_emit` (add `--quick` for a smoke run). Every library emits the
same event -- action `spawn`, message `Spawning worker on GPU {}` with one argument, and the
job id / correlation id taken from the context -- to a sink that keeps nothing:

- narration: `n()` inside `narration_context(job_id=..., correlation_id=...)`, no console or
  other sink (the event is built and dispatched; JSON is encoded later, off the emit path, so
  `n()+encode` is reported too: what it costs when the event is encoded once as well);
- structlog: `merge_contextvars` + `add_log_level` + `TimeStamper` + `JSONRenderer` (json.dumps)
  into a `ReturnLogger` (no I/O), filtering bound logger at INFO; and `structlog-plain`, the
  same without the renderer (the event dict is the result, as `n()`'s event is);
- logging: a Filter copying two ContextVars into the record, a Formatter calling json.dumps,
  a Handler that formats every record and discards the text;
- loguru: its own logger core with one `serialize=True` callable sink that discards the
  (already serialized) message; ids via `contextualize`.

Like for like: `n()` (no encoding) against `structlog-plain` (no rendering), and `n()+encode`
(msgspec JSON) against `structlog` (JSONRenderer): each library's own JSON encoder, the same
work on both sides. The `narration / structlog` column of earlier runs compared `n()` without
encoding against structlog with rendering; it is kept for continuity.

Three cases: an emitted event; a call below the level threshold (DEBUG when INFO is the
minimum: `n.debug` held in a local, as structlog's filtering logger's bound `debug` is); and
an emitted event with 200 unrelated ContextVars set (structlog's merge walks them all). Each
figure is the median over >= 7 repeats, every case and library interleaved in each repeat so
drift and load from other processes hit them alike.
"""

from __future__ import annotations

import argparse
import contextvars
import gc
import json
import logging
import statistics
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import structlog
from loguru._logger import Core as _LoguruCore
from loguru._logger import Logger as _LoguruLogger

from narration import Level, n, narration_context
from narration.dispatch import dispatcher
from narration.events import LEVEL_RANK, encode_event

__all__ = ["LIBRARIES", "run"]

LIBRARIES = ("narration", "narration+encode", "structlog-plain", "structlog", "logging", "loguru")
CASES = ("emit", "below_threshold", "emit_200_contextvars")
JOB_ID = "job-" + str(uuid.UUID(int=42))
CORRELATION_ID = "corr-bench-0001"
GPU = 3
TARGET_NS = 1000.0
TARGET_RATIO_VS_STRUCTLOG = 0.25
TARGET_LIKE_FOR_LIKE = 0.2  # n() / structlog, both encoding JSON or neither (ARCHITECTURE s. 6)
TARGET_BELOW_THRESHOLD = 1.0  # n() / structlog's filtering logger, below the level threshold

Loop = Callable[[int], int]  # runs `loops` calls, returns elapsed ns

# --- stdlib logging ---------------------------------------------------------------------------

_log_job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)
_log_corr_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)


class _ContextFilter(logging.Filter):
    """Copies the job id and correlation id ContextVars into each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.job_id = _log_job_id.get()
        record.correlation_id = _log_corr_id.get()
        return True


class _JsonFormatter(logging.Formatter):
    """One JSON object per record, via json.dumps."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "ts": record.created,
                "level": record.levelname.lower(),
                "logger": record.name,
                "action": getattr(record, "action", None),
                "human": record.getMessage(),
                "job_id": getattr(record, "job_id", None),
                "correlation_id": getattr(record, "correlation_id", None),
                "fn_name": f"{record.module}.{record.funcName}",
            }
        )


class _DiscardHandler(logging.Handler):
    """Formats every record (the work a real handler does) and throws the text away."""

    last = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.last = self.format(record)


def _stdlib_logger() -> tuple[logging.Logger, _DiscardHandler]:
    logger = logging.getLogger(f"benchmarks.bench_emit.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = _DiscardHandler()
    handler.setFormatter(_JsonFormatter())
    logger.addHandler(handler)
    logger.addFilter(_ContextFilter())
    return logger, handler


# --- structlog and loguru ---------------------------------------------------------------------


def _structlog_logger(render: bool = True) -> Any:
    """structlog at INFO; with `render`, JSON by its `JSONRenderer`, else the event dict."""
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt=None),
    ]
    if render:
        processors.append(structlog.processors.JSONRenderer())
    return structlog.wrap_logger(
        structlog.ReturnLogger(),
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=True,
    )


def _loguru_logger(sink: Callable[[str], None] | None) -> Any:
    """A loguru logger with its own core (private API), so the global logger is untouched."""
    logger = _LoguruLogger(
        core=_LoguruCore(),
        exception=None,
        depth=0,
        record=False,
        lazy=False,
        colors=False,
        raw=False,
        capture=True,
        patchers=[],
        extra={},
    )
    if sink is not None:
        logger.add(sink, serialize=True, level="INFO", format="{message}", colorize=False)
    return logger


def _discard(message: str) -> None:
    """A loguru sink: loguru has serialized the record to JSON before calling it."""


# --- the timed loops --------------------------------------------------------------------------


def _loops(below: bool) -> dict[str, Loop]:
    """One timed loop per library; `below` emits at DEBUG, under the INFO threshold."""
    slog = _structlog_logger()
    slog_plain = _structlog_logger(render=False)
    std, _ = _stdlib_logger()
    lg = _loguru_logger(_discard)
    perf = time.perf_counter_ns

    def narration_loop(loops: int) -> int:
        start = perf()
        for _ in range(loops):
            n("spawn", "Spawning worker on GPU {}", GPU)
        return perf() - start

    def narration_below_loop(loops: int) -> int:
        log = n.debug  # held, as structlog's bound `debug` is below (n.debug follows configure)
        start = perf()
        for _ in range(loops):
            log("spawn", "Spawning worker on GPU {}", GPU)
        return perf() - start

    def narration_encode_loop(loops: int) -> int:
        start = perf()
        for _ in range(loops):
            event = n("spawn", "Spawning worker on GPU {}", GPU)
            if event is not None:
                encode_event(event)
        return perf() - start

    def structlog_loop(loops: int) -> int:
        log = slog.debug if below else slog.info
        start = perf()
        for _ in range(loops):
            log("Spawning worker on GPU %s", GPU, action="spawn")
        return perf() - start

    def structlog_plain_loop(loops: int) -> int:
        log = slog_plain.debug if below else slog_plain.info
        start = perf()
        for _ in range(loops):
            log("Spawning worker on GPU %s", GPU, action="spawn")
        return perf() - start

    def logging_loop(loops: int) -> int:
        log = std.debug if below else std.info
        extra = {"action": "spawn"}
        start = perf()
        for _ in range(loops):
            log("Spawning worker on GPU %s", GPU, extra=extra)
        return perf() - start

    def loguru_loop(loops: int) -> int:
        log = lg.debug if below else lg.info
        start = perf()
        for _ in range(loops):
            log("Spawning worker on GPU {}", GPU, action="spawn")
        return perf() - start

    loops: dict[str, Loop] = {
        "narration": narration_below_loop if below else narration_loop,
        "structlog": structlog_loop,
        "logging": logging_loop,
        "loguru": loguru_loop,
    }
    if not below:
        loops["narration+encode"] = narration_encode_loop
        loops["structlog-plain"] = structlog_plain_loop
    return loops


def _enter_job(extra_vars: int) -> None:
    """Set the job ids for structlog and logging (and `extra_vars` unrelated ContextVars) here."""
    for i in range(extra_vars):
        contextvars.ContextVar(f"unrelated_{i}").set(i)
    structlog.contextvars.bind_contextvars(job_id=JOB_ID, correlation_id=CORRELATION_ID)
    _log_job_id.set(JOB_ID)
    _log_corr_id.set(CORRELATION_ID)


def _job_context(extra_vars: int) -> tuple[contextvars.Context, ExitStack]:
    """A fresh context (no caller ids or test captures) in which every library sees the job."""
    ctx = contextvars.Context()
    stack = ExitStack()

    def enter() -> None:
        _enter_job(extra_vars)
        stack.enter_context(narration_context(job_id=JOB_ID, correlation_id=CORRELATION_ID))
        stack.enter_context(
            _loguru_logger(None).contextualize(job_id=JOB_ID, correlation_id=CORRELATION_ID)
        )

    ctx.run(enter)
    return ctx, stack


def _measure(calls: int, repeats: int) -> dict[str, dict[str, float]]:
    """Median ns per call of every (case, library), all interleaved within each repeat."""
    plain, plain_stack = _job_context(0)
    crowded, crowded_stack = _job_context(200)
    emit, below, emit_crowded = _loops(below=False), _loops(below=True), _loops(below=False)
    plans = [
        *(("emit", name, plain, loop) for name, loop in emit.items()),
        *(("below_threshold", name, plain, loop) for name, loop in below.items()),
        *(("emit_200_contextvars", name, crowded, loop) for name, loop in emit_crowded.items()),
    ]
    samples: dict[str, dict[str, list[float]]] = {case: {} for case in CASES}
    try:
        for _, _, ctx, loop in plans:  # warm up caches (caller info, bound loggers)
            ctx.run(loop, max(calls // 10, 10))
        gc.collect()
        for _ in range(repeats):
            for case, name, ctx, loop in plans:
                gc.disable()
                try:
                    elapsed = ctx.run(loop, calls)
                finally:
                    gc.enable()
                samples[case].setdefault(name, []).append(elapsed / calls)
    finally:
        plain.run(plain_stack.close)
        crowded.run(crowded_stack.close)
    return {
        case: {name: statistics.median(values) for name, values in by_name.items()}
        for case, by_name in samples.items()
    }


def _check_outputs() -> None:
    """Make sure every library really renders the event with both ids (no silent no-op)."""

    def in_context() -> None:
        _enter_job(0)
        rendered = json.loads(_structlog_logger().info("Spawning worker on GPU %s", GPU))
        plain = _structlog_logger(render=False).info("Spawning worker on GPU %s", GPU)
        plain = plain[1] if isinstance(plain, tuple) else plain  # ReturnLogger: (args, kwargs)
        assert plain["job_id"] == JOB_ID and plain["correlation_id"] == CORRELATION_ID
        std, handler = _stdlib_logger()
        std.info("Spawning worker on GPU %s", GPU, extra={"action": "spawn"})
        stdlib = json.loads(handler.last)
        captured: list[str] = []
        lg = _loguru_logger(captured.append)
        with lg.contextualize(job_id=JOB_ID, correlation_id=CORRELATION_ID):
            lg.info("Spawning worker on GPU {}", GPU, action="spawn")
        loguru_extra = json.loads(captured[-1])["record"]["extra"]
        with narration_context(job_id=JOB_ID, correlation_id=CORRELATION_ID):
            event = n("spawn", "Spawning worker on GPU {}", GPU)
        assert event is not None
        ours = json.loads(encode_event(event))
        for name, doc in (("structlog", rendered), ("logging", stdlib), ("narration", ours)):
            assert doc["job_id"] == JOB_ID, name
            assert doc["correlation_id"] == CORRELATION_ID, name
        assert rendered["event"] == stdlib["human"] == ours["human"] == "Spawning worker on GPU 3"
        assert loguru_extra["job_id"] == JOB_ID
        assert loguru_extra["correlation_id"] == CORRELATION_ID

    contextvars.Context().run(in_context)


def run(quick: bool = False) -> dict[str, Any]:
    """Measure every case; ns per call for each library, ratios and the targets.

    `quick` runs few calls (a couple of seconds in all) for smoke tests; the figures are then
    noisy. Sinks configured in this process are set aside during the run and put back after.
    """
    calls, repeats = (1_000, 7) if quick else (20_000, 15)
    saved_sinks, saved_rank = dispatcher.sinks, dispatcher.min_rank
    dispatcher.sinks, dispatcher.min_rank = (), LEVEL_RANK[Level.INFO]
    try:
        _check_outputs()
        results = _measure(calls, repeats)
    finally:
        dispatcher.sinks, dispatcher.min_rank = saved_sinks, saved_rank
    emit = results["emit"]
    ours = emit["narration"]
    ratios = {
        case: {
            other: results[case]["narration"] / results[case][other]
            for other in ("structlog", "logging", "loguru")
        }
        for case in CASES
    }
    slowdown_200 = {name: results["emit_200_contextvars"][name] / emit[name] for name in emit}
    like_for_like = {
        case: {
            "no_encoding": results[case]["narration"] / results[case]["structlog-plain"],
            "json": results[case]["narration+encode"] / results[case]["structlog"],
        }
        for case in ("emit", "emit_200_contextvars")
    }
    return {
        "unit": "ns/call",
        "calls": calls,
        "repeats": repeats,
        "quick": quick,
        **results,
        "ratios": ratios,
        "like_for_like": like_for_like,
        "slowdown_200_contextvars": slowdown_200,
        "narration_events_per_second": 1e9 / ours,
        "targets": {
            "emit_ns_max": TARGET_NS,
            "ratio_vs_structlog_max": TARGET_RATIO_VS_STRUCTLOG,
            "emit_ns_met": ours <= TARGET_NS,
            "ratio_vs_structlog_met": ratios["emit"]["structlog"] <= TARGET_RATIO_VS_STRUCTLOG,
            "like_for_like_max": TARGET_LIKE_FOR_LIKE,
            "like_for_like_met": max(like_for_like["emit"].values()) <= TARGET_LIKE_FOR_LIKE,
            "below_threshold_max": TARGET_BELOW_THRESHOLD,
            "below_threshold_met": ratios["below_threshold"]["structlog"] <= TARGET_BELOW_THRESHOLD,
        },
    }


def format_table(results: dict[str, Any]) -> str:
    """The results as a plain-text table."""
    lines = [
        f"n() vs peers: median of {results['repeats']} repeats x {results['calls']} calls, "
        "ns per call (lower is better)",
        "",
        f"{'case':<24}" + "".join(f"{name:>18}" for name in LIBRARIES),
    ]
    for case in CASES:
        row = results[case]
        cells = "".join(
            f"{row[name]:>18.0f}" if name in row else f"{'-':>18}" for name in LIBRARIES
        )
        lines.append(f"{case:<24}{cells}")
    others = ("structlog", "logging", "loguru")
    lines += ["", f"{'ratio narration/other':<24}" + "".join(f"{o:>18}" for o in others)]
    for case in CASES:
        ratios = results["ratios"][case]
        lines.append(f"{case:<24}" + "".join(f"{ratios[o]:>17.2f}x" for o in others))
    lines.append("")
    for case, pair in results["like_for_like"].items():
        lines.append(
            f"like for like, {case}: n() / structlog-plain {pair['no_encoding']:.2f}x, "
            f"n()+encode / structlog (JSON) {pair['json']:.2f}x"
        )
    slow = results["slowdown_200_contextvars"]
    lines += [
        "",
        "200 unrelated ContextVars set, cost / cost without: "
        + ", ".join(f"{name} {slow[name]:.2f}x" for name in LIBRARIES),
    ]
    targets = results["targets"]
    ours = results["emit"]["narration"]
    lines += [
        f"narration: {results['narration_events_per_second']:,.0f} events/s on one core",
        f"target n() <= {targets['emit_ns_max']:.0f} ns: "
        f"{'met' if targets['emit_ns_met'] else 'MISSED'} ({ours:.0f} ns)",
        f"target <= {targets['ratio_vs_structlog_max']}x structlog: "
        f"{'met' if targets['ratio_vs_structlog_met'] else 'MISSED'} "
        f"({results['ratios']['emit']['structlog']:.2f}x)",
    ]
    return "\n".join(lines)


OTEL_CASES = ("otel_absent", "otel_active_span", "otel_span_and_log_export")


def run_otel(quick: bool = False) -> dict[str, Any]:
    """`n()` with OpenTelemetry: absent, inside an active SDK span, and with log export on.

    Run after `run()`: it sets the process's global OpenTelemetry providers (once per process).
    "absent" is `n()` before any of it (the emit path as `run()` measures it); "active span" is
    `n()` inside a span of an SDK tracer provider (`n()` then takes the span's ids); "log
    export" adds the event-to-log-record sink (`n()` queues the event; a thread makes records
    for a discarding exporter, and the time it takes from the caller's core is included).
    """
    from opentelemetry import _logs, trace
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import LogRecordExportResult, SimpleLogRecordProcessor
    from opentelemetry.sdk.trace import TracerProvider

    from narration.otel import OtelLogSink
    from narration.otel.bridge import follow_spans

    class Discard:
        def export(self, batch: Any) -> LogRecordExportResult:
            return LogRecordExportResult.SUCCESS

        def shutdown(self) -> None:
            return None

        def force_flush(self, timeout_millis: int = 0) -> bool:
            return True

    calls, repeats = (1_000, 5) if quick else (20_000, 11)
    saved_sinks, saved_rank = dispatcher.sinks, dispatcher.min_rank
    dispatcher.sinks, dispatcher.min_rank = (), LEVEL_RANK[Level.INFO]

    def loop(loops: int) -> int:
        with narration_context(job_id=JOB_ID, correlation_id=CORRELATION_ID):
            start = time.perf_counter_ns()
            for _ in range(loops):
                n("spawn", "Spawning worker on GPU {}", GPU)
            return time.perf_counter_ns() - start

    figures: dict[str, list[float]] = {case: [] for case in OTEL_CASES}
    try:
        for _ in range(repeats):  # before any OpenTelemetry setup: the plain emit path
            figures["otel_absent"].append(contextvars.Context().run(loop, calls) / calls)
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
        logger_provider = LoggerProvider()
        logger_provider.add_log_record_processor(SimpleLogRecordProcessor(Discard()))  # type: ignore[arg-type]
        _logs.set_logger_provider(logger_provider)
        follow_spans()
        tracer = provider.get_tracer("bench")
        sink = OtelLogSink(logger_provider)

        def in_span(loops: int) -> int:
            with tracer.start_as_current_span("bench"):
                return loop(loops)

        for _ in range(repeats):
            figures["otel_active_span"].append(contextvars.Context().run(in_span, calls) / calls)
            dispatcher.sinks = (sink,)
            gc.collect()
            elapsed = contextvars.Context().run(in_span, calls)
            figures["otel_span_and_log_export"].append(elapsed / calls)
            sink.flush(30)
            dispatcher.sinks = ()
        sink.close()
    finally:
        dispatcher.sinks, dispatcher.min_rank = saved_sinks, saved_rank
    medians = {case: statistics.median(values) for case, values in figures.items()}
    return {"unit": "ns/call", "calls": calls, "repeats": repeats, **medians}


def format_otel(results: dict[str, Any]) -> str:
    absent = results["otel_absent"]
    lines = [
        "",
        f"n() with OpenTelemetry: median of {results['repeats']} repeats"
        f" x {results['calls']} calls",
    ]
    for case in OTEL_CASES:
        lines.append(f"{case:<28}{results[case]:>8.0f} ns  ({results[case] / absent:.2f}x)")
    return "\n".join(lines)


REDACT_CASES: dict[
    str, tuple[str, str, Callable[[int], tuple[Any, ...]], Callable[[int], dict[str, Any]]]
] = {
    # (action, message, args of event i, fields of event i)
    "repeated_text": ("built", "Report ready", lambda i: (), lambda i: {}),
    "unique_text": ("spawn", "Spawning worker on GPU {}", lambda i: (i,), lambda i: {}),
    "unique_2_fields": (
        "spawn",
        "Spawning worker on GPU {}",
        lambda i: (i,),
        lambda i: {"gpu": i, "host": f"box-{i}"},
    ),
    "secret_in_text": (
        "login",
        "Connecting with password={} to db",
        lambda i: (f"hunter{i}",),
        lambda i: {},
    ),
    "secret_in_field": (
        "login",
        "Connecting to db",
        lambda i: (),
        lambda i: {"dsn": f"postgres://app:pw{i}@db/x"},
    ),
}


def run_redaction(quick: bool = False) -> dict[str, Any]:
    """What redaction costs per event, where it runs: where a job log encodes an event, and
    on each sink's writer thread (never inside `n()`, which does not change).

    For each case, `calls` events (distinct texts except in `repeated_text`): `redact_event`
    alone, and encoding an SSE frame (`event_frame`, what the memory log does once per event)
    with redaction off and on; plus `n()` itself with redaction off and on.
    """
    from narration.redact import redact_event, set_redaction
    from narration.wire import event_frame

    calls, repeats = (1_000, 5) if quick else (20_000, 11)
    saved_sinks, saved_rank = dispatcher.sinks, dispatcher.min_rank
    dispatcher.sinks, dispatcher.min_rank = (), LEVEL_RANK[Level.INFO]
    perf = time.perf_counter_ns
    events: dict[str, list[Any]] = {}

    def make() -> None:
        with narration_context(job_id=JOB_ID, correlation_id=CORRELATION_ID):
            for case, (action, message, args, fields) in REDACT_CASES.items():
                events[case] = [n(action, message, *args(i), **fields(i)) for i in range(calls)]

    contextvars.Context().run(make)

    def redact_all(batch: list[Any]) -> float:
        start = perf()
        for event in batch:
            redact_event(event)
        return (perf() - start) / len(batch)

    def encode_all(batch: list[Any]) -> float:
        start = perf()
        for event in batch:
            event_frame(1, event)
        return (perf() - start) / len(batch)

    def emit_loop() -> float:
        with narration_context(job_id=JOB_ID, correlation_id=CORRELATION_ID):
            start = perf()
            for _ in range(calls):
                n("login", "Connecting with password={} to db", "hunter2")
            return (perf() - start) / calls

    samples: dict[str, dict[str, list[float]]] = {
        case: {"redact_event": [], "encode_off": [], "encode_on": []} for case in REDACT_CASES
    }
    emit: dict[str, list[float]] = {"n_off": [], "n_on": []}
    try:
        for _ in range(repeats):
            for case, batch in events.items():
                set_redaction(True)  # a new redactor: nothing remembered from the last repeat
                samples[case]["redact_event"].append(redact_all(batch))
                set_redaction(True)
                samples[case]["encode_on"].append(encode_all(batch))
                set_redaction(False)
                samples[case]["encode_off"].append(encode_all(batch))
            set_redaction(False)
            emit["n_off"].append(contextvars.Context().run(emit_loop))
            set_redaction(True)
            emit["n_on"].append(contextvars.Context().run(emit_loop))
    finally:
        set_redaction(True)
        dispatcher.sinks, dispatcher.min_rank = saved_sinks, saved_rank
    medians = {
        case: {name: statistics.median(values) for name, values in by_name.items()}
        for case, by_name in samples.items()
    }
    return {
        "unit": "ns/event",
        "calls": calls,
        "repeats": repeats,
        **medians,
        "n_secret_in_text": {name: statistics.median(values) for name, values in emit.items()},
    }


def format_redaction(results: dict[str, Any]) -> str:
    lines = [
        "",
        f"redaction, where events are encoded (not in n()): median of {results['repeats']} "
        f"repeats x {results['calls']} calls, ns per event",
        f"{'case':<18}{'redact_event':>14}{'encode off':>12}{'encode on':>12}{'added':>10}",
    ]
    for case in REDACT_CASES:
        row = results[case]
        added = row["encode_on"] - row["encode_off"]
        lines.append(
            f"{case:<18}{row['redact_event']:>14.0f}{row['encode_off']:>12.0f}"
            f"{row['encode_on']:>12.0f}{added:>+10.0f}"
        )
    emit = results["n_secret_in_text"]
    lines.append(
        f"n() with a secret in its text: {emit['n_off']:.0f} ns redaction off, "
        f"{emit['n_on']:.0f} ns on (n() does no redaction)"
    )
    return "\n".join(lines)


def main() -> None:
    """Command line: print the table (or JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="few calls: a smoke run")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--otel", action="store_true", help="also n() inside a span and with log export"
    )
    parser.add_argument("--redact", action="store_true", help="also what redaction costs")
    args = parser.parse_args()
    results = run(quick=args.quick)
    if args.otel:
        results["otel"] = run_otel(quick=args.quick)
    if args.redact:
        results["redaction"] = run_redaction(quick=args.quick)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        text = format_table(results)
        text += format_otel(results["otel"]) if args.otel else ""
        text += format_redaction(results["redaction"]) if args.redact else ""
        print(text)


if __name__ == "__main__":
    main()
