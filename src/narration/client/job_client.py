"""`JobClient`: the job API over HTTP (submit, status, cancel, list, operations, stream, run)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from .._backoff import Backoff
from ..events import NarrationEvent
from ..protocol import CORRELATION_HEADER
from .body import operation_body
from .errors import JobClientError, error_from_response
from .failover import Failover, base_url_list
from .models import StreamItem, Submitted, Terminal
from .stream import ResumableStream

__all__ = ["DEFAULT_TIMEOUT", "JobClient"]

DEFAULT_TIMEOUT: Final = 10.0


class JobClient:
    """An async client of the narration job API (httpx + httpx-sse).

    `base_url` is one URL or a list tried in order: a URL that refuses connections is skipped
    and the next one used (and kept) from then on. `correlation_id` is sent as
    `X-Correlation-Id` on every request, and `token` (an API key) as `Authorization: Bearer`.
    `timeout` applies to every request (default 10 s, or the injected client's own); a stream
    only fails for silence after `stream_read_timeout` (the server sends a keepalive every
    15 s). `max_retries` bounds consecutive reconnects of
    a stream that make no progress; backoff doubles from `backoff_initial` up to `backoff_max`.
    An injected `http_client` is used as is and left open; one the client made is closed by
    `aclose()` / `async with`.
    """

    def __init__(
        self,
        base_url: str | Sequence[str],
        *,
        correlation_id: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        token: str | None = None,
        max_retries: int = 5,
        backoff_initial: float = 0.1,
        backoff_max: float = 2.0,
        stream_read_timeout: float | None = 60.0,
    ) -> None:
        urls = base_url_list(base_url)
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.correlation_id = correlation_id
        self.max_retries = max_retries
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max

        self._headers: dict[str, str] = dict(headers or {})
        if token is not None:
            self._headers["Authorization"] = f"Bearer {token}"
        if correlation_id is not None:
            self._headers[CORRELATION_HEADER] = correlation_id

        self._owns_client = http_client is None
        if timeout is None:
            timeout = http_client.timeout if http_client is not None else DEFAULT_TIMEOUT
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._stream_timeout = httpx.Timeout(
            connect=self._timeout.connect,
            read=stream_read_timeout,
            write=self._timeout.write,
            pool=self._timeout.pool,
        )
        self._http = http_client if http_client is not None else httpx.AsyncClient()
        self._failover = Failover(self._http, urls)

    # ---------------------------------------------------------------- lifecycle

    @property
    def base_urls(self) -> tuple[str, ...]:
        """The configured base URLs, in failover order."""
        return self._failover.urls

    @property
    def base_url(self) -> str:
        """The base URL in use (the last one that accepted a connection)."""
        return self._failover.url

    async def aclose(self) -> None:
        """Close the HTTP client if this `JobClient` created it."""
        if self._owns_client:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ---------------------------------------------------------------- job API

    async def submit(
        self,
        op: str | BaseModel | Mapping[str, Any],
        fields: BaseModel | Mapping[str, Any] | None = None,
    ) -> Submitted:
        """`POST /v1/jobs`: start a job.

        `op` is the request body (a dict, or a model that has its `operation` field), or an
        operation name with its `fields` (a dict or your model): `submit("build_report",
        {"report_id": "r-1"})`. The server validates it and answers 422 (listing its
        operations) if it is wrong.
        """
        body = operation_body(op, fields)
        response = await self._request("POST", "/v1/jobs", json=body)
        data = _json(response, dict)
        try:
            return Submitted(
                job_id=str(data["job_id"]),
                sse_url=str(response.url.join(str(data["sse_url"]))),
                correlation_id=(
                    str(data["correlation_id"]) if data.get("correlation_id") is not None else None
                ),
                state=str(data["state"]),
            )
        except KeyError as missing:
            raise JobClientError(
                response.status_code, "invalid_response", f"submit answer lacks {missing}"
            ) from None

    async def status(self, job_id: str) -> dict[str, Any]:
        """`GET /v1/jobs/{job_id}`: the job's state, timestamps, error and event count."""
        response = await self._request("GET", _job_path(job_id))
        result: dict[str, Any] = _json(response, dict)
        return result

    async def cancel(self, job_id: str) -> dict[str, Any]:
        """`DELETE /v1/jobs/{job_id}`: cancel the job (409 `JobClientError` if it finished)."""
        response = await self._request("DELETE", _job_path(job_id))
        result: dict[str, Any] = _json(response, dict)
        return result

    async def list_jobs(
        self,
        state: str | None = None,
        limit: int | None = None,
        *,
        correlation_id: str | None = None,
        operation: str | None = None,
        since: float | str | None = None,
        until: float | str | None = None,
    ) -> list[dict[str, Any]]:
        """`GET /v1/jobs`: job summaries (live and archived), newest first, one page.

        Filters: `state`, `correlation_id`, `operation`, `since`/`until` (creation time, Unix
        seconds or ISO 8601). `jobs_page` also gives the next page's cursor.
        """
        jobs, _ = await self.jobs_page(
            state,
            limit,
            correlation_id=correlation_id,
            operation=operation,
            since=since,
            until=until,
        )
        return jobs

    async def jobs_page(
        self,
        state: str | None = None,
        limit: int | None = None,
        *,
        correlation_id: str | None = None,
        operation: str | None = None,
        since: float | str | None = None,
        until: float | str | None = None,
        cursor: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of `list_jobs` and the cursor of the next one (None: that was the last)."""
        given = {
            "state": state,
            "limit": limit,
            "correlation_id": correlation_id,
            "operation": operation,
            "since": since,
            "until": until,
            "cursor": cursor,
        }
        params = {key: str(value) for key, value in given.items() if value is not None}
        response = await self._request("GET", "/v1/jobs", params=params)
        data = _json(response, object)
        if not isinstance(data, list):
            raise JobClientError(
                response.status_code, "invalid_response", "expected a list of jobs"
            )
        return data, response.headers.get("x-next-cursor")

    async def download(
        self,
        job_id: str,
        *,
        after: int | None = None,
        level: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        q: str | None = None,
    ) -> AsyncIterator[bytes]:
        """`GET /v1/jobs/{job_id}/events`: the job's events as NDJSON, in chunks as they come
        (sent gzipped, decompressed here). Filters as `stream`."""
        given = {"after": after, "level": level, "actor": actor, "action": action, "q": q}
        params = {key: str(value) for key, value in given.items() if value is not None}
        try:
            response = await self._send(
                "GET",
                _job_path(job_id) + "/events",
                params=params,
                headers={"Accept-Encoding": "gzip"},
                stream=True,
                timeout=self._stream_timeout,
            )
        except httpx.TransportError as error:
            raise JobClientError(
                None, "connection_failed", f"download {job_id}: {error}"
            ) from error
        try:
            if not response.is_success:
                await response.aread()
                raise error_from_response(response)
            async for chunk in response.aiter_bytes():
                yield chunk
        except httpx.TransportError as error:
            raise JobClientError(
                None, "stream_interrupted", f"download {job_id}: {error}"
            ) from error
        finally:
            await response.aclose()

    async def operations(self) -> dict[str, Any]:
        """`GET /v1/operations`: the server's operations, name -> `{summary, schema}`."""
        response = await self._request("GET", "/v1/operations")
        result: dict[str, Any] = _json(response, dict)
        return result

    async def run(
        self,
        op: str | BaseModel | Mapping[str, Any],
        fields: BaseModel | Mapping[str, Any] | None = None,
    ) -> tuple[list[NarrationEvent], Terminal]:
        """Submit (as `submit`) and wait for the end: (its events in order, its `Terminal`).

        Gaps are not in the list; compare event ids (or use `stream()`) to see them.
        """
        submitted = await self.submit(op, fields)
        events: list[NarrationEvent] = []
        async for item in self.stream(submitted.job_id):
            if isinstance(item, NarrationEvent):
                events.append(item)
            elif isinstance(item, Terminal):
                return events, item
        raise JobClientError(None, "stream_interrupted", "stream ended without a terminal")

    # ---------------------------------------------------------------- streaming

    def stream(
        self,
        job_id: str,
        after: int | None = None,
        *,
        level: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        q: str | None = None,
    ) -> AsyncIterator[StreamItem]:
        """The job's events (ids > `after`), `Gap`s, and finally exactly one `Terminal`.

        Filters, applied by the server: `level` (at least), `actor`, `action` (comma-separated
        for several), `q` (text contains); skipped events keep their ids, so resuming a
        filtered stream is exact too.

        A dropped connection (network error, or the response ending before the terminal) is
        resumed with `Last-Event-ID: <last id seen>`; each event is yielded once. A resume
        answered 204 means the stream is over: the `Terminal` is then built from the job's
        status if this client had not seen it. After `max_retries` consecutive reconnects
        without progress, `JobClientError` (`stream_interrupted`) is raised.
        """
        path = _job_path(job_id) + "/stream"
        wanted = {"level": level, "actor": actor, "action": action, "q": q}
        params = {key: value for key, value in wanted.items() if value is not None}

        async def connect(headers: Mapping[str, str]) -> httpx.Response:
            return await self._send(
                "GET",
                path,
                params=params,
                headers=headers,
                stream=True,
                timeout=self._stream_timeout,
            )

        async def ended() -> Terminal:
            return await self._terminal_from_status(job_id)

        reader = ResumableStream(
            job_id,
            after,
            connect=connect,
            ended=ended,
            max_retries=self.max_retries,
            backoff=Backoff(self.backoff_initial, self.backoff_max),
        )
        return reader.items()

    async def _terminal_from_status(self, job_id: str) -> Terminal:
        """The `Terminal` of a stream that ended before this client read its terminal event."""
        info = await self.status(job_id)
        error = info.get("error")
        return Terminal(
            job_id=str(info.get("job_id", job_id)),
            state=str(info.get("state")),
            error=None if error is None else str(error),
            id=None,
        )

    # ---------------------------------------------------------------- HTTP plumbing

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """Send a whole request; a non-2xx answer raises `JobClientError`."""
        try:
            response = await self._send(
                method, path, params=params, json=json, timeout=self._timeout
            )
        except httpx.TransportError as error:  # sent, but the answer never came
            raise JobClientError(None, "connection_failed", f"{method} {path}: {error}") from error
        if not response.is_success:
            raise error_from_response(response)
        return response

    async def _send(
        self,
        method: str,
        path: str,
        *,
        timeout: httpx.Timeout,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send with this client's headers (plus `headers`), failing over between base URLs."""
        return await self._failover.send(
            method,
            path,
            timeout=timeout,
            headers={**self._headers, **(headers or {})},
            params=params,
            json=json,
            stream=stream,
        )


def _job_path(job_id: str) -> str:
    return "/v1/jobs/" + quote(job_id, safe="")


def _json(response: httpx.Response, kind: type) -> Any:
    """The response's JSON body, checked to be a `kind` (dict, or object for any)."""
    try:
        data = response.json()
    except ValueError:
        raise JobClientError(
            response.status_code, "invalid_response", "the answer is not JSON"
        ) from None
    if not isinstance(data, kind):
        raise JobClientError(
            response.status_code,
            "invalid_response",
            f"expected a JSON {kind.__name__}, got {type(data).__name__}",
        )
    return data
