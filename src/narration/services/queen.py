"""The queen: the entry point of the system, forwarding work to the hives it knows.

    app = create_queen_app({"localhost": "http://127.0.0.1:7835"})   # `narration queen`

`status`, `hive_list` and `hive_get` are answered here. `hive_check` (its `alias` names the
hive), `worker_spawn`, `worker_list` and `infer` (their `hive_id`) are forwarded: the queen
submits the same operation to the hive with the propagation headers of its job
(`X-Correlation-Id`, `traceparent`/`tracestate`, `X-Parent-Job-Id` = the queen's job id), streams
the hive's job and relays every event live into its own job (actor, ids and correlation kept,
`origin` = `hive:<hive job id>#<hive event id>`), and ends like the hive's job did:

| the hive                                | the queen job                                         |
|-----------------------------------------|-------------------------------------------------------|
| ends `done`                             | completes (`done`)                                    |
| ends `error` / `cancelled`              | fails with the hive's error (`HiveFailedError`)       |
| refuses the connection                  | fails, "hive unreachable" (`HiveUnreachableError`)    |
| dies mid-stream (or silent over 3 s)    | fails within seconds (`HiveLostError`)                |
| is not configured                       | fails, listing the known hives (`UnknownHiveError`)   |

Cancelling the queen job cancels the hive's job too. Events of this service have the actor
`queen`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any, Final

import httpx
from fastapi import FastAPI
from pydantic import BaseModel

from ..client import Gap, JobClient, JobClientError, Terminal
from ..emit import n, relay
from ..events import Level, NarrationEvent
from ..jobs import Handler, Job, JobRegistry
from ..propagation import async_client
from ..server import create_app
from .errors import ServiceError
from .operations import HiveCheck, HiveGet, HiveList, Infer, Status, WorkerList, WorkerSpawn

__all__ = [
    "FORWARDED_OPERATIONS",
    "HiveError",
    "HiveFailedError",
    "HiveLostError",
    "HiveUnreachableError",
    "UnknownHiveError",
    "create_queen_app",
    "queen_jobs",
]

_FORWARDED_MODELS: Final[tuple[type[BaseModel], ...]] = (HiveCheck, WorkerSpawn, WorkerList, Infer)
FORWARDED_OPERATIONS: Final = tuple(m.model_fields["operation"].default for m in _FORWARDED_MODELS)
"""Operations the queen hands to a hive."""

CONNECT_TIMEOUT: Final = 2.0
"""Seconds to wait for a hive to accept a connection."""
SILENCE_TIMEOUT: Final = 3.0
"""A hive stream silent this long (hives send a keepalive every second) counts as lost."""
STREAM_RETRIES: Final = 1
"""Reconnects of a dropped hive stream before the hive counts as lost."""


class HiveError(ServiceError):
    """A forwarded operation did not complete on its hive."""


class UnknownHiveError(HiveError):
    """The operation names a hive this queen is not configured with."""


class HiveUnreachableError(HiveError):
    """The hive did not accept the connection."""


class HiveLostError(HiveError):
    """The hive went away (or fell silent) while its job was streaming."""


class HiveFailedError(HiveError):
    """The hive's job ended in `error` or `cancelled`, or the hive refused the operation."""


def create_queen_app(hives: Mapping[str, str], **server_options: Any) -> FastAPI:
    """The queen service for `hives` (hive id -> base URL).

    `server_options` go to `create_app` (`ServerSettings` fields, `store=...`); the actor
    defaults to `queen`.
    """
    known = {hive_id: url.rstrip("/") for hive_id, url in hives.items()}
    options: dict[str, Any] = {"actor": "queen", **server_options}
    app = create_app(queen_jobs(known), **options)
    app.state.hives = known
    return app


def queen_jobs(hives: Mapping[str, str]) -> JobRegistry:
    """The queen's operations: three answered here, the rest forwarded to the named hive."""
    jobs = JobRegistry()
    jobs.add("status", _status(hives), model=Status)
    jobs.add("hive_list", _hive_list(hives), model=HiveList)
    jobs.add("hive_get", _hive_get(hives), model=HiveGet)
    forward = _forward(hives)
    for name, model in zip(FORWARDED_OPERATIONS, _FORWARDED_MODELS, strict=True):
        jobs.add(name, forward, model=model)
    return jobs


# --------------------------------------------------------------------------- local operations


def _status(hives: Mapping[str, str]) -> Handler:
    async def status(operation: Any, job: Job) -> None:
        n("status", "Queen is up with {} hive(s) configured", len(hives), hives=len(hives))
        async with async_client(timeout=httpx.Timeout(2.0, connect=1.0)) as http:
            for hive_id, url in hives.items():
                await _probe(http, hive_id, url)

    return status


