"""Redis for the test suite: one private redis-server per session, store URLs, a cuttable proxy.

Fixtures (imported by tests/conftest.py):
- `redis_server`: a `RedisServer` on a free 127.0.0.1 port, started once per session. The binary
  is found on PATH, else installed with apt-get when running as root; if it is still missing
  the Redis tests are skipped, except with `CI=true`, where they fail.
- `redis_url`: that server's URL with a key prefix of its own, so tests never see each other.
- `redis_cluster`: a `RedisCluster` (3 primaries + 3 replicas on free 127.0.0.1 ports),
  started once per session, found and skipped (or failed under CI) like `redis_server`.
- `store_url`: parametrized: "memory://", a `redis_url` and the cluster's
  `redis+cluster://` URL (with a key prefix of its own), for tests run against every store.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from narration.testing.redis_cluster import RedisCluster
from narration.testing.redis_server import RedisServer

__all__ = [
    "TcpProxy",
    "binary_or_skip",
    "find_redis_server",
    "redis_cluster",
    "redis_server",
    "redis_url",
    "store_url",
]


def find_redis_server() -> str | None:
    """The redis-server binary: on PATH, or installed with apt-get when running as root."""
    found = shutil.which("redis-server")
    if found or os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "redis-server"]
    for command in (install, ["apt-get", "update", "-q"], install):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(command, env=env, capture_output=True, timeout=300, check=False)
        found = shutil.which("redis-server")
        if found:
            return found
    return None


def unique_prefix() -> str:
    """A key prefix no other test uses."""
    return f"t-{uuid.uuid4().hex[:12]}:"


def binary_or_skip() -> str:
    """redis-server (with redis-cli beside it), else skip the test (fail it under CI)."""
    binary = find_redis_server()
    if binary is None or shutil.which("redis-cli") is None:
        message = "redis-server is not installed and could not be installed"
        if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
            pytest.fail(f"{message}; CI=true needs the Redis tests to run", pytrace=False)
        pytest.skip(message)
    return binary


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """A private Redis Cluster for this test session: 6 nodes, torn down by PID at the end."""
    cluster = RedisCluster.start(binary_or_skip())
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server for this test session (never the machine's shared one)."""
    server = RedisServer.start(binary_or_skip())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The private server's URL with a fresh key prefix."""
    return redis_server.url(prefix=unique_prefix())


_REDIS = pytest.mark.redis


@pytest.fixture(
    params=["memory", pytest.param("redis", marks=_REDIS), pytest.param("cluster", marks=_REDIS)]
)
def store_url(request: pytest.FixtureRequest) -> str:
    """Each store in turn: "memory://", the private Redis, then the private Redis Cluster
    (each Redis with a fresh key prefix)."""
    if request.param == "memory":
        return "memory://"
    if request.param == "cluster":
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        return cluster.url(prefix=unique_prefix())
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url(prefix=unique_prefix())


class TcpProxy:
    """A TCP proxy to Redis in the test's event loop, to cut (and restore) the network.

    `cut()` closes every open connection and makes new ones close at once; `restore()`
    lets them through again. `stall()` keeps connections open but holds whatever is sent either
    way (a network that stopped answering) until `resume()`.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.down = False
        self.held: list[bytes] = []  # what was sent while stalled, in arrival order
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._more_held = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def start(cls, upstream_port: int) -> TcpProxy:
        proxy = cls(upstream_port)
        proxy._server = await asyncio.start_server(proxy._accept, "127.0.0.1", 0)
        proxy.port = proxy._server.sockets[0].getsockname()[1]
        return proxy

    def url(self, prefix: str | None = None, **options: object) -> str:
        query = dict(options, prefix=prefix or unique_prefix())
        return f"redis://127.0.0.1:{self.port}/0?" + "&".join(f"{k}={v}" for k, v in query.items())

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        if self.down:  # cut while connecting upstream: this connection must not get through
            writer.close()
            up_writer.close()
            return
        self._writers.update((writer, up_writer))
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                if not self._flowing.is_set():
                    self.held.append(data)
                    self._more_held.set()
                    await self._flowing.wait()
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            sink.close()
            self._writers.discard(sink)

    async def cut(self) -> None:
        """Drop every connection now; refuse new ones until `restore()`."""
        self.down = True
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    def restore(self) -> None:
        self.down = False

    def stall(self) -> None:
        """Hold everything sent on any connection (none is closed) until `resume()`."""
        self.held.clear()
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    async def wait_held(self, marker: bytes, timeout: float = 5) -> None:
        """Wait until something holding `marker` was sent and is held by `stall()`."""
        async with asyncio.timeout(timeout):
            while not any(marker in data for data in self.held):
                self._more_held.clear()
                await self._more_held.wait()

    async def close(self) -> None:
        await self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
