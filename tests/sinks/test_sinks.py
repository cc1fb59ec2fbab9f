"""Sinks: the stdlib-logging bridge both ways, the console and the JSONL sink."""

from __future__ import annotations

import gc
import io
import logging
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import pytest

from narration import Level, Mode, NarrationEvent, configure, flush, n, narration_context
from narration.config import configure_from_env
from narration.dispatch import dispatcher
from narration.events import decode_event, encode_event
from narration.sinks import ConsoleSink, JsonlSink, LoggingSink, NarrationHandler
from narration.sinks.console import format_line, short_id
from narration.testing import CapturedEvents, capture

pytestmark = pytest.mark.unit


class ListHandler(logging.Handler):
    """Keeps the records it is given."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def app_logger() -> Iterator[logging.Logger]:
    """A private `billing.<random>` logger with a NarrationHandler, removed afterwards."""
    logger = logging.getLogger(f"billing.{uuid.uuid4().hex}")
    handler = NarrationHandler()
    logger.addHandler(handler)
    logger.setLevel(1)
    logger.propagate = False
    try:
        yield logger
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def narration_records() -> Iterator[tuple[str, ListHandler]]:
    """A private actor name and a handler on `narration.<actor>` that keeps its records."""
    actor = f"ledger{uuid.uuid4().hex[:8]}"
    logger = logging.getLogger(f"narration.{actor}")
    handler = ListHandler()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield actor, handler
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def logging_sink() -> Iterator[LoggingSink]:
    """A LoggingSink plugged into the dispatcher for the test only."""
    sink = LoggingSink()
    dispatcher.add_sink(sink)
    try:
        yield sink
    finally:
        dispatcher.remove_sink(sink)
        sink.close()


# --- logging -> narration --------------------------------------------------------------------


def test_a_log_record_becomes_an_event_with_the_current_context(
    app_logger: logging.Logger,
) -> None:
    with capture() as cap, narration_context(job_id="job-log", correlation_id="corr-log"):
        app_logger.info("Charged %s %d EUR", "alice", 12, extra={"narration_action": "charge"})
    (event,) = cap.events
    assert event.human == "Charged alice 12 EUR"
    assert event.action == "charge"
    assert event.level is Level.INFO
    assert event.actor == "billing"
    assert (event.job_id, event.correlation_id) == ("job-log", "corr-log")
    assert event.fields == {"logger": app_logger.name}
    assert event.fn_name == "test_sinks.test_a_log_record_becomes_an_event_with_the_current_context"


@pytest.mark.usefixtures("restore_level")
def test_record_levels_actions_and_exceptions_map_over(app_logger: logging.Logger) -> None:
    configure(level="trace")

    def settle_invoice() -> None:
        app_logger.warning("Slow bank")
        try:
            raise ConnectionError("bank down")
        except ConnectionError:
            app_logger.exception("Settlement failed")
        app_logger.critical("Ledger corrupt")
        app_logger.debug("details")
        app_logger.log(5, "very fine")

    with capture() as cap, narration_context(job_id="job-lv", actor="payments", fields={"t": 1}):
        settle_invoice()
    assert [(e.level, e.action) for e in cap.events] == [
        (Level.WARN, "settle_invoice"),  # the function name when no narration_action is given
        (Level.ERROR, "settle_invoice"),
        (Level.FATAL, "settle_invoice"),
        (Level.DEBUG, "settle_invoice"),
        (Level.TRACE, "settle_invoice"),
    ]
    assert all(e.actor == "payments" for e in cap.events)  # the context's actor wins
    assert all(e.job_id == "job-lv" for e in cap.events)
    assert cap.events[1].fields == {
        "t": 1,
        "logger": app_logger.name,
        "exception": "ConnectionError('bank down')",
    }


@pytest.mark.usefixtures("restore_level")
def test_records_below_the_narration_threshold_are_dropped(app_logger: logging.Logger) -> None:
    configure(level="warn")
    with capture() as cap:
        app_logger.debug("too fine")
        app_logger.info("still too fine")
        app_logger.warning("loud enough")
    assert [(e.level, e.human) for e in cap.events] == [(Level.WARN, "loud enough")]


def test_records_of_narration_loggers_are_not_fed_back() -> None:
    logger = logging.getLogger("narration.loopback")
    handler = NarrationHandler()
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with capture() as cap:
            logger.warning("would loop")
    finally:
        logger.removeHandler(handler)
    assert cap.events == []


# --- narration -> logging --------------------------------------------------------------------


def test_an_event_reaches_the_narration_actor_logger_with_its_ids(
    logging_sink: LoggingSink, narration_records: tuple[str, ListHandler]
) -> None:
    actor, handler = narration_records
    with narration_context(job_id="job-sink", correlation_id="corr-sink", actor=actor):
        n("spawn", "Spawning worker on GPU {}", 1, gpu=1)
        n("spawn", "GPU hot", level=Level.WARN)
    assert logging_sink.flush()
    assert [r.getMessage() for r in handler.records] == ["Spawning worker on GPU 1", "GPU hot"]
    first, second = handler.records
    assert first.name == f"narration.{actor}"
    assert (first.levelno, second.levelno) == (logging.INFO, logging.WARNING)
    assert first.job_id == "job-sink"  # type: ignore[attr-defined]
    assert first.correlation_id == "corr-sink"  # type: ignore[attr-defined]
    assert first.narration_action == "spawn"  # type: ignore[attr-defined]
    assert first.narration_fields == {"gpu": 1}  # type: ignore[attr-defined]
    assert first.trace_id is None  # type: ignore[attr-defined]


def test_disabled_levels_are_not_logged(narration_records: tuple[str, ListHandler]) -> None:
    actor, handler = narration_records
    logging.getLogger(f"narration.{actor}").setLevel(logging.ERROR)
    sink = LoggingSink()
    try:
        with narration_context(actor=actor):
            for level in (Level.INFO, Level.WARN, Level.ERROR):
                event = n("probe", "at {}", level.value, level=level)
                assert event is not None
                sink(event)
        assert sink.flush()
    finally:
        sink.close()
    assert [r.getMessage() for r in handler.records] == ["at error"]


# --- console ---------------------------------------------------------------------------------


def clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) + f".{int(ts * 1000) % 1000:03d}"


EVENT = NarrationEvent(
    ts=1764103678.123456,
    level=Level.INFO,
    actor="queen",
    action="spawn",
    human="Spawning worker on GPU 0",
    cute="A tiny worker wakes on GPU 0",
    fields={"gpu": 0},
)


def test_console_prints_one_block_per_event_without_colors_off_a_tty() -> None:
    stream = io.StringIO()
    sink = ConsoleSink(stream=stream)
    assert sink.color is False
    try:
        sink(EVENT)
        sink(NarrationEvent(ts=EVENT.ts, level=Level.WARN, actor="hive", action="x", human="hot"))
        assert sink.flush()
    finally:
        sink.close()
    head = clock(EVENT.ts)
    assert stream.getvalue() == (
        f"{head} queen    spawn          Spawning worker on GPU 0 gpu=0\n"
        f"{head} hive     x              [warn] hot\n"
    )
    assert "\x1b" not in stream.getvalue()


def test_console_indents_the_lines_of_a_multi_line_message() -> None:
    event = NarrationEvent(
        ts=EVENT.ts, level=Level.INFO, actor="worker", action="report", human="Done:\n- a\n- b"
    )
    pad = " " * (len(clock(EVENT.ts)) + 1 + 8 + 1 + 14 + 1)
    assert format_line(event) == (
        f"{clock(EVENT.ts)} worker   report         Done:\n{pad}- a\n{pad}- b"
    )


def test_console_modes_and_colors() -> None:
    assert "A tiny worker wakes on GPU 0" in format_line(EVENT, Mode.CUTE)
    assert "Spawning worker on GPU 0" in format_line(EVENT, Mode.STORY)  # falls back to human
    colored = format_line(EVENT, color=True)
    assert "\x1b[" in colored
    assert "Spawning worker on GPU 0" in colored
    stream = io.StringIO()
    sink = ConsoleSink(stream=stream, mode=Mode.CUTE, color=True)
    try:
        sink(EVENT)
        assert sink.flush()
    finally:
        sink.close()
    assert stream.getvalue() == format_line(EVENT, Mode.CUTE, color=True) + "\n"


# --- JSONL -----------------------------------------------------------------------------------


def test_jsonl_writes_one_event_per_line(narration_capture: CapturedEvents) -> None:
    stream = io.BytesIO()
    sink = JsonlSink(stream=stream)
    try:
        with narration_context(job_id="job-jsonl", correlation_id="corr-jsonl"):
            n("step", "first line\nstill the first event")
            n("step", "second", n=2)
        for event in narration_capture.events:
            sink(event)
        assert sink.flush()
    finally:
        sink.close()
    lines = stream.getvalue().split(b"\n")
    assert lines[-1] == b""  # every line ends with a newline
    assert lines[:-1] == [encode_event(e) for e in narration_capture.events]
    decoded = [decode_event(line) for line in lines[:-1]]
    assert decoded == narration_capture.events
    assert decoded[0].human == "first line\nstill the first event"
    assert all(e.job_id == "job-jsonl" and e.correlation_id == "corr-jsonl" for e in decoded)


# --- console ids -----------------------------------------------------------------------------

JOB_EVENT = msgspec.structs.replace(
    EVENT, job_id="job-d05fd48c-ae72-4e3e-82a0-cacaa103b4aa", correlation_id="c-42"
)


def test_console_ids_show_the_job_and_correlation_id_before_the_fields() -> None:
    head = f"{clock(EVENT.ts)} queen    spawn          Spawning worker on GPU 0"
    assert format_line(JOB_EVENT) == f"{head} gpu=0"
    assert format_line(JOB_EVENT, ids=True) == f"{head} job=job-d05fd48c… corr=c-42 gpu=0"
    no_ids = NarrationEvent(ts=EVENT.ts, level=Level.INFO, actor="queen", action="spawn", human="x")
    assert format_line(no_ids, ids=True) == f"{clock(EVENT.ts)} queen    spawn          x"


def test_short_ids_are_whole_up_to_24_chars() -> None:
    assert short_id("demo-86bd4940b6f9") == "demo-86bd4940b6f9"
    assert short_id("x" * 24) == "x" * 24
    assert short_id("y" * 25) == "y" * 12 + "…"


@pytest.fixture
def console_off() -> Iterator[None]:
    try:
        yield
    finally:
        configure(console=False, ids=False)


def narrate_two_jobs() -> None:
    with narration_context(job_id="job-1", correlation_id="corr-a"):
        n("step", "from job one")
    with narration_context(job_id="job-2", correlation_id="corr-b"):
        n("step", "from job two")
    flush()


def step_lines(text: str) -> list[str]:
    return [line.split(" step ", 1)[1].strip() for line in text.splitlines() if " step " in line]


TWO_JOBS = ["from job one job=job-1 corr=corr-a", "from job two job=job-2 corr=corr-b"]


@pytest.mark.usefixtures("console_off")
def test_console_ids_from_configure() -> None:
    stream = io.StringIO()
    configure(console=True, ids=True, stream=stream, color=False)
    narrate_two_jobs()
    assert step_lines(stream.getvalue()) == TWO_JOBS


@pytest.mark.usefixtures("console_off")
def test_console_ids_from_the_environment(capsys: pytest.CaptureFixture[str]) -> None:
    configure_from_env({"NARRATION_CONSOLE": "1", "NARRATION_CONSOLE_IDS": "yes"})
    narrate_two_jobs()
    assert step_lines(capsys.readouterr().err) == TWO_JOBS


@pytest.mark.usefixtures("console_off")
def test_reconfiguring_the_console_keeps_the_settings_not_given() -> None:
    stream = io.StringIO()
    configure(console=True, mode="cute", ids=True, stream=stream, color=False)
    configure(level="info")  # unrelated
    configure(color=False)  # replaces the sink: mode, ids and stream carry over
    with narration_context(job_id="job-k"):
        n("hello", "plain", cute="cute text")
    flush()
    [line] = [line for line in stream.getvalue().splitlines() if " hello " in line]
    assert line.endswith("cute text job=job-k")


# --- JSONL on stdout: print() output keeps its place among the events -------------------------


@contextmanager
def stdout_sink() -> Iterator[tuple[JsonlSink, io.BytesIO]]:
    """A JsonlSink.for_stdout() over a private stdout (a TextIOWrapper on a BytesIO).

    Set up in the test body: pytest puts its own capture back on sys.stdout between a
    fixture's set-up and the test.
    """
    raw = io.BytesIO()
    saved = sys.stdout
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(_Keep(raw)), encoding="utf-8")
    sink = JsonlSink.for_stdout()
    try:
        yield sink, raw
    finally:
        sink.close()
        sys.stdout = saved


class _Keep(io.RawIOBase):
    """A raw stream writing into a BytesIO that outlives it."""

    def __init__(self, target: io.BytesIO) -> None:
        self.target = target

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return self.target.write(bytes(data))


def test_stdout_text_and_events_are_written_in_the_order_they_were_made() -> None:
    with stdout_sink() as (sink, raw):
        written = _interleave(sink)
    assert raw.getvalue().split(b"\n") == written


def _interleave(sink: JsonlSink) -> list[bytes]:
    """Print and queue events in turn; the lines stdout should then hold."""
    assert sys.stdout is not sink.stream
    events = []
    for i in range(3):
        print(f"line {i}")
        event = n("tick", "tick {}", i)
        assert event is not None
        events.append(event)
        sink(event)
    sys.stdout.buffer.write(b"raw\n")
    print("half", end="")
    sink(events[0])
    print(" rest")
    sys.stdout.flush()
    return [
        b"line 0",
        encode_event(events[0]),
        b"line 1",
        encode_event(events[1]),
        b"line 2",
        encode_event(events[2]),
        b"raw",
        b"half",  # the event waits for no newline: it starts a line of its own
        encode_event(events[0]),
        b" rest",
        b"",
    ]


def test_closing_gives_stdout_back_and_later_writes_go_straight_out() -> None:
    with stdout_sink() as (sink, raw):
        ordered = sys.stdout
        print("queued")
        sink.close()
        assert sys.stdout is ordered.original  # type: ignore[attr-defined]
        ordered.write("after close\n")  # someone who kept the old object: written at once
        assert raw.getvalue() == b"queued\nafter close\n"


def test_stdout_never_drops_and_a_big_write_is_out_when_it_returns() -> None:
    """Text waits instead of dropping: a 64 KiB write is written by the caller itself."""
    with stdout_sink() as (_, raw):
        for i in range(5000):
            print(f"line {i}")
        big = "x" * (64 * 1024) + "\n"
        sys.stdout.write(big)
        assert raw.getvalue().endswith(big.encode())  # no flush needed
        sys.stdout.flush()
        lines = raw.getvalue().split(b"\n")
    assert lines == [f"line {i}".encode() for i in range(5000)] + [big[:-1].encode(), b""]


def test_jsonl_output_lets_go_of_a_raw_stdout_without_closing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`python -u` (or pytest's capture) gives a raw stdout: switching JSONL off must leave it
    open and hold every line written."""
    import io
    import sys
    import tempfile

    from narration import configure, n

    with tempfile.TemporaryFile(buffering=0) as raw:
        monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="utf-8"))
        configure(output="jsonl")
        n("raw", "One line")
        configure(output="none")
        gc.collect()
        assert not raw.closed
        raw.seek(0)
        lines = [msgspec.json.decode(line) for line in raw.read().splitlines()]
        assert [(line["action"], line["human"]) for line in lines] == [("raw", "One line")]
