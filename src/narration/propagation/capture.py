"""`ProcessCapture`: run a child process and turn its output into events of the current job.

The child gets `child_env()` (the job's ids, `NARRATION_OUTPUT=jsonl`). Its stdout and stderr
are read concurrently, line by line:

- a stdout line that is a narration event (JSON) is relayed into the current job with its own
  actor, action, level, correlation id and trace ids, and an `origin` naming the child;
- any other stdout line becomes a `stdout` event, a stderr line a `stderr` event at warn level
  (blank lines are skipped); their actor is the child's program name (or `origin_prefix`);
- a line over 1 MiB is cut there (the event says how many bytes were cut), never a crash.

Every line of both pipes is relayed before `run()` returns or raises; a non-zero exit raises
`ProcessFailedError` with the exit code and the last stderr lines. Cancelling `run()` stops the
child (SIGTERM to its process group, SIGKILL after `kill_grace` seconds) and re-raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from ..context import current_context
from ..emit import relay
from ..errors import NarrationError
from ..events import Level, NarrationEvent, decode_event, timestamp
from ..sanitize import MAX_MESSAGE_CHARS, clean_action, clean_text
from .subprocess import child_env

__all__ = ["MAX_LINE_BYTES", "ProcessCapture", "ProcessFailedError"]

MAX_LINE_BYTES = 1024 * 1024  # a longer line is cut here
_CHUNK = 64 * 1024
_STREAM_LIMIT = 256 * 1024  # asyncio's pipe buffer before it pauses reading
_TAIL_LINE_CHARS = 1000  # per stderr line kept for ProcessFailedError
_POSIX = sys.platform != "win32"


class ProcessFailedError(NarrationError):
    """A child process ended with a non-zero exit code (negative: killed by that signal)."""

    def __init__(self, exit_code: int, stderr_tail: list[str], argv: Sequence[str]) -> None:
        self.exit_code = exit_code
        self.stderr_tail = list(stderr_tail)
        self.argv = list(argv)
        super().__init__(self._describe())

    def _describe(self) -> str:
        name = os.path.basename(self.argv[0]) if self.argv else "the process"
        if self.exit_code < 0:
            try:
                how = f"was killed by {signal.Signals(-self.exit_code).name}"
            except ValueError:
                how = f"was killed by signal {-self.exit_code}"
            how += f" (exit code {self.exit_code})"
        else:
            how = f"exited with code {self.exit_code}"
        if not self.stderr_tail:
            return f"{name} {how} (no stderr output)"
        lines = "\n".join(f"  {line}" for line in self.stderr_tail)
        return f"{name} {how}; last stderr lines:\n{lines}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.exit_code, self.stderr_tail, self.argv))


class _ExitAwareProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """asyncio's stream protocol, plus an event set when the process exits.

    `Process.wait()` only returns once the pipes are closed too, which never happens while a
    grandchild still holds them; the exit itself is what tells us the child is gone.
    """

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=limit, loop=loop)
        self.exited = asyncio.Event()

    def process_exited(self) -> None:
        super().process_exited()
        self.exited.set()


class ProcessCapture:
    """Run `argv` as a child process whose output narrates into the current job.

    `env` is the child's whole environment, by default `child_env()` taken when `run()` starts
    (the caller's context); to add variables, pass `child_env({**os.environ, "X": "1"})`. `cwd` is
    the child's working directory; `stderr_tail` how many last stderr lines `ProcessFailedError`
    carries; `origin_prefix` names the child in `origin` (default: each event's actor) and is
    the actor of its plain output lines (default: the program's file name). `kill_grace`: seconds
    between SIGTERM and SIGKILL on cancellation; `drain_timeout`: after the exit, seconds
    without output after which pipes still held open (by a grandchild) are abandoned.

    `capture = ProcessCapture([sys.executable, "-m", "worker"]); await capture.run()`
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        stderr_tail: int = 20,
        origin_prefix: str | None = None,
        kill_grace: float = 5.0,
        drain_timeout: float = 5.0,
    ) -> None:
        if isinstance(argv, str | bytes) or not argv:
            raise ValueError("argv must be a non-empty sequence of arguments")
        self.argv = [os.fspath(arg) for arg in argv]
        self.env = env
        self.cwd = cwd
        self.origin_prefix = origin_prefix
        self.kill_grace = kill_grace
        self.drain_timeout = drain_timeout
        self.stderr_lines: deque[str] = deque(maxlen=max(stderr_tail, 0))
        self.exit_code: int | None = None
        self.events_relayed = 0
        self._pid: int | None = None
        self._actor = origin_prefix or clean_action(os.path.basename(self.argv[0]))[0]
        self._seq = 0
        self._bytes_read = 0
        self._started = False

    @property
    def pid(self) -> int | None:
        """The child's process id (None until `run()` started it)."""
        return self._pid

    async def run(self) -> int:
        """Run the child to its end, relaying its output; return its exit code (0).

        Raises `ProcessFailedError` on a non-zero exit, `OSError` when it cannot be started. Once
        per instance.
        """
        if self._started:
            raise RuntimeError("a ProcessCapture runs once; make a new one")
        self._started = True
        env = child_env() if self.env is None else dict(self.env)
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.subprocess_exec(
            lambda: _ExitAwareProtocol(_STREAM_LIMIT, loop),
            *self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=self.cwd,
            start_new_session=_POSIX,
        )
        proc = asyncio.subprocess.Process(transport, protocol, loop)
        self._pid = proc.pid
        assert proc.stdout is not None and proc.stderr is not None
        readers = [
            asyncio.create_task(self._pump(proc.stdout, self._on_stdout)),
            asyncio.create_task(self._pump(proc.stderr, self._on_stderr)),
        ]
        try:
            await protocol.exited.wait()
            await self._drain(readers)
        except BaseException:
            try:
                await self._stop(protocol.exited)
                await self._drain(readers, patience=min(self.drain_timeout, 1.0))
            finally:
                if not protocol.exited.is_set():
                    self._signal(signal.SIGKILL if _POSIX else signal.SIGTERM)
                for reader in readers:
                    reader.cancel()
                transport.close()
            raise
        finally:
            self.exit_code = transport.get_returncode()
        transport.close()
        code = self.exit_code
        assert code is not None
        if code != 0:
            raise ProcessFailedError(code, list(self.stderr_lines), self.argv)
        return code

    async def _drain(
        self, readers: list[asyncio.Task[None]], patience: float | None = None
    ) -> None:
        """Wait for both pipes to reach their end; give up after `patience` s without output."""
        patience = self.drain_timeout if patience is None else patience
        pending = {reader for reader in readers if not reader.done()}
        while pending:
            before = self._bytes_read
            _, pending = await asyncio.wait(pending, timeout=patience)
            if pending and self._bytes_read == before:
                for reader in pending:
                    reader.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                self._emit_line(
                    f"stopped reading the output of pid {self._pid}: it exited, but a process"
                    " it started still holds its stdout/stderr open",
                    "output_left_open",
                    Level.WARN,
                )
                break
        for reader in readers:
            if reader.done() and not reader.cancelled():
                error = reader.exception()
                if error is not None:
                    raise error

    async def _stop(self, exited: asyncio.Event) -> None:
        """SIGTERM the child's process group, then SIGKILL if it is still there after grace."""
        if exited.is_set():
            return
        self._signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(exited.wait(), self.kill_grace)
        except TimeoutError:
            self._signal(signal.SIGKILL if _POSIX else signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(exited.wait(), self.kill_grace)

    def _signal(self, signum: int) -> None:
        if self._pid is None:
            return
        try:
            if _POSIX:
                os.killpg(self._pid, signum)  # the child leads its own session and group
            else:  # pragma: no cover - Windows
                os.kill(self._pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    async def _pump(
        self, reader: asyncio.StreamReader, on_line: Callable[[bytes, int], None]
    ) -> None:
        """Read `reader` to its end, calling `on_line(line, bytes_cut)` per line."""
        partial = bytearray()
        cut = 0
        limit = MAX_LINE_BYTES
        while True:
            chunk = await reader.read(_CHUNK)
            if not chunk:
                break
            self._bytes_read += len(chunk)
            pieces = chunk.split(b"\n")
            tail = pieces.pop()
            for piece in pieces:
                if partial or cut:
                    room = limit - len(partial)
                    line = bytes(partial) + piece[:room]
                    dropped = cut + max(len(piece) - room, 0)
                    partial.clear()
                    cut = 0
                else:
                    line, dropped = piece[:limit], max(len(piece) - limit, 0)
                on_line(line, dropped)
            room = limit - len(partial)
            partial += tail[:room]
            cut += max(len(tail) - room, 0)
        if partial or cut:
            on_line(bytes(partial), cut)

    def _on_stdout(self, line: bytes, cut: int) -> None:
        if not cut and line.lstrip()[:1] == b"{":
            try:
                event = decode_event(line)
            except msgspec.DecodeError:  # not an event: an ordinary line
                pass
            else:
                self._relay_event(event)
                return
        self._on_text(line, cut, "stdout", Level.INFO)

    def _on_stderr(self, line: bytes, cut: int) -> None:
        self._on_text(line, cut, "stderr", Level.WARN)

    def _on_text(self, line: bytes, cut: int, action: str, level: Level) -> None:
        text = line.decode("utf-8", "replace").rstrip()
        if not text:
            return
        if action == "stderr" and self.stderr_lines.maxlen:
            self.stderr_lines.append(clean_text(text, _TAIL_LINE_CHARS))
        self._emit_line(text, action, level, {"cut_bytes": cut} if cut else None)

    def _emit_line(
        self, text: str, action: str, level: Level, fields: dict[str, Any] | None = None
    ) -> None:
        event = NarrationEvent(
            ts=timestamp(),
            level=level,
            actor=self._actor,
            action=action,
            human=clean_text(text),
            fields=fields,
        )
        self._seq += 1
        relay(event, f"{self._actor}:pid-{self._pid}#{self._seq}")
        self.events_relayed += 1

    def _relay_event(self, event: NarrationEvent) -> None:
        """Relay one event the child narrated, its texts and names checked like `n()` does."""
        human = event.human
        if not (human.isprintable() and len(human) <= MAX_MESSAGE_CHARS):
            human = clean_text(human)
        action = clean_action(event.action)[0]
        actor = clean_action(event.actor)[0]
        if human is not event.human or action != event.action or actor != event.actor:
            event = msgspec.structs.replace(event, human=human, action=action, actor=actor)
        job_id = event.job_id
        where = job_id if job_id and job_id != current_context().job_id else f"pid-{self._pid}"
        self._seq += 1
        relay(event, f"{self.origin_prefix or actor}:{where}#{self._seq}")
        self.events_relayed += 1
