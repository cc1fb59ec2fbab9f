"""Child processes: free ports, a service's environment, a graceful stop, and `ServiceProcess`.

    hive = ServiceProcess("hive", ["hive", "--id", "localhost"])
    hive.start()
    hive.wait_healthy()          # polls GET /health, bounded; raises with the service's log
    ...
    hive.stop()                  # SIGTERM (graceful: streams end), SIGKILL after a grace

`ServiceProcess` runs `python -m narration.cli <args> --host H --port P` (or another module
taking `--host`/`--port`) in its own session, so a Ctrl-C meant for the parent does not hit it
directly, with its output written to a log file. Used by `narration demo`,
`narration.testing.MultiServiceHarness`, the tests and the benchmarks; `stop_process` is the
one SIGTERM-wait-SIGKILL for any `subprocess.Popen` (the private `redis-server` too).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx

from .environment import JOB_SCOPED

__all__ = [
    "JOB_SCOPED_ENV",
    "ServiceProcess",
    "free_port",
    "kill_process",
    "service_env",
    "stop_process",
]

JOB_SCOPED_ENV = JOB_SCOPED
"""Variables that tie a process to one job; a long-running service must not inherit them."""


def free_port(host: str = "127.0.0.1", exclude: Collection[int] = ()) -> int:
    """A TCP port that is free on `host` right now (the kernel's pick), not in `exclude`."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in exclude:
            return port


def service_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without job-scoped variables, plus `extra`."""
    env = {key: value for key, value in os.environ.items() if key not in JOB_SCOPED_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def stop_process(process: subprocess.Popen[Any], grace: float = 10.0) -> int:
    """SIGTERM `process` and wait up to `grace` s, then SIGKILL it; its exit code, reaped."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def kill_process(process: subprocess.Popen[Any]) -> int:
    """SIGKILL `process` (no clean-up on its side); its exit code, reaped."""
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    return process.wait()


class ServiceProcess:
    """One service run as `python -m <module> <args> --host H --port P` (a free port if 0).

    `module` is `narration.cli` (a subcommand in `args`), `narration.server`, or any module
    taking `--host`/`--port` (`uvicorn` with an app in `args`); `health_path` is where it
    answers 200 once ready. After `stop()` or `kill()` the same object can `start()` again, on
    the same port.
    """

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        env: Mapping[str, str] | None = None,
        module: str = "narration.cli",
        health_path: str = "/health",
    ) -> None:
        self.name = name
        self.health_path = health_path
        self.host = host
        self.port = port or free_port(host)
        self.argv = [
            sys.executable,
            "-m",
            module,
            *args,
            "--host",
            host,
            "--port",
            str(self.port),
        ]
        self.env = service_env(env)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The service's base URL."""
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The process id, once started."""
        return self.process.pid if self.process is not None else None

    def start(self) -> ServiceProcess:
        """Start the process (does not wait for it to listen: see `wait_healthy`)."""
        if self.alive():
            raise RuntimeError(f"{self.name} is already running")
        if self.log_path is None:
            handle, path = tempfile.mkstemp(prefix=f"narration-{self.name}-", suffix=".log")
            self.log_path = Path(path)
            self._log = os.fdopen(handle, "wb")
        elif self._log is None:  # a restart: keep appending to the same log
            self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        return self

    def wait_healthy(self, timeout: float = 15.0) -> None:
        """Poll `GET <health_path>` until it answers 200; raise if the process exits or time
        runs out."""
        process = self._started()
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=0.5, trust_env=False) as http:
            while True:
                code = process.poll()
                if code is not None:
                    raise RuntimeError(
                        f"{self.name} exited with code {code} before it was ready:\n{self.log()}"
                    )
                try:
                    if http.get(self.url + self.health_path).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"{self.name} did not answer {self.url}{self.health_path} within "
                        f"{timeout} s:\n"
                        f"{self.log()}"
                    )
                time.sleep(0.05)

    async def wait_healthy_async(self, timeout: float = 15.0) -> None:
        """`wait_healthy` without blocking the event loop."""
        await asyncio.to_thread(self.wait_healthy, timeout)

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the process (no clean-up on its side) and reap it."""
        kill_process(self._started())

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM and wait up to `grace` s (then SIGKILL); the exit code, None if never run."""
        if self.process is None:
            return None
        code = stop_process(self.process, grace)
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def log(self, limit: int = 4000) -> str:
        """The end of what the service wrote (stdout and stderr)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        if self._log is not None:
            self._log.flush()
        text = self.log_path.read_bytes()[-limit:].decode("utf-8", "replace")
        return text

    def remove_log(self) -> None:
        """Delete the log file (after `stop`)."""
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)

    @contextmanager
    def running(self, timeout: float = 30.0) -> Iterator[ServiceProcess]:
        """Started and healthy (within `timeout` s) inside the block; stopped, its log
        deleted, after it."""
        self.start()
        try:
            self.wait_healthy(timeout)
            yield self
        finally:
            self.stop()
            self.remove_log()

    def _started(self) -> subprocess.Popen[bytes]:
        if self.process is None:
            raise RuntimeError(f"{self.name} is not started")
        return self.process

    def __repr__(self) -> str:
        state = "running" if self.alive() else "stopped"
        return f"ServiceProcess({self.name!r}, {self.url}, pid={self.pid}, {state})"
