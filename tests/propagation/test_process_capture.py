"""Real child processes: `child_env` -> `init_from_env` in the child -> `ProcessCapture` back.

The child is `toyworker.py`, written to a temporary directory: a module, so its events get the
actor `toyworker` the way a real child package would. It is run with `sys.executable -c`.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import sys
from pathlib import Path

import pytest

from narration import Level, NarrationContext, NarrationEvent, narration_context
from narration.propagation import ProcessCapture, ProcessFailedError, parse_traceparent
from narration.propagation.capture import MAX_LINE_BYTES
from narration.sanitize import MAX_MESSAGE_CHARS
from narration.testing import CapturedEvents, capture

pytestmark = pytest.mark.e2e

JOB = "job-11111111-2222-4333-8444-555555555555"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
PARENT = NarrationContext(job_id=JOB, correlation_id="corr-proc", trace_id=TRACE, span_id=SPAN)

TOYWORKER = '''
"""A stand-in child process for the tests: what it does depends on its one argument."""
import os
import signal
import subprocess
import sys
import time

import narration
from narration import n


class Stop(BaseException):
    # A BaseException, as KeyboardInterrupt is: the signal may land inside n(), which swallows
    # any Exception its sinks raise, and the child would then sleep on until it is killed.
    pass


def main(mode):
    ctx = narration.init_from_env()
    if mode == "basic":
        n("start", "Worker starting in job {}", ctx.job_id, gpu=0)
        n("slow", "Model load is slow", level="warn")
        print("plain stdout line")
        print("a warning on stderr", file=sys.stderr)
        print('{"not": "an event"}')
        n("done", "Worker done", tokens=3)
    elif mode == "many":
        for i in range(1000):
            n("token", "token {}", i)
        for i in range(999):
            print(f"line {i}")
        print("the very last line")
    elif mode == "fail":
        for i in range(30):
            print(f"error line {i}", file=sys.stderr)
        n("failing", "About to fail")
        sys.exit(3)
    elif mode == "huge":
        out = sys.stdout.buffer
        out.write(b"x" * (2 * 1024 * 1024) + b"\\n")
        out.write(b"after the huge line\\n")
        out.write(b'{"ts": 1.0, "level": "info", "actor": "a", "action": "b", "human": "'
                  + b"z" * (2 * 1024 * 1024) + b'"}\\n')
        out.write(b"bad \\xff bytes\\n")
        out.flush()
        sys.stderr.write("y" * (2 * 1024 * 1024))  # no newline at the end
    elif mode == "sanitize":
        print('{"ts": 1.0, "level": "error", "actor": "x y", "action": "bad action!", '
              '"human": "hi\\\\u0007 there", "origin": "elsewhere#1"}')
    elif mode in ("hang", "stubborn", "graceful"):
        if mode == "stubborn":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        elif mode == "graceful":
            # Not n() in the handler itself: it may interrupt an n() holding a sink's lock.
            def stop(signum, frame):
                raise Stop
            signal.signal(signal.SIGTERM, stop)
        try:
            n("ready", "Ready, pid {}", os.getpid())
            # Short sleeps, not one long one: a SIGTERM landing after n() returned but before
            # the sleep began runs its handler only at the next bytecode boundary, so a single
            # time.sleep(600) would sleep through it (CI saw exactly that, under load).
            for _ in range(6000):
                time.sleep(0.1)
        except Stop:
            n("stopping", "Stopping on SIGTERM")
    elif mode == "grandchild":
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        n("spawned", "Left a grandchild holding stdout")
    elif mode == "interleave":
        for i in range(200):
            print(f"line {i}")
            n("tick", "tick {}", i)
        sys.stdout.buffer.write(b"raw bytes line\\n")
        n("tick", "after the raw line")
    elif mode == "partial":
        print("half a line", end="")
        n("mid", "narrated mid-line")
        print(" and the rest")
    elif mode == "fork":
        n("before", "before the fork")
        pid = os.fork()
        if pid == 0:
            n("in_child", "narrated in the forked child")
            print("printed in the forked child")
            sys.stdout.flush()
            os._exit(0)
        os.waitpid(pid, 0)
        n("after", "after the fork")
    elif mode == "env":
        print(os.environ.get("TRACEPARENT"))
        print(os.environ.get("NARRATION_OUTPUT"))
'''


@pytest.fixture
def worker(tmp_path: Path) -> list[str]:
    (tmp_path / "toyworker.py").write_text(TOYWORKER)
    code = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import toyworker; " + (
        "toyworker.main(sys.argv[1])"
    )
    return [sys.executable, "-c", code]


def _by(events: list[NarrationEvent], action: str) -> list[NarrationEvent]:
    return [e for e in events if e.action == action]


def _child_events(events: list[NarrationEvent]) -> list[NarrationEvent]:
    return [e for e in events if e.actor == "toyworker"]


async def _run(argv: list[str], **options: object) -> tuple[int, list[NarrationEvent], int]:
    """Run `argv` under ProcessCapture in the parent's job; (exit code, events, pid)."""
    with capture() as captured, narration_context(PARENT):
        proc = ProcessCapture(argv, **options)  # type: ignore[arg-type]
        code = await proc.run()
    assert proc.pid is not None
    return code, captured.events, proc.pid


