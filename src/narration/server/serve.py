"""Running the app under uvicorn with a graceful stop (streams are flushed and closed first),
bounded request heads (`protocol`), and the bind checked against the auth settings: without
authentication a server binds loopback only (unless told `--no-auth`), and says so loudly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from .app import server_states
from .auth import is_loopback
from .settings import ServerSettings
from .tokens import install_token_redaction

logger = logging.getLogger("narration.server")

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
        app: Any = config.app
        self.auth_warning = check_bind(app, config.host)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.ready.set()
            if self.announce:
                print(f"narration: serving on {self.url} (Ctrl-C stops)", file=sys.stderr)
                print(f"  viewer: {self.url}/ui/", file=sys.stderr, flush=True)
                if self.auth_warning:
                    print(f"narration: WARNING: {self.auth_warning}", file=sys.stderr, flush=True)
            elif self.auth_warning:
                logger.warning("narration: %s", self.auth_warning)

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


def check_bind(app: ASGIApp, host: str) -> str | None:
    """The loud line to show when `app` serves without authentication on `host`, or None;
    ValueError when it would serve without authentication beyond loopback."""
    unauthenticated = [state.auth for state in server_states(app) if not state.auth.enabled]
    if not unauthenticated:
        return None
    if all(policy.off for policy in unauthenticated):
        return (
            f"authentication is OFF (--no-auth): anyone who can reach {host} can read, "
            "submit and cancel every job"
        )
    if not is_loopback(host):
        raise ValueError(
            f"refusing to serve on {host} without authentication: configure API keys "
            "(NARRATION_API_KEYS or NARRATION_API_KEYS_FILE; `narration keys new` makes one), "
            "or bind 127.0.0.1, or pass --no-auth (NARRATION_NO_AUTH=1) to serve openly"
        )
    return (
        f"authentication is OFF: no API keys are configured, so this server answers only on "
        f"loopback ({host}); every local program and user can read, submit and cancel every job"
    )


def _settings_of(app: ASGIApp) -> ServerSettings:
    states = server_states(app)
    return states[0].settings if states else ServerSettings.from_env()


def _http_protocol(settings: ServerSettings) -> dict[str, Any]:
    """uvicorn options bounding request heads: the guarded httptools protocol, else h11's."""
    try:
        from .guarded_http import guarded_protocol
    except ImportError:  # no httptools (e.g. PyPy): h11 bounds the head's size, not its time
        return {"http": "h11", "h11_max_incomplete_event_size": settings.max_header_bytes}
    return {"http": guarded_protocol(settings.max_header_bytes, settings.header_timeout_s)}


def make_server(
    app: ASGIApp, host: str = "127.0.0.1", port: int = 7833, **config: Any
) -> NarrationServer:
    """A server for `app`, not yet started (`await server.serve()` runs it).

    ValueError if the app has no authentication and `host` is not loopback (docs/SECURITY.md).
    """
    install_token_redaction()
    options: dict[str, Any] = {
        "log_level": "warning",
        "timeout_graceful_shutdown": 10,
        **_http_protocol(_settings_of(app)),
        **config,
    }
    return NarrationServer(uvicorn.Config(app, host=host, port=port, **options))


def serve(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 7833,
    *,
    sock: socket.socket | None = None,
    **config: Any,
) -> None:
    """Serve `app` until SIGINT/SIGTERM (on uvloop when it is installed: uvicorn's choice).

    Prints the URL it listens on. On Ctrl-C or SIGTERM, running jobs get the grace period
    (`shutdown_grace_s`), every open stream its terminal event, and `serve` returns. With
    `sock` (a listening socket, e.g. one `narration serve --workers` shares among its
    processes) it serves on that socket instead of binding `host`:`port`.
    """
    server = make_server(app, host, port, **config)
    server.announce = sock is None
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the SIGINT it handled
        server.run(sockets=[sock] if sock is not None else None)
