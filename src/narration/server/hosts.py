"""The Host allow-list: a page on another site, pointed at this server by DNS rebinding, is
refused (400 `invalid_host`) before anything else runs.

With no `allowed_hosts` configured, a request that arrives on a loopback address must name a
loopback host (`localhost`, `127.x.x.x`, `[::1]`, any port); one arriving elsewhere is let
through (such a server has auth on). Configured, the Host must match one entry: a name, or
`*.example.com` for its subdomains; `*` alone lets every host through.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from ..ids import new_correlation_id, valid_correlation_id
from ..propagation.http import CORRELATION_HEADER
from .auth import is_loopback
from .errors import error_response

__all__ = ["HostGuard", "host_allowed"]


def _host_name(value: str) -> str:
    """The host of a Host header value, without its port, lowercased."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def host_allowed(host: str | None, allowed: tuple[str, ...], local: str | None) -> bool:
    """True when a request with Host `host`, arriving on local address `local`, may pass."""
    if "*" in allowed:
        return True
    if not allowed:
        if not is_loopback(local):
            return True
        return host is None or is_loopback(_host_name(host))
    if host is None:
        return False
    name = _host_name(host)
    for entry in allowed:
        if entry.startswith("*.") and (name.endswith(entry[1:]) or name == entry[2:]):
            return True
        if name == entry:
            return True
    return False


class HostGuard:
    """ASGI middleware refusing requests whose Host is not allowed (see the module doc)."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = tuple(entry.strip().lower() for entry in allowed if entry.strip())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host: str | None = None
        correlation: str | None = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
            elif name == b"x-correlation-id":
                correlation = value.decode("latin-1")
        server = scope.get("server")
        local = str(server[0]) if server else None
        if host_allowed(host, self.allowed, local):
            await self.app(scope, receive, send)
            return
        echo = {CORRELATION_HEADER: valid_correlation_id(correlation) or new_correlation_id()}
        response = error_response(
            400,
            "invalid_host",
            "this server does not answer for that Host (see allowed_hosts in docs/SECURITY.md)",
            echo,
        )
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await response(scope, receive, send)
