"""The console sink: one readable block per event on stderr, written off the emit path."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO

from ..events import Level, Mode, NarrationEvent
from ._writer import QueuedSink

__all__ = ["ConsoleSink", "format_line", "short_id"]

_COLORS = {
    Level.TRACE: "\x1b[2m",
    Level.DEBUG: "\x1b[2m",
    Level.INFO: "",
    Level.WARN: "\x1b[33m",
    Level.ERROR: "\x1b[31m",
    Level.FATAL: "\x1b[1;31m",
}
_DIM, _BOLD, _RESET = "\x1b[2m", "\x1b[1m", "\x1b[0m"
_ID_CHARS = 24


def format_line(
    event: NarrationEvent, mode: Mode = Mode.HUMAN, color: bool = False, ids: bool = False
) -> str:
    """`HH:MM:SS.mmm actor action  message key=value`; later message lines are indented.

    With `ids`, the job id and correlation id follow the message (`job=job-1a2b3c4d… corr=c-1`),
    so the lines of concurrent jobs can be told apart.
    """
    clock = (
        time.strftime("%H:%M:%S", time.localtime(event.ts)) + f".{int(event.ts * 1000) % 1000:03d}"
    )
    head = f"{clock} {event.actor:<8} {event.action:<14}"
    text = event.text(mode)
    if event.level not in (Level.INFO,):
        text = f"[{event.level.value}] {text}"
    lines = text.split("\n")
    indent = "\n" + " " * (len(head) + 1)
    body = indent.join(lines)
    pairs: list[str] = []
    if ids:
        if event.job_id:
            pairs.append(f"job={short_id(event.job_id)}")
        if event.correlation_id:
            pairs.append(f"corr={short_id(event.correlation_id)}")
    if event.fields:
        pairs.extend(f"{key}={value!r}" for key, value in event.fields.items())
    extra = " " + " ".join(pairs) if pairs else ""
    if not color:
        return f"{head} {body}{extra}"
    tint = _COLORS.get(event.level, "")
    return (
        f"{_DIM}{clock}{_RESET} {_BOLD}{event.actor:<8}{_RESET} {event.action:<14} "
        f"{tint}{body}{_RESET if tint else ''}{_DIM}{extra}{_RESET}"
    )


def short_id(value: str) -> str:
    """An id as shown on a console line: whole up to 24 chars, else its first 12 and `…`."""
    return value if len(value) <= _ID_CHARS else value[:12] + "…"


class ConsoleSink(QueuedSink):
    """Prints events to `stream` (stderr by default); colors only when it is a TTY.

    `ids=True` adds each event's job id and correlation id to its line.
    """

    thread_name = "narration-console"

    def __init__(
        self,
        stream: TextIO | None = None,
        mode: Mode = Mode.HUMAN,
        color: bool | None = None,
        ids: bool = False,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.mode = mode
        self.color = self.stream.isatty() if color is None else color
        self.ids = ids
        super().__init__()

    def _write(self, batch: Sequence[NarrationEvent]) -> None:
        text = "\n".join(format_line(event, self.mode, self.color, self.ids) for event in batch)
        self.stream.write(text + "\n")
        self.stream.flush()

    def _report_drop(self, count: int) -> None:
        self.stream.write(f"narration: console fell behind, {count} events not printed\n")
        self.stream.flush()
