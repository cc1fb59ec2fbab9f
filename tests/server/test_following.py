"""Caught-up streams written by the log's callback: each event once and in order, keepalives
after silence, a reader that stops reading (flow control) still gets everything, exactly."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from narration import n, narration_context
from narration.testing import NarrationTestHarness
from narration.testing.sse import SSEFrame, SSEParser

pytestmark = pytest.mark.e2e


class RawStream:
    """One stream read over a plain socket (so the test controls when it reads)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.parser = SSEParser()
        self.frames: list[SSEFrame] = []
        self.ended = False

    @classmethod
    async def open(
        cls, harness: NarrationTestHarness, job_id: str, rcvbuf: int | None = None
    ) -> RawStream:
        port = int(harness.base_url.rsplit(":", 1)[1])
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
        writer.write(f"GET /v1/jobs/{job_id}/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        return cls(reader, writer)

    async def read_until(self, done: Any, timeout: float = 10.0) -> None:
        """Read (de-chunking) until `done(self.frames)` holds."""
        async with asyncio.timeout(timeout):
            while not done(self.frames):
                size = int((await self.reader.readuntil(b"\r\n"))[:-2], 16)
                if size == 0:
                    self.ended = True
                    return
                chunk = await self.reader.readexactly(size + 2)
                self.frames.extend(self.parser.feed(chunk[:-2]))

    def ids(self) -> list[int]:
        return [int(frame.id) for frame in self.frames if frame.event == "narration" and frame.id]

    def close(self) -> None:
        self.writer.close()


def _emit(
    harness: NarrationTestHarness, job_id: str, start: int, count: int, text: str = ""
) -> None:
    with narration_context(harness.job_context(job_id)):
        for i in range(start, start + count):
            n("step", f"step {i}{text}", i=i)


async def test_a_caught_up_stream_gets_each_event_as_it_comes_then_one_terminal() -> None:
    async with NarrationTestHarness() as harness:
        job_id = await harness.submit_job("held")
        stream = await RawStream.open(harness, job_id)
        await harness.state.streams.wait_for_open(1)
        for i in range(1, 31):  # one at a time: the reader is caught up before each
            _emit(harness, job_id, i - 1, 1)
            await stream.read_until(lambda frames, i=i: len(stream.ids()) == i)
        _emit(harness, job_id, 30, 5)  # a burst between two loop turns
        await harness.complete_job(job_id)
        await stream.read_until(lambda frames: False)
        stream.close()
    assert stream.ended
    assert stream.ids() == list(range(1, 36))
    named = [frame.event for frame in stream.frames if frame.event]
    assert named == ["narration"] * 35 + ["done"]
    assert stream.frames[-1].id == "36"


async def test_a_quiet_followed_stream_sends_keepalives_and_still_gets_events() -> None:
    async with NarrationTestHarness(keepalive_s=0.2) as harness:
        job_id = await harness.submit_job("held")
        stream = await RawStream.open(harness, job_id)

        def keepalives(frames: list[SSEFrame]) -> int:
            return sum(1 for frame in frames if frame.comments == ("keepalive",))

        await stream.read_until(lambda frames: keepalives(frames) >= 2)
        _emit(harness, job_id, 0, 1)
        await stream.read_until(lambda frames: stream.ids() == [1])
        seen = keepalives(stream.frames)
        await stream.read_until(lambda frames: keepalives(frames) >= seen + 2)
        await harness.complete_job(job_id)
        await stream.read_until(lambda frames: False)
        stream.close()
    assert stream.ended and stream.ids() == [1]
    assert [frame.event for frame in stream.frames if frame.event] == ["narration", "done"]


async def test_a_reader_that_stops_reading_gets_every_event_once_when_it_reads_again() -> None:
    events, padding = 4_000, "." * 2_000  # ~8 MB: far more than the socket buffers hold
    async with NarrationTestHarness() as harness:
        job_id = await harness.submit_job("held")
        stream = await RawStream.open(harness, job_id, rcvbuf=16 * 1024)
        await harness.state.streams.wait_for_open(1)
        for start in range(0, events, 100):  # the server's writes wait on the transport
            _emit(harness, job_id, start, 100, padding)
            await asyncio.sleep(0)  # a loop turn: the log hands the batch over
        await harness.complete_job(job_id)
        await stream.read_until(lambda frames: False, timeout=60)
        stream.close()
    assert stream.ended
    assert stream.ids() == list(range(1, events + 1))
    assert [frame.event for frame in stream.frames if frame.event][-1] == "done"


async def test_streams_of_one_job_each_get_everything_when_one_leaves() -> None:
    async with NarrationTestHarness() as harness:
        job_id = await harness.submit_job("held")
        streams = [await RawStream.open(harness, job_id) for _ in range(3)]
        await harness.state.streams.wait_for_open(3)
        _emit(harness, job_id, 0, 10)
        for stream in streams:
            await stream.read_until(lambda frames, s=stream: len(s.ids()) == 10)
        streams[1].close()
        await harness.state.streams.wait_for_open(2)
        _emit(harness, job_id, 10, 10)
        await harness.complete_job(job_id)
        for stream in (streams[0], streams[2]):
            await stream.read_until(lambda frames: False)
            stream.close()
    for stream in (streams[0], streams[2]):
        assert stream.ended and stream.ids() == list(range(1, 21))
    assert streams[1].ids() == list(range(1, 11))
