"""A lean SSE client for the benchmarks: an asyncio Protocol on a raw socket, no HTTP library.

It exists so that the client is not what a server benchmark measures: it de-chunks the
HTTP/1.1 body, splits SSE frames with `narration.testing.sse.SSEParser` and either decodes
every `narration` event into a `NarrationEvent` (`decode=True`: checks ids, collects
latencies) or only counts frames (`decode=False`: C-speed `str.count` on the parser's complete
frames, used where one client process reads for 100s of subscribers).

Every stream keeps an exact ledger — events, gaps (with their `missed` counts), the terminal
id — so a benchmark can assert that every event was delivered or accounted for by a gap.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import dataclass, field

from narration.events import decode_event
from narration.testing.sse import SSEFrame, SSEParser, parse_frames

__all__ = ["SSEStream", "open_stream", "open_streams"]

_TERMINALS = ("done", "error", "cancelled")


@dataclass(eq=False)
class SSEStream(asyncio.Protocol):
    """One SSE response read from a raw socket; `await stream.finished` waits for the end."""

    path: str
    decode: bool = True
    latencies: list[int] | None = None  # receive ns - the event's `t_ns` field, if given
    since_ns: int = 0  # latencies of events emitted before this are not kept (warm-up)
    read_rate: float | None = None  # a slow reader: pause so as to read ~this many events/s
    status: int = 0
    events: int = 0
    last_id: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (missed, next_id)
    terminal: str | None = None
    terminal_id: int | None = None
    errors: list[str] = field(default_factory=list)
    first_byte: asyncio.Future[None] | None = None
    finished: asyncio.Future[None] | None = None

    def __post_init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.first_byte = loop.create_future()
        self.finished = loop.create_future()
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._head = b""  # response head, until parsed
        self._chunked: bool | None = None
        self._raw = b""  # undecoded chunked-transfer bytes
        self._left = 0  # bytes left in the current chunk
        self._skip = 0  # CRLF after a chunk still to skip
        self._sse = SSEParser()

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        request = (
            f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Accept: text/event-stream\r\nCache-Control: no-store\r\n\r\n"
        )
        transport.write(request.encode())

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        if self._chunked is None:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            head, data = self._head[:end].lower(), self._head[end + 4 :]
            self._head = b""
            self.status = int(head.split(b" ", 2)[1])
            self._chunked = b"transfer-encoding: chunked" in head
            _resolve(self.first_byte)
            if self.status != 200:
                self.terminal = f"http_{self.status}"
                self._close()
                return
        body = self._dechunk(data) if self._chunked else data
        if body:
            self._frames(body, now)
        if self.read_rate and self._transport is not None and not self.finished.done():  # type: ignore[union-attr]
            self._transport.pause_reading()
            delay = max(body.count(b"event: narration"), 1) / self.read_rate
            self._loop.call_later(delay, self._resume)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.terminal is None:
            self.errors.append(f"connection lost before the terminal: {exc!r}")
        _resolve(self.first_byte)
        _resolve(self.finished)

    # ------------------------------------------------------------ parsing

    def _dechunk(self, data: bytes) -> bytes:
        buf = self._raw + data if self._raw else data
        pos, size, out = 0, len(buf), []
        while pos < size:
            if self._left:
                take = min(self._left, size - pos)
                out.append(buf[pos : pos + take])
                pos += take
                self._left -= take
                if not self._left:
                    self._skip = 2
            elif self._skip:
                take = min(self._skip, size - pos)
                pos += take
                self._skip -= take
            else:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                length = int(buf[pos:eol].split(b";", 1)[0], 16)
                pos = eol + 2
                if length == 0:  # the last chunk: the response is over
                    pos = size
                    break
                self._left = length
        self._raw = buf[pos:]
        return b"".join(out)

    def _frames(self, body: bytes, now: int) -> None:
        complete = self._sse.feed_text(body)
        if not complete:
            return
        if not self.decode and "event: gap" not in complete and 'data: {"job_id"' not in complete:
            count = complete.count("event: narration\n")
            self.events += count
            self.last_id += count
            return
        for frame in parse_frames(complete):
            self._frame(frame, now)

    def _frame(self, frame: SSEFrame, now: int) -> None:
        name = frame.event
        if name == "narration":
            expected = self.last_id + 1
            self.events += 1
            if not self.decode:
                self.last_id = expected
                return
            event = decode_event(frame.data)
            if event.id != expected:
                self.errors.append(f"id {event.id} after {self.last_id}")
            self.last_id = event.id
            if self.latencies is not None and event.fields:
                sent = event.fields.get("t_ns")
                if sent is not None and sent >= self.since_ns:
                    self.latencies.append(now - sent)
        elif name == "gap":
            gap = decode_gap(frame.data)
            if gap[1] <= self.last_id:
                self.errors.append(f"gap to {gap[1]} after {self.last_id}")
            elif gap[1] - 1 - self.last_id != gap[0]:
                self.errors.append(f"gap of {gap[0]} from {self.last_id} to {gap[1]}")
            self.gaps.append(gap)
            self.last_id = gap[1] - 1
        elif name in _TERMINALS:
            self.terminal = name
            if frame.id is not None:
                self.terminal_id = int(frame.id)
            self._close()

    # ------------------------------------------------------------ helpers

    @property
    def missed(self) -> int:
        """Events the server reported as dropped for this reader."""
        return sum(missed for missed, _ in self.gaps)

    def check(self, expected: int) -> list[str]:
        """What is wrong with this stream if the job had `expected` events (empty: all good)."""
        problems = list(self.errors)
        if self.terminal != "done":
            problems.append(f"terminal {self.terminal!r}, not 'done'")
        if self.events + self.missed != expected:
            problems.append(f"{self.events} events + {self.missed} missed != {expected}")
        if self.terminal_id is not None and self.terminal_id != expected + 1:
            problems.append(f"terminal id {self.terminal_id} != {expected + 1}")
        return problems

    def _resume(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        _resolve(self.finished)

    def close(self) -> None:
        """Drop the connection (the stream counts as finished)."""
        self._close()


def decode_gap(data: str) -> tuple[int, int]:
    """(missed, next_id) of a `gap` event's data."""
    payload = json.loads(data)
    return int(payload["missed"]), int(payload["next_id"])


