"""Running the app under uvicorn with a graceful stop: streams are flushed and closed first."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from .app import server_states

__all__ = ["NarrationServer", "serve"]


class NarrationServer(uvicorn.Server):
    """A uvicorn server that, on shutdown, first ends running jobs and open SSE streams.

    Plain uvicorn waits for open connections before running the app's shutdown, and an SSE
    stream of a running job never closes by itself; this ends them before that wait.
    """

    def __init__(self, config: uvicorn.Config, announce: bool = False) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()
        self.announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.ready.set()
            if self.announce:
                print(f"narration: serving on {self.url} (Ctrl-C stops)", file=sys.stderr)
                print(f"  viewer: {self.url}/ui/", file=sys.stderr, flush=True)

    @property
    def url(self) -> str:
        """`http://host:port` of the listening socket (loopback shown for a wildcard bind)."""
        host = self.config.host
        host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    async def start(self, timeout: float = 10.0) -> asyncio.Task[None]:
        """Start serving in a task of the running loop; return it once the socket listens."""
        task = asyncio.create_task(self.serve(), name="narration-uvicorn")
        ready = asyncio.create_task(self.ready.wait())
        done, _ = await asyncio.wait((task, ready), timeout=timeout, return_when="FIRST_COMPLETED")
        if ready not in done:
            ready.cancel()
            if task.done():
                exc = task.exception() if not task.cancelled() else None
                raise RuntimeError(f"the server did not start: {exc!r}")
            task.cancel()
            raise TimeoutError(f"the server did not start within {timeout} s")
        return task

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        app: Any = self.config.app
        stops = [state.begin_shutdown() for state in server_states(app)]
        if stops:
            await asyncio.wait(stops)
        await super().shutdown(sockets)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        for server in self.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        raise RuntimeError("the server is not listening yet")


def make_server(
    app: ASGIApp, host: str = "127.0.0.1", port: int = 7833, **config: Any
) -> NarrationServer:
    """A server for `app`, not yet started (`await server.serve()` runs it)."""
    options: dict[str, Any] = {"log_level": "warning", "timeout_graceful_shutdown": 10, **config}
    return NarrationServer(uvicorn.Config(app, host=host, port=port, **options))


def serve(app: ASGIApp, host: str = "127.0.0.1", port: int = 7833, **config: Any) -> None:
    """Serve `app` until SIGINT/SIGTERM (on uvloop when it is installed: uvicorn's choice).

    Prints the URL it listens on. On Ctrl-C or SIGTERM, running jobs get the grace period
    (`shutdown_grace_s`), every open stream its terminal event, and `serve` returns.
    """
    server = make_server(app, host, port, **config)
    server.announce = True
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the SIGINT it handled
        server.run()
