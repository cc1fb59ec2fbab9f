"""JSON errors: every failure answers `{"error": {"code": ..., "message": ...}}`."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from ..errors import NarrationError
from ..ids import is_job_id
from ..propagation.http import CORRELATION_STATE_KEY
from ..protocol import CORRELATION_HEADER
from ..store.base import StoreUnavailableError

__all__ = [
    "ApiError",
    "checked_job_id",
    "error_response",
    "install_error_handlers",
    "store_unavailable",
    "unknown_job",
]

_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(NarrationError):
    """An error answered as JSON with `status`, a stable `code` and a readable `message`."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The JSON error response."""
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def checked_job_id(job_id: str) -> str:
    """`job_id` if it has the job id form; a 404 `ApiError` otherwise."""
    if not is_job_id(job_id):
        raise ApiError(404, "unknown_job", f"{job_id[:80]!r} is not a job id (job-<uuid4>)")
    return job_id


def unknown_job(job_id: str) -> ApiError:
    """The 404 for a well-formed id that names no job here."""
    return ApiError(404, "unknown_job", f"no job {job_id} here (unknown, or expired)")


def store_unavailable(exc: Exception, headers: dict[str, str] | None = None) -> JSONResponse:
    """The 503 for a store outage (`StoreUnavailableError`), asking the client to retry."""
    return error_response(
        503, "store_unavailable", str(exc), {**(headers or {}), "Retry-After": "1"}
    )


async def _store_unavailable(_: Request, exc: Exception) -> JSONResponse:
    return store_unavailable(exc)


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODES.get(exc.status_code, "error")
    return error_response(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    errors: list[Any] = getattr(exc, "errors", lambda: [])()
    parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in errors]
    return error_response(422, "invalid_request", "; ".join(parts) or "invalid request")


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    """An unhandled exception: a JSON 500 that still names the request's correlation id.

    Starlette calls this from its outermost middleware, after the narration middleware has
    unwound, so the id comes from the request state the middleware left.
    """
    correlation = request.scope.get("state", {}).get(CORRELATION_STATE_KEY)
    headers = {CORRELATION_HEADER: correlation} if correlation else None
    return error_response(
        500, "internal_error", f"internal server error ({type(exc).__name__})", headers
    )


def install_error_handlers(app: Any) -> None:
    """Make FastAPI answer every error, its own included, in the JSON error format."""
    from fastapi.exceptions import RequestValidationError

    app.add_exception_handler(Exception, _internal_error)
    app.add_exception_handler(StoreUnavailableError, _store_unavailable)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
