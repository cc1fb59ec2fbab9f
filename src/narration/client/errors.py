"""`JobClientError`, the one error `JobClient` raises, and how an HTTP error becomes one."""

from __future__ import annotations

import httpx

from ..errors import NarrationError

__all__ = ["JobClientError", "error_from_response"]


class JobClientError(NarrationError):
    """A request failed.

    `status_code` is the HTTP status, or None when no response came (`connection_failed`,
    `stream_interrupted`, `invalid_event`, ...); `code` and `message` are the server's
    `{"error": {"code", "message"}}` when it sent one.
    """

    def __init__(self, status_code: int | None, code: str, message: str) -> None:
        self.status_code = status_code
        self.code = code
        self.message = message
        prefix = f"HTTP {status_code} " if status_code is not None else ""
        super().__init__(f"{prefix}{code}: {message}")

    def __repr__(self) -> str:
        return (
            f"JobClientError(status_code={self.status_code!r}, code={self.code!r}, "
            f"message={self.message!r})"
        )


def error_from_response(response: httpx.Response) -> JobClientError:
    """The `JobClientError` for a non-2xx response (already read), from its JSON error body.

    An HTML page (a web server or proxy answering instead of narration) says so and names the
    URL; another body that is not JSON gives its first 200 characters as the message.
    """
    code = f"http_{response.status_code}"
    message = response.reason_phrase or "request failed"
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media in ("text/html", "application/xhtml+xml"):
        return JobClientError(
            response.status_code,
            code,
            f"{message}: the server answered with an HTML page, not the narration API "
            f"(is {response.url.copy_with(query=None)} the right URL, path prefix included?)",
        )
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        if text:
            message = text[:200] + ("…" if len(text) > 200 else "")
    else:
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            code = str(error.get("code") or code)
            message = str(error.get("message") or message)
        elif isinstance(body, dict) and isinstance(body.get("detail"), str):
            message = body["detail"]
    return JobClientError(response.status_code, code, message)
