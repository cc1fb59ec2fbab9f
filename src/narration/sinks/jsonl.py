"""The JSONL sink: one event per line (how a child process reports to its parent)."""

from __future__ import annotations

import io
import sys
from collections.abc import Sequence
from typing import BinaryIO

from ..events import NarrationEvent, encode_event
from ._stdout import OrderedStdout
from ._writer import QueuedSink, dropped_notice

__all__ = ["JsonlSink"]

_TEXT_BACKLOG = 1000  # items waiting before a print writes the queue out itself
_BIG_WRITE = 64 * 1024


class JsonlSink(QueuedSink):
    """Writes each event as one JSON line to a binary stream (stdout by default).

    `JsonlSink.for_stdout()` (what `configure(output="jsonl")` uses) also routes `print()` and
    other writes to `sys.stdout` through the same queue, so text and events reach stdout in the
    order they were made; `close()` puts the original `sys.stdout` back.
    """

    thread_name = "narration-jsonl"

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self.stream: BinaryIO = stream if stream is not None else sys.stdout.buffer
        self._at_line_start = True
        self._stdout: OrderedStdout | None = None
        self._own_buffer: io.BufferedWriter | None = None  # made over a raw stdout (python -u)
        super().__init__()

    @classmethod
    def for_stdout(cls) -> JsonlSink:
        """A sink writing to this process's stdout, which `print()` then shares in order."""
        original = sys.stdout
        if not isinstance(original, io.TextIOWrapper):  # replaced by the application: leave it
            return cls()
        original.flush()
        binary: BinaryIO = original.buffer
        own: io.BufferedWriter | None = None
        if isinstance(binary, io.RawIOBase):  # python -u: give the writer whole-batch writes
            binary = own = io.BufferedWriter(binary)
        sink = cls(binary)
        sink._own_buffer = own
        sink._stdout = OrderedStdout(original, sink.write_text, sink.drain)
        sys.stdout = sink._stdout
        return sink

    def write_text(self, data: bytes) -> None:
        """Queue raw output (already encoded text) behind the events queued so far.

        Never dropped: past 1,000 waiting items, or for a write of 64 KiB or more, the calling
        thread writes the queue out itself (as a print to a full pipe would wait).
        """
        if self._writer.closed:
            self._write_direct(data)
        else:
            self._writer.put_wait(data, 1 if len(data) >= _BIG_WRITE else _TEXT_BACKLOG)

    def drain(self) -> None:
        """Write everything queued so far, on the calling thread (`sys.stdout.flush()`)."""
        self._writer.drain()

    def close(self) -> None:
        """Write what is queued, stop the writer, and give `sys.stdout` back if it was taken."""
        super().close()
        if self._stdout is not None and sys.stdout is self._stdout:
            sys.stdout = self._stdout.original
        if self._own_buffer is not None:  # let go of the raw stdout without closing it
            self._own_buffer.flush()
            self._own_buffer.detach()
            self._own_buffer = None

    def _write_direct(self, data: bytes) -> None:
        """After close (interpreter exit): no writer thread, so write at once."""
        self.stream.write(data)
        self.stream.flush()

    def _write(self, batch: Sequence[NarrationEvent | bytes]) -> None:
        out: list[bytes] = []
        at_line_start = self._at_line_start
        for item in batch:
            if type(item) is bytes:
                if item:
                    out.append(item)
                    at_line_start = item.endswith(b"\n")
            else:
                assert isinstance(item, NarrationEvent)
                if not at_line_start:  # a print without its newline yet: keep the event whole
                    out.append(b"\n")
                out.append(encode_event(item) + b"\n")
                at_line_start = True
        self._at_line_start = at_line_start
        self.stream.write(b"".join(out))
        self.stream.flush()

    def _report_drop(self, count: int) -> None:
        self._write([dropped_notice(count, "were not written (output fell behind)")])
