"""Cross-origin access (CORS) for pages served elsewhere: off unless origins are configured.

`install_cors(app, ["https://app.example"])` lets a page on that origin submit jobs (POST,
with its preflight), cancel them (DELETE), read jobs and follow their streams with
`EventSource`. It must be added after the stream layer (`StreamRoute`) so it wraps it too:
Starlette runs the middleware added last outermost.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware

from ..protocol import (
    CORRELATION_HEADER,
    LAST_EVENT_ID_HEADER,
    PARENT_JOB_HEADER,
    TRACEPARENT_HEADER,
    TRACESTATE_HEADER,
)

__all__ = ["ALLOWED_HEADERS", "EXPOSED_HEADERS", "checked_origins", "install_cors"]

ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    LAST_EVENT_ID_HEADER,
    CORRELATION_HEADER,
    PARENT_JOB_HEADER,
    TRACEPARENT_HEADER,
    TRACESTATE_HEADER,
)
"""Request headers a cross-origin page may send (beyond the CORS-safelisted ones)."""

EXPOSED_HEADERS = ("Location", "Retry-After", CORRELATION_HEADER)
"""Response headers a cross-origin page may read."""


def checked_origins(origins: Iterable[str]) -> list[str]:
    """`origins` as CORS origins (`scheme://host[:port]`, or `*`); ValueError naming a bad one."""
    checked: list[str] = []
    for origin in origins:
        origin = origin.strip().rstrip("/")
        if not origin:
            continue
        if origin != "*":
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
                raise ValueError(
                    f"cors origin {origin!r} is not an origin: expected scheme://host[:port] "
                    "(no path), or *"
                )
        checked.append(origin)
    return checked


def install_cors(app: Starlette, origins: Iterable[str]) -> None:
    """Answer CORS (preflights included) for `origins`; does nothing when there are none."""
    allowed = checked_origins(origins)
    if not allowed:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=allowed,
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=list(ALLOWED_HEADERS),
        expose_headers=list(EXPOSED_HEADERS),
        max_age=600,
    )
