"""Splitting a byte stream into lines of bounded length (a child's stdout and stderr).

Pure and synchronous, so it is tested without processes or an event loop: feed chunks as
they arrive, get back whole lines and how many bytes of each were cut past the limit.
"""

from __future__ import annotations

__all__ = ["MAX_LINE_BYTES", "LineSplitter"]

MAX_LINE_BYTES = 1024 * 1024
"""A longer line is cut here (the rest of it is counted, never kept)."""


class LineSplitter:
    """Turns chunks of bytes into `(line, bytes_cut)` pairs; `\\n` ends a line (not kept).

    A line longer than `limit` keeps its first `limit` bytes and reports the rest as cut, so a
    child printing one endless line cannot make its reader hold it all.
    """

    __slots__ = ("_cut", "_partial", "limit")

    def __init__(self, limit: int = MAX_LINE_BYTES) -> None:
        self.limit = limit
        self._partial = bytearray()
        self._cut = 0

    def feed(self, chunk: bytes) -> list[tuple[bytes, int]]:
        """The lines `chunk` completes, each with the number of its bytes cut."""
        limit = self.limit
        pieces = chunk.split(b"\n")
        tail = pieces.pop()
        lines: list[tuple[bytes, int]] = []
        for piece in pieces:
            if self._partial or self._cut:
                room = limit - len(self._partial)
                line = bytes(self._partial) + piece[:room]
                cut = self._cut + max(len(piece) - room, 0)
                self._partial.clear()
                self._cut = 0
            else:
                line, cut = piece[:limit], max(len(piece) - limit, 0)
            lines.append((line, cut))
        room = limit - len(self._partial)
        self._partial += tail[:room]
        self._cut += max(len(tail) - room, 0)
        return lines

    def end(self) -> list[tuple[bytes, int]]:
        """The last line, if the stream ended without a final `\\n`."""
        if not (self._partial or self._cut):
            return []
        line, cut = bytes(self._partial), self._cut
        self._partial.clear()
        self._cut = 0
        return [(line, cut)]