async def test_child_events_land_in_the_parents_job(worker: list[str]) -> None:
    code, events, pid = await _run([*worker, "basic"])
    assert code == 0
    child = _child_events(events)
    assert [(e.action, e.level, e.human) for e in child] == [
        ("start", Level.INFO, f"Worker starting in job {JOB}"),
        ("slow", Level.WARN, "Model load is slow"),
        ("done", Level.INFO, "Worker done"),
    ]
    assert {(e.job_id, e.correlation_id, e.trace_id) for e in child} == {(JOB, "corr-proc", TRACE)}
    child_spans = {e.span_id for e in child}
    assert len(child_spans) == 1 and SPAN not in child_spans  # the child's own span
    assert child[0].fields == {"gpu": 0} and child[2].fields == {"tokens": 3}
    assert child[0].fn_name == "toyworker.main"
    program = os.path.basename(sys.executable)
    stdout = _by(events, "stdout")
    assert [(e.actor, e.level, e.human) for e in stdout] == [
        (program, Level.INFO, "plain stdout line"),
        (program, Level.INFO, '{"not": "an event"}'),
    ]
    stderr = _by(events, "stderr")
    assert [(e.actor, e.level, e.human) for e in stderr] == [
        (program, Level.WARN, "a warning on stderr")
    ]
    for event in stdout + stderr:
        assert (event.job_id, event.correlation_id, event.trace_id, event.span_id) == (
            JOB,
            "corr-proc",
            TRACE,
            SPAN,
        )
        assert event.origin is not None and event.origin.startswith(f"{program}:pid-{pid}#")
    assert len(events) == 6
    # Each origin names its child and the line's place in its output: 1..6, each once, in order.
    for group, name in ((child, "toyworker"), (stdout, program), (stderr, program)):
        numbers = [_origin_number(e, f"{name}:pid-{pid}#") for e in group]
        assert numbers == sorted(numbers)
    assert sorted(int(str(e.origin).rsplit("#", 1)[1]) for e in events) == list(range(1, 7))


def _origin_number(event: NarrationEvent, prefix: str) -> int:
    assert event.origin is not None and event.origin.startswith(prefix), event.origin
    return int(event.origin[len(prefix) :])


async def test_the_child_gets_a_new_span_of_the_parents_trace(worker: list[str]) -> None:
    code, events, _ = await _run([*worker, "env"], origin_prefix="toy")
    assert code == 0
    traceparent, output = (e.human for e in _by(events, "stdout"))
    parsed = parse_traceparent(traceparent)
    assert parsed is not None and parsed[0] == TRACE and parsed[1] != SPAN
    assert output == "jsonl"
    assert {e.actor for e in events} == {"toy"}


