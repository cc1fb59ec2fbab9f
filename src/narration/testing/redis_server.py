"""A private, throw-away `redis-server` on a free 127.0.0.1 port (tests and benchmarks).

    server = RedisServer.start()          # finds redis-server on PATH
    store_url = server.url(prefix="t1:")  # redis://127.0.0.1:<port>/0?prefix=t1:
    ...
    server.stop()

Nothing is persisted (`--save "" --appendonly no`) unless `start(appendonly=True)` (every
write fsynced to the append-only file before Redis answers, so `kill()` then `restart()` loses
nothing); the machine's own Redis is never touched.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import quote

from .._process import free_port, stop_process

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["RedisServer", "blocked_xreads", "client_list", "free_port"]


async def client_list(client: aioredis.Redis) -> list[dict[str, str]]:
    """The clients connected to `client`'s server (`CLIENT LIST`), one dict of fields each."""
    listing = await client.execute_command("CLIENT", "LIST")  # type: ignore[no-untyped-call]
    text = listing.decode() if isinstance(listing, bytes) else str(listing)
    return [dict(part.split("=", 1) for part in line.split()) for line in text.splitlines()]


def blocked_xreads(clients: list[dict[str, str]]) -> int:
    """How many of `clients` wait in a blocking XREAD."""
    return sum(1 for c in clients if c.get("cmd") == "xread" and "b" in c.get("flags", ""))


def _spawn(binary: str, port: int, workdir: str, appendonly: bool) -> subprocess.Popen[bytes]:
    persistence = ("yes", "--appendfsync", "always") if appendonly else ("no",)
    listen = ("--port", str(port), "--bind", "127.0.0.1", "--save", "")
    rest = ("--dir", workdir, "--daemonize", "no", "--loglevel", "warning")
    return subprocess.Popen(
        [binary, *listen, "--appendonly", *persistence, *rest],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


class RedisServer:
    """One `redis-server` child process listening on 127.0.0.1:`port`."""

    def __init__(
        self,
        binary: str,
        port: int,
        process: subprocess.Popen[bytes],
        workdir: str,
        appendonly: bool = False,
    ):
        self.binary, self.port, self.process, self.workdir = binary, port, process, workdir
        self.appendonly = appendonly

    @classmethod
    def start(
        cls,
        binary: str | None = None,
        port: int | None = None,
        timeout: float = 10.0,
        *,
        appendonly: bool = False,
    ) -> RedisServer:
        """Start one and wait (up to `timeout` s) until it answers PING."""
        found = binary or shutil.which("redis-server")
        if found is None:
            raise FileNotFoundError("redis-server is not installed (not on PATH)")
        workdir = tempfile.mkdtemp(prefix="narration-redis-")
        for _ in range(3):  # the free port can be taken between probing and binding
            chosen = port or free_port()
            process = _spawn(found, chosen, workdir, appendonly)
            server = cls(found, chosen, process, workdir, appendonly)
            if server.wait_ready(timeout):
                return server
            server.stop()
            if port is not None:
                break
        raise RuntimeError(f"redis-server did not start on 127.0.0.1 (last port {chosen})")

    def kill(self) -> None:
        """SIGKILL the server (no shutdown, no last save): Redis is gone until `restart()`."""
        self.process.kill()
        self.process.wait(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()

    def restart(self, timeout: float = 10.0, *, empty: bool = False) -> None:
        """Start it again on the same port; with its data (append-only file) unless `empty`."""
        if empty:
            shutil.rmtree(self.workdir, ignore_errors=True)
            Path(self.workdir).mkdir()
        self.process = _spawn(self.binary, self.port, self.workdir, self.appendonly)
        if not self.wait_ready(timeout):
            raise RuntimeError(f"redis-server did not restart on 127.0.0.1:{self.port}")

    def url(self, db: int = 0, prefix: str | None = None, **options: object) -> str:
        """`redis://127.0.0.1:<port>/<db>`, with narration store options as query keys."""
        query = dict(options, prefix=prefix) if prefix is not None else dict(options)
        text = "&".join(f"{key}={quote(str(value), safe=':')}" for key, value in query.items())
        return f"redis://127.0.0.1:{self.port}/{db}" + (f"?{text}" if text else "")

    def ping(self) -> bool:
        """True when the server answers PING now."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def wait_ready(self, timeout: float) -> bool:
        """Poll PING until it answers (True) or the process exits / `timeout` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if self.ping():
                return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and remove its directory."""
        stop_process(self.process, grace=5)
        if self.process.stderr is not None:
            self.process.stderr.close()
        with contextlib.suppress(OSError):
            shutil.rmtree(Path(self.workdir))

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
