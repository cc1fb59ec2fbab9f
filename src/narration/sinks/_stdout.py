"""`sys.stdout` while events go to stdout as JSONL: text joins the events' queue.

Events are written by the JSONL sink's thread; were `print()` to write straight to the pipe,
a line printed after an event could arrive before it. `OrderedStdout` encodes what is
written and queues it behind the events queued so far, so the pipe carries both in the order
they were made (a parent's `ProcessCapture` relays them in that order). Writes never drop:
when the queue is full they wait, as a write to a full pipe would. `flush()` waits until
everything queued is written. Only writes through `sys.stdout` (and `sys.stdout.buffer`) are
ordered; writes to file descriptor 1 itself (C code, `os.write`, a child process) are not.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["OrderedStdout"]


class OrderedStdout(io.TextIOBase):
    """A text stream whose writes are queued, as bytes, behind the pending events."""

    def __init__(
        self,
        original: TextIO,
        put: Callable[[bytes], None],
        flush: Callable[[], object],
    ) -> None:
        super().__init__()
        self.original = original
        self._put = put
        self._flush = flush
        self._encoding = original.encoding or "utf-8"
        self._errors = original.errors or "strict"
        self._buffer = _OrderedBytes(self, put)

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return self._errors

    @property
    def buffer(self) -> _OrderedBytes:
        """The binary side: bytes written here are ordered with the text and events too."""
        return self._buffer

    @property
    def line_buffering(self) -> bool:
        return False

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        if s:
            self._put(s.encode(self._encoding, self._errors))
        return len(s)

    def flush(self) -> None:
        self._flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.original.isatty()

    def fileno(self) -> int:
        return self.original.fileno()

    def close(self) -> None:
        """Flush; the real stdout stays open (it belongs to the interpreter)."""
        self._flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


class _OrderedBytes(io.BufferedIOBase):
    """`sys.stdout.buffer` of an OrderedStdout."""

    def __init__(self, text: OrderedStdout, put: Callable[[bytes], None]) -> None:
        super().__init__()
        self._text = text
        self._put = put

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        if chunk:
            self._put(chunk)
        return len(chunk)

    def flush(self) -> None:
        self._text.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._text.isatty()

    def fileno(self) -> int:
        return self._text.fileno()

    def close(self) -> None:
        self._text.flush()
