"""Stream tokens: short-lived, signed, read-only passes to one job's stream, for `EventSource`.

A browser's `EventSource` cannot send an `Authorization` header, so when auth is on, `POST
/v1/jobs` and `GET /v1/jobs/{id}` answer an `sse_url` carrying `?token=...`: the job id signed
with a timestamp (itsdangerous), accepted by that job's stream route only, until it is
`ttl_s` old (reconnects with `Last-Event-ID` included). Every replica needs the same `secret`
(`NARRATION_STREAM_TOKEN_SECRET`); without one each process makes its own.

The token is never logged: `RedactTokens` takes it out of uvicorn's access log lines.
"""

from __future__ import annotations

import hmac
import logging
import math
import re
import secrets
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from .errors import ApiError

__all__ = ["TOKEN_PARAM", "RedactTokens", "StreamTokens", "redact_tokens"]

TOKEN_PARAM = "token"
"""The query parameter of a stream URL that carries its token."""

_SALT = "narration.stream-token"
_IN_QUERY = re.compile(rf"([?&]{TOKEN_PARAM}=)[^&#\s\"]*")


class StreamTokens:
    """Issues and checks stream tokens (one job each, valid `ttl_s` seconds)."""

    def __init__(self, secret: str | bytes | None = None, ttl_s: float = 300.0) -> None:
        if ttl_s <= 0:
            raise ValueError("stream_token_ttl_s must be > 0")
        self.ttl_s = ttl_s
        self._signer = URLSafeTimedSerializer(secret or secrets.token_bytes(32), salt=_SALT)

    def issue(self, job_id: str) -> str:
        """A token for reading `job_id`'s stream."""
        return str(self._signer.dumps(job_id))

    def check(self, token: str, job_id: str) -> None:
        """Nothing when `token` lets its bearer read `job_id`'s stream; ApiError 401 otherwise
        (expired, forged, or made for another job)."""
        try:
            signed = self._signer.loads(token, max_age=math.ceil(self.ttl_s))
        except SignatureExpired:
            raise ApiError(
                401, "token_expired", "this stream token has expired; get a new sse_url"
            ) from None
        except BadSignature:
            raise ApiError(401, "invalid_token", "this stream token is not valid") from None
        if not isinstance(signed, str) or not hmac.compare_digest(signed, job_id):
            raise ApiError(401, "invalid_token", "this stream token is for another job")


def redact_tokens(text: str) -> str:
    """`text` with the value of every `token=` query parameter replaced by `***`."""
    return _IN_QUERY.sub(r"\1***", text)


class RedactTokens(logging.Filter):
    """A logging filter that takes stream tokens out of a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and f"{TOKEN_PARAM}=" in record.msg:
            record.msg = redact_tokens(record.msg)
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_redacted(arg) for arg in record.args)
        return True


def _redacted(arg: Any) -> Any:
    return redact_tokens(arg) if isinstance(arg, str) and f"{TOKEN_PARAM}=" in arg else arg


def install_token_redaction() -> None:
    """Redact stream tokens from uvicorn's access log (idempotent)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
