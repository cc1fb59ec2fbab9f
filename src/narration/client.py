"""`JobClient`: submit operations to a narration server and watch their jobs live over SSE.

    async with JobClient("http://127.0.0.1:7833", correlation_id="req-42") as client:
        submitted = await client.submit(Operation.hive_list())
        async for item in client.stream(submitted.job_id):
            match item:
                case NarrationEvent():
                    print(item.id, item.human)
                case Gap(missed=missed):
                    print(f"({missed} events were dropped by the server)")
                case Terminal(state=state, error=error):
                    print("finished:", state, error)

`stream()` survives dropped connections: it reconnects with `Last-Event-ID` (bounded retries,
exponential backoff), skips anything it has already yielded and stops after exactly one
`Terminal`. With several base URLs, a URL that refuses connections is skipped for the next.
Every failure surfaces as `JobClientError` (HTTP errors carry the server's `code`/`message`).
Wire formats and endpoints: docs/ARCHITECTURE.md sections 3 and 4.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self, TypeAlias
from urllib.parse import quote

import httpx
import msgspec
from httpx_sse import EventSource, SSEError
from pydantic import BaseModel

from .errors import NarrationError
from .events import NarrationEvent, decode_event

__all__ = [
    "Gap",
    "JobClient",
    "JobClientError",
    "StreamItem",
    "Submitted",
    "Terminal",
    "backoff_delay",
    "operation_body",
]

TERMINAL_STATES: Final[Mapping[str, str]] = {
    "done": "completed",
    "error": "failed",
    "cancelled": "cancelled",
}
"""Terminal SSE event name -> the job state it announces."""

_RETRYABLE_STATUS: Final = frozenset({502, 503, 504})
"""Stream responses worth a reconnect (a proxy or replica restarting), not an error yet."""

DEFAULT_TIMEOUT: Final = 10.0


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Submitted:
    """What `POST /v1/jobs` answered: the new job, where to stream it, and its ids."""

    job_id: str
    sse_url: str
    correlation_id: str | None
    state: str


@dataclass(frozen=True, slots=True)
class Terminal:
    """The end of a job's stream: its final `state` (completed, failed or cancelled).

    `id` is the terminal event's SSE id, or None when the stream had already ended before this
    client saw the terminal event (the state then comes from `GET /v1/jobs/{id}`).
    """

    job_id: str
    state: str
    error: str | None = None
    id: int | None = None

    @property
    def ok(self) -> bool:
        """True when the job completed."""
        return self.state == "completed"


@dataclass(frozen=True, slots=True)
class Gap:
    """The server dropped `missed` events this reader had not read; the next id is `next_id`."""

    missed: int
    next_id: int


StreamItem: TypeAlias = NarrationEvent | Gap | Terminal
"""What `JobClient.stream()` yields: events, gaps, and finally one `Terminal`."""


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


# --------------------------------------------------------------------------- client


class JobClient:
    """An async client of the narration job API (httpx + httpx-sse).

    `base_url` is one URL or a list tried in order: a URL that refuses connections is skipped
    and the next one used (and kept) from then on. `correlation_id` is sent as
    `X-Correlation-Id` on every request. `timeout` applies to every request (default 10 s, or
    the injected client's own); a stream only fails for silence after `stream_read_timeout`
    (the server sends a keepalive every 15 s). `max_retries` bounds consecutive reconnects of
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
        max_retries: int = 5,
        backoff_initial: float = 0.1,
        backoff_max: float = 2.0,
        stream_read_timeout: float | None = 60.0,
    ) -> None:
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls or not all(isinstance(url, str) and url.strip() for url in urls):
            raise ValueError("base_url must be a non-empty URL or a non-empty list of URLs")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self._base_urls: tuple[str, ...] = tuple(url.strip().rstrip("/") for url in urls)
        self._active = 0
        self.correlation_id = correlation_id
        self.max_retries = max_retries
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max

        self._headers: dict[str, str] = dict(headers or {})
        if correlation_id is not None:
            self._headers["X-Correlation-Id"] = correlation_id

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

    # ---------------------------------------------------------------- lifecycle

    @property
    def base_urls(self) -> tuple[str, ...]:
        """The configured base URLs, in failover order."""
        return self._base_urls

    @property
    def base_url(self) -> str:
        """The base URL in use (the last one that accepted a connection)."""
        return self._base_urls[self._active]

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
        data = self._json(response, dict)
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
        result: dict[str, Any] = self._json(response, dict)
        return result

    async def cancel(self, job_id: str) -> dict[str, Any]:
        """`DELETE /v1/jobs/{job_id}`: cancel the job (409 `JobClientError` if it finished)."""
        response = await self._request("DELETE", _job_path(job_id))
        result: dict[str, Any] = self._json(response, dict)
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
        data = self._json(response, object)
        if isinstance(data, dict) and isinstance(data.get("jobs"), list):
            data = data["jobs"]
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
                raise self._error(response)
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
        result: dict[str, Any] = self._json(response, dict)
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

    async def stream(
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
        last_id = after
        failures = 0
        while True:
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
            if last_id is not None:
                headers["Last-Event-ID"] = str(last_id)
            cause: JobClientError | httpx.TransportError
            try:
                response = await self._send(
                    "GET",
                    path,
                    params=params,
                    headers=headers,
                    stream=True,
                    timeout=self._stream_timeout,
                )
            except (JobClientError, httpx.TransportError) as error:  # no URL answered
                cause = error
            else:
                try:
                    if response.status_code == 204:
                        yield await self._terminal_from_status(job_id)
                        return
                    if not response.is_success:
                        await response.aread()
                        cause = self._error(response)
                        if response.status_code not in _RETRYABLE_STATUS:
                            raise cause
                    else:
                        async with aclosing(EventSource(response).aiter_sse()) as sse_events:
                            async for sse in sse_events:
                                name = sse.event
                                if name == "narration":
                                    event = _narration(sse.data, sse.id)
                                    if last_id is not None and event.id <= last_id:
                                        continue  # already yielded before a reconnect
                                    last_id = event.id
                                    failures = 0
                                    yield event
                                elif name == "gap":
                                    gap = _gap(sse.data)
                                    if last_id is None or gap.next_id - 1 > last_id:
                                        last_id = gap.next_id - 1  # a resume must not repeat it
                                    failures = 0
                                    yield gap
                                elif name in TERMINAL_STATES:
                                    yield _terminal(job_id, name, sse.data, sse.id)
                                    return
                                # anything else (the `retry:` preamble, unknown events): ignored
                        cause = JobClientError(
                            None, "stream_interrupted", "the stream ended before its terminal"
                        )
                except SSEError as error:
                    raise JobClientError(
                        response.status_code, "invalid_response", str(error)
                    ) from None
                except httpx.TransportError as error:  # the connection dropped mid-stream
                    cause = error
                finally:
                    await response.aclose()
            failures += 1
            if failures > self.max_retries:
                raise _gave_up(job_id, self.max_retries, last_id, cause) from cause
            await asyncio.sleep(backoff_delay(failures, self.backoff_initial, self.backoff_max))

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
            raise self._error(response)
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
        """Send to the active base URL, failing over to the next ones on connect errors.

        Only connection failures move on (the request never reached a server, so even a POST
        is safe to send elsewhere); when every URL refuses, `JobClientError`
        (`connection_failed`, no status) is raised.
        """
        merged = {**self._headers, **(headers or {})}
        count = len(self._base_urls)
        failures: list[str] = []
        last: httpx.TransportError | None = None
        for offset in range(count):
            index = (self._active + offset) % count
            request = self._http.build_request(
                method,
                self._base_urls[index] + path,
                params=params,
                json=json,
                headers=merged,
                timeout=timeout,
            )
            try:
                response = await self._http.send(request, stream=stream)
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                failures.append(f"{self._base_urls[index]} ({error or type(error).__name__})")
                last = error
                continue
            self._active = index
            return response
        raise JobClientError(
            None, "connection_failed", "could not connect to " + ", ".join(failures)
        ) from last

    @staticmethod
    def _error(response: httpx.Response) -> JobClientError:
        """The `JobClientError` for a non-2xx response (read), from its JSON error body."""
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

    @staticmethod
    def _json(response: httpx.Response, kind: type) -> Any:
        """The response's JSON body, checked to be a `kind` (dict, list or object)."""
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


# --------------------------------------------------------------------------- SSE payloads


def operation_body(
    op: str | BaseModel | Mapping[str, Any],
    fields: BaseModel | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body of `POST /v1/jobs` for an operation given as `JobClient.submit` takes it."""
    if isinstance(op, str):
        values = _dump(fields) if isinstance(fields, BaseModel) else dict(fields or {})
        return {"operation": op, **values}
    if fields is not None:
        raise TypeError("fields= goes with an operation name: submit('name', {...})")
    if isinstance(op, BaseModel):
        name = getattr(op, "operation", None)
        if not isinstance(name, str):
            raise TypeError(
                f"{type(op).__name__} has no `operation` field: "
                f"submit('operation_name', {type(op).__name__}(...)) names it"
            )
        return {"operation": name, **_dump(op)}
    if isinstance(op, Mapping):
        return dict(op)
    raise TypeError(f"an operation is a name, a dict or a pydantic model, not {type(op).__name__}")


def _dump(model: BaseModel) -> dict[str, Any]:
    """A model's fields as JSON values, `SecretStr`/`SecretBytes` ones with their real value
    (pydantic would send `**********`; the server masks them in everything it shows)."""
    from pydantic import SecretBytes, SecretStr
    from pydantic_core import to_jsonable_python

    from .redact import secret_values

    if not secret_values(model):
        plain: dict[str, Any] = model.model_dump(mode="json", exclude={"operation"})
        return plain

    def reveal(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, SecretBytes):
            return value.get_secret_value().decode("utf-8", "replace")
        if isinstance(value, dict):
            return {key: reveal(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [reveal(item) for item in value]
        return value

    data = reveal(model.model_dump(mode="python", exclude={"operation"}))
    result: dict[str, Any] = to_jsonable_python(data)
    return result


def backoff_delay(attempt: int, initial: float = 0.1, cap: float = 2.0) -> float:
    """Seconds to wait before reconnect number `attempt` (1, 2, ...): doubling, capped."""
    delay: float = initial * 2.0 ** (attempt - 1)
    return min(delay, cap)


def _gave_up(
    job_id: str, retries: int, last_id: int | None, cause: JobClientError | httpx.TransportError
) -> JobClientError:
    """The error a stream raises when reconnecting did not help: the last failure's, or
    `stream_interrupted` for a dropped connection."""
    where = f"job {job_id} after {retries} reconnects (last id {last_id})"
    if isinstance(cause, JobClientError):
        return JobClientError(cause.status_code, cause.code, f"{cause.message}; gave up on {where}")
    detail = str(cause) or type(cause).__name__
    return JobClientError(None, "stream_interrupted", f"{detail}; gave up on {where}")


def _job_path(job_id: str) -> str:
    return "/v1/jobs/" + quote(job_id, safe="")


def _sse_id(raw: str) -> int | None:
    """The numeric SSE id, or None when absent or not a number."""
    return int(raw) if raw.isdigit() else None


def _narration(data: str, raw_id: str) -> NarrationEvent:
    """Decode an `event: narration` payload; its `id` is the SSE id (the stream's number)."""
    try:
        event = decode_event(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise JobClientError(
            None, "invalid_event", f"undecodable narration event: {error}"
        ) from None
    sse_id = _sse_id(raw_id)
    if sse_id is not None and sse_id != event.id:
        event = msgspec.structs.replace(event, id=sse_id)
    return event


def _gap(data: str) -> Gap:
    try:
        payload = json.loads(data)
        return Gap(missed=int(payload["missed"]), next_id=int(payload["next_id"]))
    except (ValueError, TypeError, KeyError) as error:
        raise JobClientError(None, "invalid_event", f"undecodable gap event: {error}") from None


def _terminal(job_id: str, name: str, data: str, raw_id: str) -> Terminal:
    """The `Terminal` of a `done`/`error`/`cancelled` event: the state comes from its name."""
    try:
        payload = json.loads(data) if data else {}
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    error = payload.get("error")
    return Terminal(
        job_id=str(payload.get("job_id") or job_id),
        state=TERMINAL_STATES[name],
        error=None if error is None else str(error),
        id=_sse_id(raw_id),
    )
