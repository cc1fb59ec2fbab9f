"""The server commands: `serve` (your operations or app), `queen`, `hive`, `demo`, `version`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .. import __version__
from .base import app, console, fail
from .keeper import EXIT_USAGE

__all__ = ["demo", "hive", "queen", "serve", "version"]

HostOption = Annotated[str, typer.Option("--host", help="interface to listen on")]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="do not print the narration on stderr")
]
StoreOption = Annotated[
    str | None,
    typer.Option("--store", help="memory:// (default) or redis://host:port/db", show_default=False),
]
RetentionOption = Annotated[
    float | None,
    typer.Option("--retention", help="seconds a finished job stays readable (default 600)"),
]
IdsOption = Annotated[bool, typer.Option("--ids", help="show each event's ids and origin")]
KeysFileOption = Annotated[
    str | None,
    typer.Option(
        "--api-keys-file",
        metavar="FILE",
        help="API keys, one name:scopes:sha256[:tenant] a line (`narration keys new`); "
        "env NARRATION_API_KEYS / NARRATION_API_KEYS_FILE",
        show_default=False,
    ),
]
NoAuthOption = Annotated[
    bool | None,
    typer.Option(
        "--no-auth",
        help="serve without authentication, even beyond loopback (anyone can read and cancel "
        "every job)",
        show_default=False,
    ),
]
AllowedHostOption = Annotated[
    list[str] | None,
    typer.Option(
        "--allowed-host",
        metavar="HOST",
        help="a Host name requests may use, e.g. jobs.example.com or *.example.com (repeatable; "
        "default: loopback names on loopback binds; env NARRATION_ALLOWED_HOSTS)",
        show_default=False,
    ),
]
CorsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--cors-origin",
        metavar="ORIGIN",
        help="an origin whose pages may use the API and streams, e.g. https://app.example "
        "(repeatable; default none; env NARRATION_CORS_ORIGINS, comma-separated)",
        show_default=False,
    ),
]


def _run_server(
    app_: Any, host: str, port: int, label: str, quiet: bool, listen_fd: int | None = None
) -> None:
    """Print what runs, then serve until Ctrl-C/SIGTERM (jobs get the grace period); on the
    inherited listening socket `listen_fd` when a `--workers` supervisor started this one."""
    import socket

    from ..config import configure, configure_from_env
    from ..server import serve as run_server

    configure_from_env()
    if not quiet:
        configure(console=True)
    console().print(f"narration {label} {__version__}", style="dim", highlight=False)
    sock = socket.socket(fileno=listen_fd) if listen_fd is not None else None
    try:
        run_server(app_, host, port, sock=sock)
    except ValueError as exc:  # e.g. a bind beyond loopback without authentication
        fail(str(exc), EXIT_USAGE)


def _workers(given: int | None) -> int:
    """`--workers`, else NARRATION_WORKERS, else 1."""
    from .. import environment

    if given is not None:
        return given
    raw = environment.get("NARRATION_WORKERS")
    try:
        return int(raw) if raw else 1
    except ValueError:
        fail(f"NARRATION_WORKERS={raw!r} is not a number of processes", EXIT_USAGE)


def _origins(given: list[str] | None) -> tuple[str, ...] | None:
    """`--cors-origin` values as a settings value (None: not given, keep env or default)."""
    if not given:
        return None
    from ..server.cors import checked_origins

    try:
        return tuple(checked_origins(given))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--cors-origin") from None


def _given(**options: Any) -> dict[str, Any]:
    """The options that were given (None means: keep the default)."""
    return {key: value for key, value in options.items() if value is not None}


def _access(keys_file: str | None, no_auth: bool | None, hosts: list[str] | None) -> dict[str, Any]:
    """The auth options that were given, as settings."""
    return _given(
        api_keys_file=keys_file,
        no_auth=True if no_auth else None,
        allowed_hosts=tuple(hosts) if hosts else None,
    )


def _build(factory: Any, *args: Any, **options: Any) -> Any:
    """`factory(*args, **options)`, exiting 2 with the message of a bad setting."""
    try:
        return factory(*args, **options)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)


def _user_app(app_spec: str | None, jobs_spec: str | None, options: dict[str, Any]) -> Any:
    """The app `serve` runs: `--app` as is, or `create_app` of `--jobs` (or of no operations)."""
    from ..jobs import JobRegistry, RegistryError
    from ..server import create_app
    from ..server.app import server_states
    from ..server.loading import load_object

    if app_spec and jobs_spec:
        fail("give --app or --jobs, not both", EXIT_USAGE)
    try:
        if app_spec:
            target = load_object(app_spec)
            if not server_states(target):
                fail(
                    f"{app_spec} runs no narration server: build it with create_app(...) or "
                    "mount_narration(app, ...)",
                    EXIT_USAGE,
                )
            if options:
                fail("--app serves the app as built; set its options in create_app()", EXIT_USAGE)
            return target
        jobs = load_object(jobs_spec) if jobs_spec else None
        if jobs is not None and not isinstance(jobs, JobRegistry):
            fail(f"{jobs_spec} is a {type(jobs).__name__}, not a JobRegistry", EXIT_USAGE)
        return create_app(jobs, **options)
    except (ValueError, RegistryError) as exc:
        fail(str(exc), EXIT_USAGE)


@app.command()
def serve(
    app_spec: Annotated[
        str | None,
        typer.Option("--app", metavar="MODULE:ATTR", help="your app (create_app/mount_narration)"),
    ] = None,
    jobs_spec: Annotated[
        str | None,
        typer.Option("--jobs", metavar="MODULE:ATTR", help="your JobRegistry to serve"),
    ] = None,
    host: HostOption = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port to listen on")] = 7833,
    store: StoreOption = None,
    retention: RetentionOption = None,
    job_timeout: Annotated[
        float | None, typer.Option("--job-timeout", help="seconds before a job fails")
    ] = None,
    keepalive: Annotated[
        float | None, typer.Option("--keepalive", help="seconds of silence before a keepalive")
    ] = None,
    max_running: Annotated[
        int | None, typer.Option("--max-running", help="jobs running at once before 503")
    ] = None,
    cors_origin: CorsOption = None,
    api_keys_file: KeysFileOption = None,
    no_auth: NoAuthOption = None,
    allowed_host: AllowedHostOption = None,
    archive: Annotated[
        str | None,
        typer.Option(
            "--archive",
            metavar="DIR|URL",
            help="archive finished jobs in this directory or fsspec URL (s3://…)",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="server processes sharing the port (default 1; env NARRATION_WORKERS); more "
            "than 1 needs the Redis store",
            show_default=False,
        ),
    ] = None,
    listen_fd: Annotated[int | None, typer.Option("--listen-fd", hidden=True)] = None,
    quiet: QuietOption = False,
) -> None:
    """Run a narration server for your operations (--jobs) or your app (--app).

    Without either, only the built-in `status` operation runs. Env NARRATION_* also apply.
    With --workers N, N processes serve the one port (each a full server; the Redis store
    lets any of them answer for any job).
    """
    options = _given(
        store=store,
        retention_s=retention,
        job_timeout_s=job_timeout,
        keepalive_s=keepalive,
        max_running=max_running,
        cors_origins=_origins(cors_origin),
        **_access(api_keys_file, no_auth, allowed_host),
        archive=archive,
    )
    user_app = _user_app(app_spec, jobs_spec, options)
    count = _workers(workers)
    if count > 1:
        import sys

        from ..server.serve import check_bind
        from ..server.workers import check_workers, run_workers

        try:
            check_workers(user_app, count)
            check_bind(user_app, host)  # refused beyond loopback without keys, before forking
        except ValueError as exc:
            fail(str(exc), EXIT_USAGE)
        raise typer.Exit(run_workers(sys.argv[1:], host, port, count))
    _run_server(user_app, host, port, "server", quiet, listen_fd)


@app.command()
def queen(
    host: HostOption = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port to listen on")] = 7833,
    hive: Annotated[
        list[str] | None,
        typer.Option(
            "--hive",
            metavar="ID=URL",
            help="a hive as ID=URL (repeatable; default localhost=http://127.0.0.1:7835)",
        ),
    ] = None,
    store: StoreOption = None,
    retention: RetentionOption = None,
    cors_origin: CorsOption = None,
    api_keys_file: KeysFileOption = None,
    no_auth: NoAuthOption = None,
    allowed_host: AllowedHostOption = None,
    quiet: QuietOption = False,
) -> None:
    """Run the queen: answers hive_list/hive_get/status, forwards the rest to its hives.

    It sends its hives the API key in NARRATION_HIVE_TOKEN, when set.
    """
    from ..services.queen import create_queen_app

    hives: dict[str, str] = {}
    for spec in hive or ["localhost=http://127.0.0.1:7835"]:
        hive_id, sep, url = spec.partition("=")
        if not sep or not hive_id.strip() or not url.strip().startswith(("http://", "https://")):
            raise typer.BadParameter(
                f"expected ID=http(s)://host:port, got {spec!r}", param_hint="--hive"
            )
        hives[hive_id.strip()] = url.strip()
    options = _given(store=store, retention_s=retention, cors_origins=_origins(cors_origin))
    options.update(_access(api_keys_file, no_auth, allowed_host))
    _run_server(_build(create_queen_app, hives, **options), host, port, "queen", quiet)


@app.command()
def hive(
    host: HostOption = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port to listen on")] = 7835,
    hive_id: Annotated[str, typer.Option("--id", help="this hive's id")] = "localhost",
    store: StoreOption = None,
    retention: RetentionOption = None,
    cors_origin: CorsOption = None,
    api_keys_file: KeysFileOption = None,
    no_auth: NoAuthOption = None,
    allowed_host: AllowedHostOption = None,
    quiet: QuietOption = False,
) -> None:
    """Run a hive: runs the stand-in worker as child processes and narrates them.

    Worker test knobs (environment, passed on to every worker): NARRATION_WORKER_FAIL=CODE
    makes workers exit CODE before generating; NARRATION_WORKER_TOKEN_DELAY=SECONDS slows
    token generation.
    """
    from ..services.hive import create_hive_app

    options = _given(store=store, retention_s=retention, cors_origins=_origins(cors_origin))
    options.update(_access(api_keys_file, no_auth, allowed_host))
    app_ = _build(create_hive_app, hive_id, **options)
    _run_server(app_, host, port, f"hive {hive_id!r}", quiet)


@app.command()
def demo(
    tokens: Annotated[
        int, typer.Option("--tokens", min=1, help="most tokens the worker generates")
    ] = 12,
    ids: IdsOption = False,
) -> None:
    """Run queen, hive and worker on this machine and watch one correlation id cross them all.

    Starts a queen and a hive as child processes on free loopback ports, runs hive_list,
    worker_spawn and infer through the keeper under one correlation id, shows the live narration
    of every service, then shuts everything down. Exit code 0 when all went well.
    """
    from .demo import run_demo

    raise typer.Exit(run_demo(console(), tokens=tokens, ids=ids))


@app.command()
def version() -> None:
    """Print the version."""
    print(__version__)
