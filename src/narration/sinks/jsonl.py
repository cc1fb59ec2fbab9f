"""The JSONL sink: one event per line (how a child process reports to its parent)."""

from __future__ import annotations

import sys
import time
from typing import BinaryIO

from ..events import Level, NarrationEvent, encode_event
from ._writer import QueuedSink

__all__ = ["JsonlSink"]


class JsonlSink(QueuedSink):
    """Writes each event as one JSON line to a binary stream (stdout by default)."""

    thread_name = "narration-jsonl"

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self.stream: BinaryIO = stream if stream is not None else sys.stdout.buffer
        super().__init__()

    def _write(self, batch: list[NarrationEvent]) -> None:
        self.stream.write(b"".join(encode_event(event) + b"\n" for event in batch))
        self.stream.flush()

    def _report_drop(self, count: int) -> None:
        notice = NarrationEvent(
            ts=time.time_ns() // 1000 / 1e6,
            level=Level.WARN,
            actor="narration",
            action="dropped",
            human=f"{count} events were not written (output fell behind)",
            fields={"dropped": count},
        )
        self.stream.write(encode_event(notice) + b"\n")
        self.stream.flush()
