"""`MultiServiceHarness`: a queen and a hive as separate OS processes, for end-to-end tests.

    async with MultiServiceHarness() as services:
        async with JobClient(services.queen_url, correlation_id="c-1") as client:
            events, terminal = await client.run(Operation.infer("localhost", "m", "Hi"))
        services.kill_hive()                 # SIGKILL, e.g. in the middle of a stream

Each service is `python -m narration.cli queen|hive` on a free 127.0.0.1 port; start-up waits
(bounded) until both answer `GET /health`. The queen knows the hive as `hive_id`
("localhost"). `hive_env` is added to the hive's environment, and so reaches the workers it
starts: `{"NARRATION_WORKER_FAIL": "1"}` makes every worker exit 1,
`{"NARRATION_WORKER_TOKEN_DELAY": "0.2"}` slows token generation. With `start_hive=False` the
queen points at a port nothing listens on.

The process methods are synchronous (they only signal and reap processes); the harness is both
a sync and an async context manager (the async one starts and stops in a worker thread).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

from .._process import ServiceProcess, free_port
from ..client import JobClient

__all__ = ["MultiServiceHarness"]


class MultiServiceHarness:
    """A queen and (unless `start_hive=False`) a hive, each its own OS process."""

    def __init__(
        self,
        *,
        hive_id: str = "localhost",
        hive_env: Mapping[str, str] | None = None,
        queen_env: Mapping[str, str] | None = None,
        start_hive: bool = True,
        startup_timeout: float = 20.0,
    ) -> None:
        self.hive_id = hive_id
        self.startup_timeout = startup_timeout
        hive_port = free_port()
        self.hive: ServiceProcess | None = (
            ServiceProcess("hive", ["hive", "--id", hive_id], port=hive_port, env=hive_env)
            if start_hive
            else None
        )
        self.hive_url = f"http://127.0.0.1:{hive_port}"
        self.queen = ServiceProcess(
            "queen",
            ["queen", "--hive", f"{hive_id}={self.hive_url}"],
            port=free_port(exclude={hive_port}),
            env=queen_env,
        )
        self.queen_url = self.queen.url
        self._started = False

    @property
    def services(self) -> tuple[ServiceProcess, ...]:
        """The service processes (hive first, when there is one)."""
        return (self.queen,) if self.hive is None else (self.hive, self.queen)

    def start(self) -> Self:
        """Start every service and wait until each answers `/health` (bounded)."""
        if self._started:
            raise RuntimeError("the harness is already started")
        self._started = True
        try:
            for service in self.services:
                service.start()
            for service in self.services:
                service.wait_healthy(self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def client(self, correlation_id: str | None = None, **options: Any) -> JobClient:
        """A `JobClient` for the queen (close it, or use `async with`)."""
        return JobClient(self.queen_url, correlation_id=correlation_id, **options)

    def kill_hive(self) -> None:
        """SIGKILL the hive process (no goodbye to its streams) and reap it."""
        if self.hive is None:
            raise RuntimeError("this harness runs no hive")
        self.hive.kill()

    def stop(self) -> None:
        """Stop every service (SIGTERM, SIGKILL after a grace) and delete their logs."""
        for service in reversed(self.services):
            service.stop()
            service.remove_log()

    def logs(self) -> str:
        """What the services wrote so far (for failing tests)."""
        return "\n".join(f"--- {s.name} ---\n{s.log()}" for s in self.services)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)
