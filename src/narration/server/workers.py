"""Several server processes on one port (`narration serve --workers N`): all of a machine's cores.

One Python process runs one core's worth of narration server. With `--workers N` the
`narration serve` process becomes a supervisor: it binds and listens on the port itself, then
runs N copies of the same command, each inheriting that listening socket (`--listen-fd`), so
the kernel hands every new connection to one of them. The workers share jobs through the store,
so any worker answers any job's record, stream, resume and cancel: that needs a shared store
(Redis). The memory store is refused, since each worker would see only its own jobs.

The supervisor forwards SIGINT/SIGTERM once to every worker (each then stops gracefully, as a
single server does), restarts a worker that died on its own (at most `_RESTARTS` times a
minute), and exits when all have stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

from ..store.memory_store import MemoryStore
from .app import server_states

__all__ = ["MEMORY_STORE_REFUSED", "check_workers", "run_workers", "worker_argv"]

logger = logging.getLogger("narration.server")

MEMORY_STORE_REFUSED = (
    "--workers {n} needs a shared store: with the memory store each worker process keeps its "
    "own jobs, so a request that reaches another worker would not find them. Use the Redis "
    "store (--store redis://host:6379/0 or redis+cluster://host:port,...; NARRATION_STORE), "
    "or --workers 1"
)
_RESTARTS = 5  # a worker that dies more often than this in a minute stops the supervisor


def check_workers(app: Any, workers: int) -> None:
    """ValueError unless `app` can run in `workers` processes (not with the memory store)."""
    if workers < 1:
        raise ValueError(f"--workers must be 1 or more, not {workers}")
    if workers > 1 and any(isinstance(s.store, MemoryStore) for s in server_states(app)):
        raise ValueError(MEMORY_STORE_REFUSED.format(n=workers))


def worker_argv(argv: Sequence[str], fd: int) -> list[str]:
    """The command line of one worker: `argv` (the supervisor's `narration ...` arguments)
    without its `--workers`, plus `--workers 1 --listen-fd FD`."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            kept.append(arg)
    return [sys.executable, "-m", "narration.cli", *kept, "--workers", "1", "--listen-fd", str(fd)]


def listening_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (`host`, `port`), inheritable by the workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=2048)
    sock.set_inheritable(True)
    return sock


def _wake_only(signum: int, frame: FrameType | None) -> None:
    """SIGCHLD's handler: its only job is the byte the wake-up fd receives."""


def _exited_children() -> list[tuple[int, int]]:
    """(pid, wait status) of every child that has exited, reaped without blocking."""
    exited: list[tuple[int, int]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:  # no children left
            return exited
        if pid == 0:
            return exited
        exited.append((pid, status))


def _wait_for_a_signal(wake_read: int) -> None:
    """Block until a signal arrives (its byte on the wake-up fd), then empty the pipe.

    Not `os.wait()`: a signal landing between the last bytecode and that call would have its
    Python handler run only after some child exits, so a SIGTERM could be slept through. The
    wake-up fd is written by the C-level handler the moment the signal lands, so a signal that
    came before `select()` makes it return at once.
    """
    select.select([wake_read], [], [])
    with contextlib.suppress(BlockingIOError):
        while os.read(wake_read, 4096):
            pass


def run_workers(argv: Sequence[str], host: str, port: int, workers: int) -> int:
    """Listen on `host`:`port`, run `workers` workers until a signal stops them; exit code."""
    sock = listening_socket(host, port)
    bound = sock.getsockname()[1]
    command = worker_argv(argv, sock.fileno())
    running: dict[int, subprocess.Popen[bytes]] = {}
    stopping = False
    deaths: list[float] = []

    def spawn() -> None:
        # A session of its own: a terminal's Ctrl-C reaches the supervisor alone, which
        # forwards one SIGTERM (a second signal would make a worker skip its graceful stop).
        child = subprocess.Popen(command, pass_fds=(sock.fileno(),), start_new_session=True)
        running[child.pid] = child

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            for child in running.values():
                child.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, _wake_only)
    wake_read, wake_write = os.pipe()
    for fd in (wake_read, wake_write):
        os.set_blocking(fd, False)
    previous_wake_fd = signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    try:
        for _ in range(workers):
            spawn()
        print(
            f"narration: {workers} worker processes serving on http://{host}:{bound}",
            file=sys.stderr,
            flush=True,
        )
        while running:
            for pid, status in _exited_children():
                child = running.pop(pid, None)
                if child is None or stopping:
                    continue
                code = os.waitstatus_to_exitcode(status)
                now = time.monotonic()
                deaths[:] = [t for t in deaths if now - t < 60] + [now]
                if len(deaths) > _RESTARTS:
                    logger.error("narration: workers keep dying (last exit %s); stopping", code)
                    stop(signal.SIGTERM, None)
                    continue
                logger.warning("narration: worker %d exited (%s); starting another", pid, code)
                spawn()
            if running:
                _wait_for_a_signal(wake_read)
    finally:
        signal.set_wakeup_fd(previous_wake_fd)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(wake_read)
        os.close(wake_write)
        sock.close()
    return 0 if len(deaths) <= _RESTARTS else 1
