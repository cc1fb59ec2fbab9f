"""SSE frames as an event log hands them out, and the NDJSON lines a download (and the archive)
holds: one line per frame.

- an event: its wire JSON exactly as the stream's `data:` carries it (`{"id":42,"ts":…}`);
- a gap: `{"event":"gap","missed":17,"next_id":118}`;
- the terminal: `{"id":1001,"event":"done","job_id":…,"state":…,"error":…}`.

A line with an `event` key is a gap or the terminal; every other line is one narration event.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .protocol import EVENT_GAP, EVENT_NARRATION, TERMINAL_EVENTS
from .wire import event_frame_from_json

__all__ = [
    "GAP",
    "NARRATION",
    "TERMINAL_NAMES",
    "Frame",
    "frame_to_line",
    "line_to_frame",
    "parse_frame",
    "split_frames",
]

TERMINAL_NAMES = frozenset(name.encode() for name in TERMINAL_EVENTS.values())
NARRATION = EVENT_NARRATION.encode()
GAP = EVENT_GAP.encode()
_GAP_LINE = b'{"event":"%s",' % GAP


class Frame:
    """One parsed SSE frame: its `id` (None for a gap), `event` name and `data` bytes."""

    __slots__ = ("data", "event", "id", "raw")

    def __init__(self, raw: bytes, event_id: int | None, event: bytes, data: bytes) -> None:
        self.raw, self.id, self.event, self.data = raw, event_id, event, data

    @property
    def is_terminal(self) -> bool:
        return self.event in TERMINAL_NAMES


def split_frames(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """The whole frames (each with its closing blank line) in pieces of a frame stream.

    An event log hands out whole frames, but possibly several per piece or one cut across two
    pieces; event JSON never holds a raw newline, so a blank line always ends a frame.
    """
    for block in b"".join(pieces).split(b"\n\n"):
        if block:
            yield block + b"\n\n"


def parse_frame(raw: bytes) -> Frame | None:
    """The frame's fields; None for a comment (keepalive) or a frame without data."""
    event_id: int | None = None
    event = b"message"
    data = b""
    for line in raw.split(b"\n"):
        key, _, value = line.partition(b": ")
        if key == b"id":
            event_id = int(value)
        elif key == b"event":
            event = value
        elif key == b"data":
            data = value
    return Frame(raw, event_id, event, data) if data else None


def frame_to_line(frame: Frame) -> bytes:
    """The NDJSON line (with its newline) of a parsed frame."""
    if frame.event == NARRATION:
        return frame.data + b"\n"
    if frame.event == GAP:
        return _GAP_LINE + frame.data[1:] + b"\n"
    return b'{"id":%d,"event":"%s",%s\n' % (frame.id or 0, frame.event, frame.data[1:])


def line_to_frame(line: bytes) -> tuple[str, int, bytes]:
    """(kind, id, SSE frame) of an NDJSON line: kind `event`, `terminal`, or `gap` (id: its
    next id; no frame). ValueError for a line this module did not write."""
    line = line.rstrip(b"\n")
    if line.startswith(_GAP_LINE):
        data = b"{" + line[len(_GAP_LINE) :]
        next_id = int(data.rsplit(b'"next_id":', 1)[1].rstrip(b"}"))
        return "gap", next_id, b""  # a reader's gaps are made afresh from the ids it skips
    if not line.startswith(b'{"id":'):
        raise ValueError(f"not a narration NDJSON line: {line[:60]!r}")
    comma = line.index(b",", 6)
    event_id = int(line[6:comma])
    rest = line[comma + 1 :]
    if rest.startswith(b'"event":"'):
        end = rest.index(b'"', 9)
        name = rest[9:end]
        data = b"{" + rest[end + 2 :]
        return "terminal", event_id, b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, name, data)
    return "event", event_id, event_frame_from_json(event_id, line)