async def test_no_line_is_lost_at_exit(worker: list[str]) -> None:
    code, events, _ = await _run([*worker, "many"])
    assert code == 0
    assert [e.human for e in _by(events, "token")] == [f"token {i}" for i in range(1000)]
    lines = [e.human for e in _by(events, "stdout")]
    assert lines == [*(f"line {i}" for i in range(999)), "the very last line"]


async def test_prints_and_events_arrive_in_the_order_the_child_made_them(
    worker: list[str],
) -> None:
    """The JSONL sink writes on its own thread; print() shares its queue, so no swaps."""
    code, events, _ = await _run([*worker, "interleave"])
    assert code == 0
    expected = [
        ("stdout", f"line {i}") if j == 0 else ("tick", f"tick {i}")
        for i in range(200)
        for j in (0, 1)
    ]
    expected += [("stdout", "raw bytes line"), ("tick", "after the raw line")]
    assert [(e.action, e.human) for e in events] == expected


async def test_an_event_narrated_mid_line_keeps_both_whole(worker: list[str]) -> None:
    code, events, _ = await _run([*worker, "partial"])
    assert code == 0
    assert [(e.action, e.human) for e in events] == [
        ("stdout", "half a line"),
        ("mid", "narrated mid-line"),
        ("stdout", " and the rest"),
    ]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
async def test_a_forked_child_narrates_through_its_own_writer_without_repeats(
    worker: list[str],
) -> None:
    """Threads do not survive fork: the JSONL writer restarts in the child, queue emptied."""
    code, events, _ = await _run([*worker, "fork"])
    assert code == 0
    seen = [(e.action, e.human) for e in events]
    # "before" may still be queued in the parent at the fork: the parent writes it, whenever
    # its writer gets to it, and the child (whose copy of the queue is emptied) does not.
    assert sorted(seen) == sorted(
        [
            ("before", "before the fork"),
            ("in_child", "narrated in the forked child"),
            ("stdout", "printed in the forked child"),
            ("after", "after the fork"),
        ]
    )
    assert seen.index(("in_child", "narrated in the forked child")) < seen.index(
        ("stdout", "printed in the forked child")
    )
    assert seen[-1] == ("after", "after the fork")


async def test_a_failing_child_raises_with_its_exit_code_and_last_stderr_lines(
    worker: list[str],
) -> None:
    argv = [*worker, "fail"]
    with capture() as captured, narration_context(PARENT):
        proc = ProcessCapture(argv)
        with pytest.raises(ProcessFailedError) as failed:
            await proc.run()
    error = failed.value
    assert error.exit_code == 3 and proc.exit_code == 3
    assert error.stderr_tail == [f"error line {i}" for i in range(10, 30)]
    assert error.argv == argv
    program = os.path.basename(sys.executable)
    assert str(error).startswith(f"{program} exited with code 3; last stderr lines:\n")
    assert str(error).endswith("\n  error line 28\n  error line 29")
    events = captured.events
    assert [e.human for e in _by(events, "stderr")] == [f"error line {i}" for i in range(30)]
    assert {e.level for e in _by(events, "stderr")} == {Level.WARN}
    assert [e.human for e in _by(events, "failing")] == ["About to fail"]
    again = pickle.loads(pickle.dumps(error))
    assert (again.exit_code, again.stderr_tail, str(again)) == (3, error.stderr_tail, str(error))


def test_process_failed_names_a_signal() -> None:
    error = ProcessFailedError(-9, [], ["/usr/bin/worker", "--x"])
    assert str(error) == "worker was killed by SIGKILL (exit code -9) (no stderr output)"


async def test_stderr_tail_length_is_configurable(worker: list[str]) -> None:
    with capture(), narration_context(PARENT), pytest.raises(ProcessFailedError) as failed:
        await ProcessCapture([*worker, "fail"], stderr_tail=2).run()
    assert failed.value.stderr_tail == ["error line 28", "error line 29"]