def _hive_list(hives: Mapping[str, str]) -> Handler:
    async def hive_list(operation: Any, job: Job) -> None:
        count = len(hives)
        n("hive_list", "Found {} hive{}", count, "" if count == 1 else "s", hives=count)
        for hive_id, url in hives.items():
            n("hive", "{} at {}", hive_id, url, hive_id=hive_id, url=url)

    return hive_list


def _hive_get(hives: Mapping[str, str]) -> Handler:
    async def hive_get(operation: HiveGet, job: Job) -> None:
        url = _hive_url(hives, operation.alias)
        n("hive_get", "Hive {} is at {}", operation.alias, url, hive_id=operation.alias, url=url)
        async with async_client(timeout=httpx.Timeout(2.0, connect=1.0)) as http:
            await _probe(http, operation.alias, url)

    return hive_get


async def _probe(http: httpx.AsyncClient, hive_id: str, url: str) -> None:
    """Narrate whether the hive answers `/health`."""
    try:
        response = await http.get(f"{url}/health")
        health = response.json() if response.is_success else {}
    except (httpx.HTTPError, ValueError) as exc:
        n(
            "hive_health",
            "Hive {} at {} does not answer: {}",
            hive_id,
            url,
            str(exc) or type(exc).__name__,
            level=Level.WARN,
            hive_id=hive_id,
        )
        return
    if not isinstance(health, dict) or health.get("status") != "ok":
        n("hive_health", "Hive {} is not healthy: {}", hive_id, health, level=Level.WARN)
        return
    running = health.get("jobs_running", 0)
    n("hive_health", "Hive {} is healthy, {} job(s) running", hive_id, running, hive_id=hive_id)


def _hive_url(hives: Mapping[str, str], hive_id: str) -> str:
    url = hives.get(hive_id)
    if url is None:
        listing = ", ".join(sorted(hives)) or "none"
        raise UnknownHiveError(f"unknown hive {hive_id!r}; known hives: {listing}")
    return url


# --------------------------------------------------------------------------- forwarding


def _forward(hives: Mapping[str, str]) -> Handler:
    async def forward(operation: Any, job: Job) -> None:
        hive_id: str = operation.alias if isinstance(operation, HiveCheck) else operation.hive_id
        url = _hive_url(hives, hive_id)
        n(
            "forward",
            "Forwarding {} to hive {} at {}",
            operation.name,
            hive_id,
            url,
            hive_id=hive_id,
            operation=operation.name,
        )
        timeout = httpx.Timeout(10.0, connect=CONNECT_TIMEOUT)
        async with async_client(timeout=timeout) as http:
            client = JobClient(
                url,
                correlation_id=job.correlation_id,
                http_client=http,
                max_retries=STREAM_RETRIES,
                backoff_initial=0.2,
                stream_read_timeout=SILENCE_TIMEOUT,
            )
            await _run_on_hive(client, hive_id, url, operation)

    return forward


async def _run_on_hive(client: JobClient, hive_id: str, url: str, operation: Any) -> None:
    """Submit `operation` to the hive, relay its stream here, and end as the hive's job did."""
    try:
        submitted = await client.submit(operation)
    except JobClientError as exc:
        if exc.status_code is None:
            raise HiveUnreachableError(
                f"hive unreachable: {hive_id} at {url}: {exc.message}"
            ) from None
        raise HiveFailedError(f"hive {hive_id} refused {operation.name}: {exc.message}") from None
    hive_job = submitted.job_id
    n("forwarded", "Hive {} runs it as {}", hive_id, hive_job, hive_id=hive_id, hive_job=hive_job)
    terminal: Terminal | None = None
    try:
        async for item in client.stream(hive_job):
            if isinstance(item, NarrationEvent):
                relay(item, origin=f"hive:{hive_job}#{item.id}")
            elif isinstance(item, Gap):
                n(
                    "hive_gap",
                    "Hive {} dropped {} event(s) before they were relayed",
                    hive_id,
                    item.missed,
                    level=Level.WARN,
                    missed=item.missed,
                )
            else:
                terminal = item
    except JobClientError as exc:
        raise HiveLostError(
            f"lost hive {hive_id} while streaming {hive_job}: {exc.message}"
        ) from None
    except asyncio.CancelledError:
        await _cancel_quietly(client, hive_job)
        raise
    if terminal is None:  # pragma: no cover - stream() always ends with a Terminal or raises
        raise HiveLostError(f"the stream of {hive_job} on hive {hive_id} ended without an outcome")
    if terminal.state == "completed":
        n("hive_done", "Hive {} finished {}", hive_id, operation.name, hive_job=hive_job)
        return
    reason = terminal.error or terminal.state
    if terminal.state == "cancelled":
        raise HiveFailedError(f"hive {hive_id} cancelled {hive_job}: {reason}")
    raise HiveFailedError(f"hive {hive_id}: {reason}")


async def _cancel_quietly(client: JobClient, hive_job: str) -> None:
    """Best effort: cancel the hive's job when the queen's job is cancelled."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.cancel(hive_job), timeout=2.0)
