"""The stream benchmarks' server (`benchmarks._stream_server`) as a child process, driven over
its `/bench/*` control routes.

    async with ServerProcess("ours", "--max-events", "2000") as server:
        jobs = await server.jobs(1)
        await server.produce(jobs, events=10_000, streams=1)

A `ServiceProcess` (narration's one way to run a server in a child: free port, its own session,
a log, `GET /bench/stats` as the readiness probe, SIGTERM then SIGKILL to stop) plus the
control routes as methods. The child runs with narration's defaults: no `NARRATION_*`
variable of this shell reaches it.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from narration._process import ServiceProcess

__all__ = ["ServerProcess"]

REPO = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 60.0
STOP_GRACE_S = 30.0  # a `--profile` run writes its profile while stopping


class ServerProcess(ServiceProcess):
    """`python -m benchmarks._stream_server --impl <impl> <args>`; `async with` starts it,
    waits until it answers and stops it."""

    def __init__(self, impl: str, *args: str) -> None:
        super().__init__(
            f"bench-{impl}",
            ["--impl", impl, *args],
            module="benchmarks._stream_server",
            health_path="/bench/stats",
        )
        self.impl = impl
        env = {key: value for key, value in self.env.items() if not key.startswith("NARRATION_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self.env = env
        self.http: httpx.AsyncClient | None = None
        self.stream_port = self.port

    async def __aenter__(self) -> ServerProcess:
        self.start()
        try:
            await self.wait_healthy_async(STARTUP_TIMEOUT_S)
        except BaseException:
            await self._stop(failed=True)
            raise
        self.http = httpx.AsyncClient(base_url=self.url, timeout=300.0)
        # Where streams are read: the control port, except for the raw floor's own server.
        self.stream_port = (await self.stats()).get("stream_port") or self.port
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.http is not None:
            await self.http.aclose()
        await self._stop(failed=exc_type is not None)

    async def _stop(self, failed: bool) -> None:
        """Stop the server; show its log when it or the benchmark failed."""
        code = await asyncio.to_thread(self.stop, STOP_GRACE_S)
        if failed or code != 0:
            print(f"--- {self.name} (exit code {code}) ---\n{self.log()}", file=sys.stderr)
        self.remove_log()

    @property
    def base_url(self) -> str:
        return self.url

    async def jobs(self, count: int) -> list[str]:
        """`count` idle jobs; their ids."""
        response = await self._http().post("/bench/jobs", json={"count": count})
        jobs: list[str] = response.json()["jobs"]
        return jobs

    async def produce(self, jobs: list[str], events: int, streams: int, **spec: Any) -> Any:
        """Emit `events` into each job once `streams` streams are open; the producer's timings."""
        body = {"jobs": jobs, "events": events, "streams": streams, **spec}
        answer = (await self._http().post("/bench/produce", json=body)).json()
        if "error" in answer:
            raise RuntimeError(f"{self.impl}: {answer['error']}")
        return answer

    async def stats(self, collect: bool = False) -> dict[str, Any]:
        """CPU seconds, RSS, open streams, jobs and open-file limit of the server."""
        response = await self._http().get("/bench/stats", params={"collect": collect})
        answer: dict[str, Any] = response.json()
        return answer

    async def wait_streams(self, count: int, timeout: float = 30.0) -> int:
        """Wait until the server has `count` open streams; the number it has at the end."""
        deadline = time.monotonic() + timeout
        while True:
            now = (await self.stats())["open_streams"]
            if now == count or time.monotonic() > deadline:
                return int(now)
            await asyncio.sleep(0.05)

    def _http(self) -> httpx.AsyncClient:
        if self.http is None:
            raise RuntimeError(f"{self.name} is not started: use `async with`")
        return self.http
