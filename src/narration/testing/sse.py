"""An SSE parser for tests and benchmarks: raw `text/event-stream` bytes or text -> `SSEFrame`s.

    frames = parse_sse(response.content)
    assert [frame.event for frame in frames] == ["narration", "narration", "done"]
    assert frames[-1].json() == {"job_id": job_id, "state": "completed", "error": None}

    parser = SSEParser()                 # incremental: feed chunks as they arrive
    for chunk in chunks:
        for frame in parser.feed(chunk):
            ...

It follows the WHATWG parsing rules (any of CRLF, LF or CR ends a line; `field: value` with
one optional space; `data` lines joined with LF; a line starting with `:` is a comment; a blank
line ends a frame) but reports what was sent rather than what a browser dispatches: every
frame is kept, with its comments, its own `id` (not the inherited last event id) and `event`
None when it named none. `JobClient` reads streams with httpx-sse; this is for checking them.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

import msgspec

__all__ = ["SSEFrame", "SSEParser", "parse_frames", "parse_sse"]


class SSEFrame(msgspec.Struct, frozen=True):
    """One frame as sent: the text up to a blank line (a msgspec struct: cheap to make)."""

    event: str | None = None
    """The `event:` name; None when the frame has none (a browser dispatches it as `message`)."""
    data: str = ""
    """The `data:` lines, joined with LF ("" when there is none)."""
    id: str | None = None
    """The frame's own `id:` (None when it has none)."""
    retry: int | None = None
    """The `retry:` reconnection delay in ms, if the frame sets one."""
    comments: tuple[str, ...] = ()
    """The text of its comment lines (`: keepalive` -> "keepalive")."""

    def json(self) -> Any:
        """`data` decoded as JSON."""
        return json.loads(self.data)


class SSEParser:
    """Turns a stream's chunks, as they arrive, into complete frames.

    `feed(chunk)` returns the frames the chunk completed; a frame cut between chunks (even in
    the middle of a UTF-8 character or of a CRLF) waits for the rest. `pending` is the text of
    the frame not yet complete: at the end of a stream, anything there was never finished.
    """

    __slots__ = ("_after_cr", "_decoder", "_started", "pending")

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._after_cr = False
        self._started = False
        self.pending = ""

    def feed(self, chunk: bytes | str) -> list[SSEFrame]:
        """The frames `chunk` completes, in order."""
        complete = self.feed_text(chunk)
        return parse_frames(complete) if complete else []

    def feed_text(self, chunk: bytes | str) -> str:
        """The text of the frames `chunk` completes (LF line ends, frames apart by blank lines),
        unparsed; `parse_frames` parses it. For readers that only count, e.g. `text.count(...)`.
        """
        text = self._decoder.decode(chunk) if isinstance(chunk, bytes) else chunk
        if not text:
            return ""
        if not self._started:
            self._started = True
            if text[0] == "\ufeff":  # a byte order mark at the very start is not content
                text = text[1:]
        if self._after_cr and text[:1] == "\n":  # the LF of a CRLF cut between chunks
            text = text[1:]
        if "\r" in text:
            self._after_cr = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        else:
            self._after_cr = False
        if self.pending:
            text = self.pending + text
        end = text.rfind("\n\n")
        if end < 0:
            self.pending = text
            return ""
        self.pending = text[end + 2 :]
        return text[:end]


def parse_frames(text: str) -> list[SSEFrame]:
    """The frames of `text`: complete frames with LF line ends (what `feed_text` returns)."""
    frames = []
    for block in text.split("\n\n"):
        frame = _frame(block)
        if frame is not None:
            frames.append(frame)
    return frames


def parse_sse(raw: bytes | str) -> list[SSEFrame]:
    """The complete frames of a whole stream body (a last frame not ended by a blank line, which
    a browser would never dispatch, is left out)."""
    return SSEParser().feed(raw)


def _frame(block: str) -> SSEFrame | None:
    """The frame of one block of lines; None for a block with nothing in it."""
    lines = block.split("\n")
    if len(lines) == 3:  # the usual `id` / `event` / `data` frame, read without the loop below
        id_line, event_line, data_line = lines
        if (
            id_line.startswith("id: ")
            and event_line.startswith("event: ")
            and data_line.startswith("data: ")
            and "\0" not in id_line
        ):
            return SSEFrame(event_line[7:], data_line[6:], id_line[4:])
    event = frame_id = data = None
    retry = None
    comments: list[str] | None = None
    for line in lines:
        name, colon, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        if name == "data":
            data = value if data is None else f"{data}\n{value}"
        elif name == "event":
            event = value
        elif name == "id":
            if "\0" not in value:
                frame_id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():
                retry = int(value)
        elif colon and not name:
            comments = [value] if comments is None else [*comments, value]
        # empty lines are only around blocks; any other field is ignored, as a browser does
    if event is None and data is None and frame_id is None and retry is None and not comments:
        return None
    return SSEFrame(event, data or "", frame_id, retry, () if comments is None else tuple(comments))
