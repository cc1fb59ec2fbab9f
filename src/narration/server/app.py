"""`create_app()` and `mount_narration()`: a narration job server, standalone or inside your app.

    jobs = JobRegistry()                      # your operations and their handlers

    app = create_app(jobs)                    # a FastAPI app of its own
    mount_narration(host, jobs, prefix="/narration")   # or inside an existing app

Either way the server's lifespan (store, job runner, graceful stop) runs inside the host's, so
stopping the process ends running jobs within the grace period and every open stream gets its
terminal event. The HTTP contract is in docs/ARCHITECTURE.md; who may call it, and the
limits, in docs/SECURITY.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from starlette.types import ASGIApp

from .. import __version__
from ..archive import Archive, Archiver
from ..emit import n
from ..jobs import Job, JobManager, JobRegistry
from ..otel import otel_from_env
from ..propagation.http import NarrationMiddleware
from ..safe_encode import EventCaps
from ..store import LogLimits, Store, open_store
from .auth import ApiKeys, Authenticator, AuthPolicy
from .cors import install_cors
from .errors import install_error_handlers
from .hosts import HostGuard
from .openapi import document_app
from .ratelimit import SubmitRateLimit
from .routes import add_job_routes
from .settings import ServerSettings
from .shutdown import on_exit_signals
from .sse import StreamRegistry
from .stream_route import StreamRoute
from .tokens import StreamTokens
from .ui import install_ui

__all__ = [
    "ServerState",
    "ServerStatus",
    "create_app",
    "mount_narration",
    "server_state",
    "server_states",
]

STATES_KEY = "narration_servers"
"""`app.state` attribute listing the narration servers an app runs (its own, or mounted ones)."""


@dataclass
class ServerState:
    """What the routes share: settings, the store, the job manager, the open streams, and who
    may call (auth, stream tokens, the submission rate limit)."""

    settings: ServerSettings
    store: Store
    jobs: JobManager
    streams: StreamRegistry
    auth: AuthPolicy
    tokens: StreamTokens
    rate: SubmitRateLimit
    hold_unknown: bool = False
    metrics: Any = None  # ServerMetrics when prometheus-client is installed (server/metrics.py)
    archiver: Archiver | None = None  # when finished jobs are archived (settings.archive)
    _stopping: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def registry(self) -> JobRegistry:
        """The operations this server runs."""
        return self.jobs.registry

    @property
    def archive(self) -> Archive | None:
        """The archive finished jobs are read back from, if any."""
        return self.archiver.archive if self.archiver is not None else None

    def starting(self) -> None:
        """A run of the server begins (an app may be served more than once, e.g. by tests)."""
        self._stopping = None
        self.streams.restart()
        self.jobs.accepting = True

    def begin_shutdown(self) -> asyncio.Task[None]:
        """Refuse new jobs, end the running ones (after the grace period), then let open
        streams flush their terminal and close. Idempotent: one stop however often asked."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._shutdown())
        return self._stopping

    async def _shutdown(self) -> None:
        try:
            await self.jobs.shutdown(self.settings.shutdown_grace_s)
        finally:
            self.streams.closing.set()


class ServerStatus(BaseModel):
    """Report that the server is up and how many jobs it runs."""


def create_app(
    jobs: JobRegistry | None = None,
    *,
    settings: ServerSettings | None = None,
    store: Store | str | None = None,
    hold_unhandled: bool = False,
    title: str = "narration",
    auth: Authenticator | None = None,
    **overrides: Any,
) -> FastAPI:
    """A narration server running the operations of `jobs` (plus a built-in `status`).

    Callers authenticate with the API keys of the settings, or through `auth(request)` (your
    own: it returns a `Principal`, or None for 401); see `narration.server.auth`.

    `overrides` are `ServerSettings` fields (e.g. `retention_s=0`), over `settings` or the
    `NARRATION_*` environment. `store` is a `Store` or a URL (`memory://`, `redis://...`).
    With `hold_unhandled` (the test harness), an operation without a handler (declared only;
    or any operation at all when `jobs` is None) is accepted and its job stays running until
    completed by hand. Otherwise `RegistryError` is raised if an operation of `jobs` has no
    handler.
    """
    if settings is None:
        settings = ServerSettings.from_env(**overrides)
    elif overrides:
        settings = replace(settings, **overrides)
    registry = _with_builtins(jobs, lambda: manager.running)
    if not hold_unhandled:  # a harness holds declared operations open instead of running them
        registry.check()
    policy = _auth_policy(settings, auth)
    caps = EventCaps(settings.max_event_bytes, settings.max_field_bytes, settings.repr_timeout_s)
    limits = LogLimits(settings.max_events, settings.max_bytes, caps)
    backend = (
        store
        if isinstance(store, Store)
        else open_store(store or settings.store, limits, settings.retention_s)
    )
    manager = JobManager(
        backend,
        registry,
        retention_s=settings.retention_s,
        timeout_s=settings.job_timeout_s,
        max_running=settings.max_running,
        hold_unhandled=hold_unhandled,
        actor=settings.actor,
        max_finished=settings.max_finished_jobs,
    )
    hold_unknown = hold_unhandled and jobs is None  # a bare harness takes any operation
    state = ServerState(
        settings,
        backend,
        manager,
        StreamRegistry(),
        policy,
        StreamTokens(settings.stream_token_secret, settings.stream_token_ttl_s),
        SubmitRateLimit(settings.submit_rate),
        hold_unknown,
    )
    if settings.archive:
        archive = Archive(
            settings.archive,
            retention_days=settings.archive_retention_days,
            max_bytes=settings.archive_max_bytes,
        )
        state.archiver = manager.archiver = Archiver(archive, backend, settings.retention_s)
    otel_from_env()  # OpenTelemetry export, when the standard OTEL_* variables ask for it
    app = FastAPI(
        title=title, version=__version__, lifespan=_lifespan(state), redirect_slashes=False
    )
    setattr(app.state, STATES_KEY, [state])
    app.add_middleware(NarrationMiddleware)
    app.add_middleware(StreamRoute, state=state)  # streams skip per-request layers
    install_cors(app, settings.cors_origins)  # covers the streams too
    app.add_middleware(HostGuard, allowed=settings.allowed_hosts)  # outermost: before all
    install_error_handlers(app)
    add_job_routes(app, state)
    state.metrics = _metrics(app, state)
    document_app(app, registry)
    install_ui(app)
    return app


