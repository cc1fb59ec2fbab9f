"""A child process for `ProcessCapture`: started in its own session with piped output, told
apart from its pipes when it exits, and stopped (its whole process group) with a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence

from .lines import LineSplitter

__all__ = ["Child", "start_child"]

_CHUNK = 64 * 1024
_STREAM_LIMIT = 256 * 1024  # asyncio's pipe buffer before it pauses reading
_POSIX = sys.platform != "win32"


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


class Child:
    """A started child: its pid, its pipes, and the event of its exit."""

    def __init__(
        self, transport: asyncio.SubprocessTransport, protocol: _ExitAwareProtocol
    ) -> None:
        self._transport = transport
        self.exited = protocol.exited
        process = asyncio.subprocess.Process(transport, protocol, asyncio.get_running_loop())
        assert process.stdout is not None and process.stderr is not None
        self.pid: int = process.pid
        self.stdout: asyncio.StreamReader = process.stdout
        self.stderr: asyncio.StreamReader = process.stderr
        self.bytes_read = 0  # across both pipes: a reader that waits can tell output from none

    @property
    def exit_code(self) -> int | None:
        """The exit code once it exited (negative: killed by that signal), else None."""
        return self._transport.get_returncode()

    async def read_lines(
        self, reader: asyncio.StreamReader, on_line: Callable[[bytes, int], None]
    ) -> None:
        """Read `reader` to its end, calling `on_line(line, bytes_cut)` per line."""
        lines = LineSplitter()
        while chunk := await reader.read(_CHUNK):
            self.bytes_read += len(chunk)
            for line, cut in lines.feed(chunk):
                on_line(line, cut)
        for line, cut in lines.end():
            on_line(line, cut)

    async def stop(self, grace: float) -> None:
        """SIGTERM its process group, then SIGKILL if it is still there after `grace` s."""
        if self.exited.is_set():
            return
        self.signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.exited.wait(), grace)
        except TimeoutError:
            self.signal(signal.SIGKILL if _POSIX else signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.exited.wait(), grace)

    def kill(self) -> None:
        """SIGKILL its process group if it has not exited yet."""
        if not self.exited.is_set():
            self.signal(signal.SIGKILL if _POSIX else signal.SIGTERM)

    def signal(self, signum: int) -> None:
        """Send `signum` to its process group (it leads its own session)."""
        try:
            if _POSIX:
                os.killpg(self.pid, signum)
            else:  # pragma: no cover - Windows
                os.kill(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self) -> None:
        """Let go of the pipes and the process handle."""
        self._transport.close()


async def start_child(
    argv: Sequence[str], env: Mapping[str, str], cwd: str | os.PathLike[str] | None
) -> Child:
    """Start `argv` with stdin from /dev/null, stdout and stderr piped, in a session of its own
    (so a Ctrl-C meant for the parent does not reach it, and it can be stopped as a group)."""
    loop = asyncio.get_running_loop()

    def protocol() -> _ExitAwareProtocol:
        return _ExitAwareProtocol(_STREAM_LIMIT, loop)

    transport, made = await loop.subprocess_exec(
        protocol,
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
        cwd=cwd,
        start_new_session=_POSIX,
    )
    return Child(transport, made)
