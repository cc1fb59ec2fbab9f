"""A TCP proxy on 127.0.0.1 that can drop every open connection at once, mid-stream.

It records the head of each request it forwards, so a test can see what the browser sent when
it reconnected (its `Last-Event-ID`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re


class DroppingProxy:
    """Forwards 127.0.0.1:`port` to `upstream_port`; `drop()` resets every connection."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.requests: list[str] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> DroppingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stream_requests(self) -> list[str]:
        """The heads of the stream requests forwarded so far."""
        return [head for head in self.requests if re.match(r"GET \S*/v1/jobs/[^/ ]+/stream", head)]

    def drop(self) -> None:
        """Reset every open connection, both sides, without a goodbye."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            upstream_r, upstream_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_w.transport.abort()
            return
        self._writers.update((client_w, upstream_w))
        pumps = [
            asyncio.create_task(self._pump(client_r, upstream_w, record=True)),
            asyncio.create_task(self._pump(upstream_r, client_w, record=False)),
        ]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
        for writer in (client_w, upstream_w):
            writer.transport.abort()
            self._writers.discard(writer)
        self._tasks.difference_update(pumps)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bool
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while chunk := await reader.read(65536):
                if record and chunk[:4] in (b"GET ", b"POST", b"DELE", b"HEAD", b"OPTI"):
                    self.requests.append(chunk.split(b"\r\n\r\n", 1)[0].decode("latin-1"))
                writer.write(chunk)
                await writer.drain()

    async def stop(self) -> None:
        self.drop()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