def mount_narration(
    app: FastAPI, jobs: JobRegistry | None = None, *, prefix: str = "/narration", **options: Any
) -> FastAPI:
    """Mount a narration server (`create_app(jobs, **options)`) at `prefix` inside `app`.

    The narration lifespan runs inside the host's (started after it, stopped before it, so
    jobs end while the host's own resources are still open); `sse_url` and `Location` carry
    the prefix. Returns the mounted narration app.
    """
    if not prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError(f"prefix must start with '/' and not end with one, got {prefix!r}")
    narration = create_app(jobs, **options)
    app.mount(prefix, narration)
    host_lifespan = app.router.lifespan_context
    narration_lifespan = narration.router.lifespan_context

    @asynccontextmanager
    async def lifespan(host: Any) -> AsyncIterator[Any]:
        async with host_lifespan(host) as host_state, narration_lifespan(narration):
            yield host_state

    app.router.lifespan_context = lifespan
    states = getattr(app.state, STATES_KEY, [])
    setattr(app.state, STATES_KEY, [*states, server_state(narration)])
    return narration


def server_state(app: ASGIApp) -> ServerState:
    """The narration server of an app made by `create_app` (its jobs, store and streams)."""
    states = server_states(app)
    if not states:
        raise ValueError("this app runs no narration server (create_app or mount_narration)")
    return states[0]


def server_states(app: ASGIApp) -> list[ServerState]:
    """The narration servers `app` runs (its own, or mounted with `mount_narration`)."""
    states = getattr(getattr(app, "state", None), STATES_KEY, None)
    return list(states or ())


def _auth_policy(settings: ServerSettings, auth: Authenticator | None) -> AuthPolicy:
    """How the server authenticates: `auth`, else the configured API keys, else nobody (off
    when told so, loopback only otherwise)."""
    keys = ApiKeys.from_settings(settings.api_keys, settings.api_keys_file)
    if settings.no_auth and (keys is not None or auth is not None):
        raise ValueError("no_auth (--no-auth) and API keys / auth= contradict each other")
    return AuthPolicy(auth or keys, off=settings.no_auth)


def _with_builtins(jobs: JobRegistry | None, running: Callable[[], int]) -> JobRegistry:
    """`jobs` plus the built-in `status` operation, unless `jobs` defines its own."""
    registry = JobRegistry()
    if jobs is None or "status" not in jobs:

        async def status(_: ServerStatus, job: Job) -> None:
            count = running()
            n("status", "Server is up; {} job(s) running", count, running=count)

        registry.add("status", status, model=ServerStatus)
    if jobs is not None:
        registry.include(jobs)
    return registry


def _metrics(app: FastAPI, state: ServerState) -> Any:
    """`GET /metrics` when prometheus-client (the `metrics` extra) is installed, else None."""
    try:
        from .metrics import install_metrics
    except ImportError:
        return None
    return install_metrics(app, state)


def _lifespan(state: ServerState) -> Any:
    """The server's lifespan: open the store; on exit (or SIGINT/SIGTERM) end jobs and streams,
    then close the store."""

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        state.starting()
        await state.store.open()
        if state.metrics is not None:
            state.metrics.start()
        if state.archiver is not None:
            state.archiver.start()
        try:
            with on_exit_signals(lambda: state.begin_shutdown()):
                yield
        finally:
            await state.begin_shutdown()
            if state.archiver is not None:  # the jobs just ended are archived first
                await state.archiver.close(state.settings.shutdown_grace_s)
            if state.metrics is not None:
                await state.metrics.stop()
            await state.store.close()

    return lifespan
