"""`GET /v1/jobs/{job_id}/stream`, answered ahead of FastAPI's per-request machinery.

A stream lives as long as its job, so every wrapper a request passes through (routing,
exception-handler `send` wrappers, exit stacks) is paid per event and held per idle stream.
This small ASGI layer answers stream requests itself, with the same errors as the rest of the
API; every other request goes on to the app.

Who may read: a `read` principal the job is visible to (`auth.require` rules), or the bearer of
a stream token made for this job (`?token=`, see `tokens`). A cursor past the job's last event
answers 400, so every stream that opens ends with its terminal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..filters import EventFilter
from ..ids import new_correlation_id, valid_correlation_id
from ..propagation.http import CORRELATION_STATE_KEY
from ..protocol import CORRELATION_HEADER, LAST_EVENT_ID_HEADER, raw_header
from ..store.base import StoreUnavailableError
from .auth import visible
from .errors import ApiError, checked_job_id, error_response, store_unavailable, unknown_job
from .lookup import find_log, find_record
from .sse import EventStreamResponse, parse_cursor
from .tokens import TOKEN_PARAM

if TYPE_CHECKING:
    from .app import ServerState

__all__ = ["STREAM_PATH", "StreamRoute"]

_PREFIX, _SUFFIX = "/v1/jobs/", "/stream"
STREAM_PATH = _PREFIX + "{job_id}" + _SUFFIX
_LAST_EVENT_ID = raw_header(LAST_EVENT_ID_HEADER)
_CORRELATION = raw_header(CORRELATION_HEADER)


class StreamRoute:
    """ASGI middleware serving job streams; `app.add_middleware(StreamRoute, state=state)`."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = _route_path(scope)
        job_id = path[len(_PREFIX) : -len(_SUFFIX)]
        if (
            scope["type"] != "http"
            or not path.startswith(_PREFIX)
            or not path.endswith(_SUFFIX)
            or not job_id
            or "/" in job_id
        ):
            await self.app(scope, receive, send)
            return
        last_event_id: str | None = None
        correlation: str | None = None
        for name, value in scope["headers"]:
            if name == _LAST_EVENT_ID:
                last_event_id = value.decode("latin-1")
            elif name == _CORRELATION:
                correlation = value.decode("latin-1")
        known = scope.get("state", {}).get(CORRELATION_STATE_KEY)  # set by an outer layer
        correlation = known or valid_correlation_id(correlation) or new_correlation_id()
        echo = {CORRELATION_HEADER: correlation}
        try:
            response = await self._open(scope, job_id, last_event_id, echo)
        except ApiError as exc:
            response = error_response(
                exc.status, exc.code, exc.message, {**echo, **(exc.headers or {})}
            )
        except StoreUnavailableError as exc:
            response = store_unavailable(exc, echo)
        await response(scope, receive, send)

    async def _open(
        self, scope: Scope, job_id: str, last_event_id: str | None, echo: dict[str, str]
    ) -> Response | EventStreamResponse:
        """The stream's response: 200 SSE, 204 past the terminal; ApiError otherwise."""
        if scope["method"] != "GET":
            raise ApiError(
                405, "method_not_allowed", "a job stream is read with GET", {"Allow": "GET"}
            )
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        await self._authorize(scope, job_id, query.get(TOKEN_PARAM, [None])[-1])
        log = await find_log(self.state, checked_job_id(job_id))  # live, else archived
        if log is None:
            raise unknown_job(job_id)
        after = query.get("after", [None])[-1]
        try:
            cursor = parse_cursor(last_event_id, after)
        except ValueError as exc:
            raise ApiError(400, "invalid_cursor", str(exc)) from None
        try:
            only = EventFilter.from_query(lambda name: query.get(name, []))
        except ValueError as exc:
            raise ApiError(400, "invalid_filter", str(exc)) from None
        terminal = log.terminal_id()
        if terminal is not None and cursor >= terminal:
            return Response(status_code=204, headers=echo)
        if cursor > log.count():
            raise ApiError(
                400,
                "invalid_cursor",
                f"no event {cursor} yet: the job has {log.count()} event(s) so far",
            )
        extra = [(key.lower().encode(), value.encode()) for key, value in echo.items()]
        settings = self.state.settings
        return EventStreamResponse(
            log, cursor, self.state.streams, settings.keepalive_s, extra, only
        )

    async def _authorize(self, scope: Scope, job_id: str, token: str | None) -> None:
        """Nothing when the caller may read this job's stream; ApiError 401/403/404 if not."""
        auth = self.state.auth
        if token is not None and auth.enabled:
            self.state.tokens.check(token, job_id)
            return
        principal = await auth.principal(Request(scope))
        if not principal.allows("read"):
            raise ApiError(403, "forbidden", "this credential lacks the 'read' scope")
        if principal.is_admin:
            return
        record = await find_record(self.state, checked_job_id(job_id))
        if record is None or not visible(principal, record):
            raise unknown_job(job_id)


def _route_path(scope: Scope) -> str:
    """The request path below the app's `root_path` (as Starlette routes it when mounted)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] == "/":
        return path[len(root) :]
    return path