def _resolve(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


async def open_stream(
    port: int,
    job_id: str,
    *,
    wait_first_byte: bool = False,
    rcvbuf: int | None = None,
    **options: object,
) -> SSEStream:
    """Connect to `GET /v1/jobs/{job_id}/stream` on 127.0.0.1:`port`.

    `rcvbuf` shrinks the socket's receive buffer (a slow reader then holds back the server
    sooner, instead of the kernel buffering megabytes for it).
    """
    loop = asyncio.get_running_loop()
    path = f"/v1/jobs/{job_id}/stream"
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    _, stream = await loop.create_connection(
        lambda: SSEStream(path, **options),  # type: ignore[arg-type]
        sock=sock,
    )
    if wait_first_byte:
        await stream.first_byte  # type: ignore[misc]
    return stream


async def open_streams(
    port: int,
    job_ids: list[str],
    *,
    concurrency: int = 200,
    wait_first_byte: bool = False,
    **options: object,
) -> list[SSEStream]:
    """One stream per job id (repeat ids for several subscribers), `concurrency` at a time."""
    streams: list[SSEStream] = []
    for start in range(0, len(job_ids), concurrency):
        batch = job_ids[start : start + concurrency]
        streams += await asyncio.gather(
            *(
                open_stream(port, job_id, wait_first_byte=wait_first_byte, **options)
                for job_id in batch
            )
        )
    return streams


async def wait_all(streams: list[SSEStream], timeout: float) -> None:
    """Wait until every stream finished; TimeoutError (with a count) otherwise."""
    pending = [s.finished for s in streams if s.finished is not None and not s.finished.done()]
    if not pending:
        return
    _, still = await asyncio.wait(pending, timeout=timeout)
    if still:
        raise TimeoutError(f"{len(still)} of {len(streams)} streams did not finish in {timeout} s")