async def test_huge_lines_are_cut_not_fatal(worker: list[str]) -> None:
    code, events, _ = await _run([*worker, "huge"])
    assert code == 0
    big = 2 * 1024 * 1024
    stdout = _by(events, "stdout")
    assert len(stdout) == 4
    huge, after, huge_json, bad = stdout
    assert huge.fields == {"cut_bytes": big - MAX_LINE_BYTES}
    assert (
        huge.human == "x" * MAX_MESSAGE_CHARS + f"… (+{MAX_LINE_BYTES - MAX_MESSAGE_CHARS} chars)"
    )
    assert after.human == "after the huge line" and after.fields is None
    assert huge_json.fields is not None and huge_json.fields["cut_bytes"] > 0  # cut: not JSON
    assert bad.human == "bad \ufffd bytes"
    [stderr] = _by(events, "stderr")  # the last line, without a newline, still arrives
    assert stderr.fields == {"cut_bytes": big - MAX_LINE_BYTES}
    assert stderr.human.startswith("y" * 100)


async def test_child_event_texts_are_sanitized_and_origins_kept(worker: list[str]) -> None:
    code, events, _ = await _run([*worker, "sanitize"])
    assert code == 0
    [event] = events
    assert (event.actor, event.action, event.level, event.human) == (
        "x_y",
        "bad_action",
        Level.ERROR,
        "hi there",
    )
    assert event.origin == "elsewhere#1"  # where it first happened is kept
    assert (event.job_id, event.correlation_id) == (JOB, "corr-proc")


async def _started(captured: CapturedEvents, action: str) -> NarrationEvent:
    """The first event with `action`, waiting for it without blocking the loop (bounded)."""
    events = await asyncio.to_thread(captured.wait_for, 1, 20.0)
    assert events[0].action == action, events
    return events[0]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize(
    ("mode", "exit_code"), [("hang", -signal.SIGTERM), ("stubborn", -signal.SIGKILL)]
)
async def test_cancelling_run_kills_the_child(worker: list[str], mode: str, exit_code: int) -> None:
    with capture() as captured, narration_context(PARENT):
        proc = ProcessCapture([*worker, mode], kill_grace=0.5)
        task = asyncio.create_task(proc.run())
        await _started(captured, "ready")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 20)
    assert proc.pid is not None and proc.exit_code == exit_code
    assert _gone(proc.pid)


async def test_a_child_stopping_gracefully_has_its_last_words_relayed(worker: list[str]) -> None:
    with capture() as captured, narration_context(PARENT):
        # A wide grace, and the exit code asserted with the events: a child that missed its
        # SIGTERM (see the toy's short sleeps) shows as -9, a lost last event as 0.
        proc = ProcessCapture([*worker, "graceful"], kill_grace=30)
        task = asyncio.create_task(proc.run())
        await _started(captured, "ready")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 60)
    assert (proc.exit_code, [e.action for e in captured.events]) == (0, ["ready", "stopping"])


async def test_output_held_open_by_a_grandchild_does_not_hang(worker: list[str]) -> None:
    with capture() as captured, narration_context(PARENT):
        proc = ProcessCapture([*worker, "grandchild"], drain_timeout=0.5)
        try:
            code = await asyncio.wait_for(proc.run(), 20)
        finally:
            assert proc.pid is not None
            os.killpg(proc.pid, signal.SIGKILL)  # the grandchild is in the child's group
    assert code == 0
    assert [e.action for e in captured.events] == ["spawned", "output_left_open"]
    assert captured.events[1].level == Level.WARN


async def test_a_missing_program_raises_oserror() -> None:
    with pytest.raises(FileNotFoundError):
        await ProcessCapture(["/nonexistent/program"]).run()


def test_argv_must_be_a_sequence_of_arguments() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        ProcessCapture("python -c pass")
    with pytest.raises(ValueError, match="non-empty"):
        ProcessCapture([])
