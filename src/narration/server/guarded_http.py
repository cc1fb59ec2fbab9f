"""uvicorn's httptools protocol with a bound on request heads, in size and in time, and JSON
errors from the HTTP parser itself.

- A request line plus headers over `max_header_bytes` answers 431 `headers_too_large`; the
  parser never holds more than that plus one read (256 KiB) of an unfinished head.
- A head not complete `header_timeout_s` after the connection opened (or after the previous
  response on a kept-alive connection) answers 408 `header_timeout`: slow clients
  (slowloris) cannot hold connections open.
- Bytes that are not HTTP/1.1 answer 400 `invalid_http`.

Each is `{"error": {"code", "message"}}` with an `X-Correlation-Id`; then the server stops
sending (FIN), drops whatever the client still sends, and closes after `_LINGER_S` (closing at
once with unread bytes would reset the connection and lose the answer). `make_server` (and so
`narration serve`) uses it; plain `uvicorn app:app` does not.
"""

from __future__ import annotations

import asyncio
import http
from typing import Any

import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..ids import new_correlation_id

__all__ = ["GuardedHttpToolsProtocol", "guarded_protocol"]

_LINGER_S = 1.0


class _Rejected(Exception):
    """Raised from a parser callback to stop parsing a request that is refused."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """The httptools protocol with head limits; `guarded_protocol()` sets the limits."""

    max_header_bytes = 64 * 1024
    header_timeout_s = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading_head = True
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._refusal: tuple[int, str, str] | None = None
        self._lingering: asyncio.TimerHandle | None = None

    # ---------------------------------------------------------------- the head's time

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        if self._lingering is not None:
            self._lingering.cancel()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self._arm_head_timer()  # the next request's head is due within the timeout too

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self._refuse(
                408,
                "header_timeout",
                f"the request's headers did not arrive within {self.header_timeout_s:g} s",
            )

    # ---------------------------------------------------------------- the head's size

    def data_received(self, data: bytes) -> None:
        if self._lingering is not None:
            return  # refused: what the client still sends is dropped
        reading_head = self._reading_head
        super().data_received(data)
        if reading_head and self._reading_head and not self.transport.is_closing():
            self._head_bytes += len(data)  # a head still unfinished after this read
            if self._head_bytes > self.max_header_bytes:
                self._refuse(*self._too_large())

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._cancel_head_timer()
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.max_header_bytes:
            self._refusal = self._too_large()
            raise _Rejected  # the parser stops; `send_400_response` sends the refusal
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head = True

    def _too_large(self) -> tuple[int, str, str]:
        return (
            431,
            "headers_too_large",
            f"the request line and headers are over {self.max_header_bytes} bytes",
        )

    # ---------------------------------------------------------------- refusals

    def send_400_response(self, msg: str) -> None:
        """What uvicorn calls when the parser fails: our refusal, or 400 `invalid_http`."""
        refusal = self._refusal or (400, "invalid_http", "the request is not valid HTTP/1.1")
        self._refuse(*refusal)

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer `status` with a JSON error, then close the connection."""
        self._cancel_head_timer()
        body = msgspec.json.encode({"error": {"code": code, "message": message}})
        phrase = http.HTTPStatus(status).phrase
        head = [
            f"HTTP/1.1 {status} {phrase}",
            "content-type: application/json",
            f"content-length: {len(body)}",
            f"x-correlation-id: {new_correlation_id()}",
            "connection: close",
        ]
        for name, value in self.server_state.default_headers:
            head.append(f"{name.decode('latin-1')}: {value.decode('latin-1')}")
        transport = self.transport
        transport.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self._lingering = self.loop.call_later(_LINGER_S, transport.close)


def guarded_protocol(max_header_bytes: int, header_timeout_s: float) -> type[HttpToolsProtocol]:
    """The guarded protocol class with these limits (uvicorn's `http=` option)."""
    if max_header_bytes < 1024 or header_timeout_s <= 0:
        raise ValueError("max_header_bytes must be >= 1024 and header_timeout_s > 0")
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {"max_header_bytes": max_header_bytes, "header_timeout_s": header_timeout_s},
    )
