"""The `narration` command: run the services, submit work and watch it live.

    narration serve                      a plain narration server (jobs + SSE streams)
    narration queen --hive gpu=http://10.0.0.5:7835
    narration hive --id gpu
    narration submit infer --set hive_id=gpu --set model=tinyllama --set prompt="Hi"
    narration tail job-...               follow an existing job
    narration demo                       queen + hive + worker on this machine, end to end

`submit` is the keeper: it builds the operation, submits it to the queen, streams the job live
(one line per event: time, actor, action, message, colored by level) and exits 0 when the job
is `done`, 1 on `error` (the error is printed) and 130 when `cancelled`; Ctrl-C cancels the job
(DELETE) before exiting 130.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
import uuid
import webbrowser
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from . import __version__
from .client import Gap, JobClient, JobClientError, Terminal
from .events import Level, NarrationEvent
from .operations import (
    HiveCheck,
    HiveGet,
    HiveList,
    Infer,
    Operation,
    OperationError,
    OperationModel,
    Status,
    WorkerList,
    WorkerSpawn,
)

__all__ = ["EXIT_CANCELLED", "EXIT_DONE", "EXIT_ERROR", "app", "build_operation", "main"]

EXIT_DONE = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130

DEFAULT_QUEEN = "http://127.0.0.1:7833"
QUEEN_ENV = "NARRATION_QUEEN_URL"

app = typer.Typer(
    name="narration",
    help="Job-scoped, live, human-readable narration: run the services, submit work, watch it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_MODELS = {
    model.model_fields["operation"].default: model
    for model in (Status, HiveList, HiveGet, HiveCheck, WorkerSpawn, WorkerList, Infer)
}

_LEVEL_STYLE = {
    Level.TRACE: "dim",
    Level.DEBUG: "dim",
    Level.INFO: "",
    Level.WARN: "yellow",
    Level.ERROR: "bold red",
    Level.FATAL: "bold white on red",
}
_ACTOR_STYLE = {"queen": "magenta", "hive": "cyan", "worker": "green"}


# --------------------------------------------------------------------------- operations


def build_operation(name: str, assignments: Sequence[str]) -> OperationModel:
    """The operation `name` with `key=value` fields (values typed by the operation's model).

    A field declared as text keeps the value as written; any other field reads it as JSON
    (`max_tokens=64`, `stream=false`, `top_p=null`). Raises `OperationError` or `ValueError`.
    """
    model = _MODELS.get(name)
    if model is None:
        return Operation.parse({"operation": name})  # raises, listing the valid operations
    fields: dict[str, Any] = {"operation": name}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {assignment!r}")
        spec = model.model_fields.get(key)
        if spec is not None and spec.annotation is str:
            fields[key] = raw
        else:
            try:
                fields[key] = json.loads(raw)
            except ValueError:
                fields[key] = raw
    return Operation.parse(fields)


# --------------------------------------------------------------------------- rendering


@dataclass
class Printer:
    """Prints a job's stream: one line per event; `ids` adds each event's ids; with `keep`,
    the events are also collected in `events`."""

    console: Console
    ids: bool = False
    keep: bool = False
    events: list[NarrationEvent] = field(default_factory=list)

    def event(self, event: NarrationEvent) -> None:
        if self.keep:
            self.events.append(event)
        self.console.print(render_event(event, self.ids))

    def gap(self, gap: Gap) -> None:
        self.console.print(
            Text(f"… {gap.missed} event(s) dropped by the server (next id {gap.next_id})", "yellow")
        )

    def terminal(self, terminal: Terminal) -> None:
        if terminal.state == "completed":
            self.console.print(Text(f"✔ done ({terminal.job_id})", "bold green"))
        elif terminal.state == "cancelled":
            reason = f": {terminal.error}" if terminal.error else ""
            self.console.print(Text(f"■ cancelled ({terminal.job_id}){reason}", "bold yellow"))
        else:
            self.console.print(
                Text(f"✖ error ({terminal.job_id}): {terminal.error or 'failed'}", "bold red")
            )

    def note(self, text: str, style: str = "dim") -> None:
        self.console.print(Text(text, style))


def render_event(event: NarrationEvent, ids: bool = False) -> Text:
    """`HH:MM:SS.mmm actor    action         message`, styled by actor and level."""
    clock = time.strftime("%H:%M:%S", time.localtime(event.ts))
    clock += f".{int(event.ts * 1000) % 1000:03d}"
    line = Text()
    line.append(clock, "dim")
    line.append(" ")
    line.append(f"{event.actor:<7}", _ACTOR_STYLE.get(event.actor, "blue"))
    line.append(" ")
    line.append(f"{event.action:<13}", "bold")
    line.append(" ")
    text = event.human
    if event.level not in (Level.INFO, Level.DEBUG, Level.TRACE):
        text = f"[{event.level.value}] {text}"
    line.append(text, _LEVEL_STYLE.get(event.level, ""))
    if ids:
        parts = [
            f"corr={event.correlation_id}",
            f"trace={(event.trace_id or '-')[:8]}…",
            f"span={(event.span_id or '-')[:8]}…",
        ]
        if event.origin:
            parts.append(f"origin={event.origin}")
        line.append("  " + " ".join(parts), "dim")
    return line


# --------------------------------------------------------------------------- the keeper


async def keep(
    queen: str | Sequence[str],
    operation: OperationModel,
    printer: Printer,
    *,
    correlation_id: str | None = None,
    open_viewer: bool = False,
) -> int:
    """Submit `operation` to the queen and follow its job to the end; the exit code.

    With `open_viewer`, the job's page in the web viewer opens in a browser too.
    """
    async with JobClient(queen, correlation_id=correlation_id) as client:
        try:
            submitted = await client.submit(operation)
        except JobClientError as exc:
            printer.note(f"✖ could not submit {operation.name}: {exc}", "bold red")
            return EXIT_ERROR
        printer.note(
            f"▶ {operation.name}: job {submitted.job_id}, correlation id {submitted.correlation_id}"
        )
        if open_viewer:
            first = queen if isinstance(queen, str) else queen[0]
            url = job_page_url(first, submitted.job_id)
            printer.note(f"  viewer: {url}")
            webbrowser.open(url)
        return await follow(client, submitted.job_id, printer, cancel_on_interrupt=True)


async def follow(
    client: JobClient,
    job_id: str,
    printer: Printer,
    *,
    cancel_on_interrupt: bool,
    after: int | None = None,
) -> int:
    """Print the job's stream to its terminal; the exit code (0 done, 1 error, 130 cancelled).

    On Ctrl-C (SIGINT) the job is cancelled first when `cancel_on_interrupt` (its remaining
    events and its `cancelled` terminal are shown, bounded to a few seconds; a second Ctrl-C
    stops waiting), then 130 is returned.
    """
    interrupted = asyncio.Event()
    reader = asyncio.create_task(_print_stream(client, job_id, printer, after))
    with _on_sigint(interrupted.set):
        if not await _interrupted_first(reader, interrupted, None):
            return reader.result()
        interrupted.clear()
        if cancel_on_interrupt:
            printer.note(f"Ctrl-C: cancelling {job_id} …", "yellow")
            try:
                await asyncio.wait_for(client.cancel(job_id), 5.0)
            except (JobClientError, TimeoutError) as exc:
                printer.note(f"could not cancel {job_id}: {exc}", "yellow")
            else:
                await _interrupted_first(reader, interrupted, 5.0)
        else:
            printer.note("Ctrl-C: stopped following (the job goes on)", "yellow")
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    return EXIT_CANCELLED


async def _interrupted_first(
    reader: asyncio.Task[int], interrupted: asyncio.Event, timeout: float | None
) -> bool:
    """Wait for the reader to end or an interrupt; True unless the reader ended."""
    waiter = asyncio.create_task(interrupted.wait())
    try:
        await asyncio.wait((reader, waiter), timeout=timeout, return_when="FIRST_COMPLETED")
    finally:
        waiter.cancel()
    return not reader.done()


async def _print_stream(
    client: JobClient, job_id: str, printer: Printer, after: int | None = None
) -> int:
    try:
        async for item in client.stream(job_id, after=after):
            if isinstance(item, NarrationEvent):
                printer.event(item)
            elif isinstance(item, Gap):
                printer.gap(item)
            else:
                printer.terminal(item)
                return _exit_code(item)
    except JobClientError as exc:
        printer.note(f"✖ lost the stream of {job_id}: {exc}", "bold red")
    return EXIT_ERROR


def _exit_code(terminal: Terminal) -> int:
    if terminal.state == "completed":
        return EXIT_DONE
    if terminal.state == "cancelled":
        return EXIT_CANCELLED
    return EXIT_ERROR


@contextlib.contextmanager
def _on_sigint(callback: Callable[[], None]) -> Iterator[None]:
    """Call `callback` on SIGINT inside the block (instead of raising KeyboardInterrupt)."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, callback)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def _run(main: Coroutine[Any, Any, int]) -> int:
    """Run `main`; a KeyboardInterrupt that still gets through means 130."""
    try:
        return asyncio.run(main)
    except KeyboardInterrupt:
        return EXIT_CANCELLED


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def viewer_url(base_url: str) -> str:
    """The web viewer of the server at `base_url`."""
    return f"{base_url.rstrip('/')}/ui/"


def job_page_url(base_url: str, job_id: str) -> str:
    """The viewer's page of one job."""
    return f"{viewer_url(base_url)}#/jobs/{job_id}"


# --------------------------------------------------------------------------- keeper commands


QueenOption = Annotated[str, typer.Option("--queen", envvar=QUEEN_ENV, help="the queen's URL")]
IdsOption = Annotated[bool, typer.Option("--ids", help="show each event's ids and origin")]


@app.command()
def submit(
    operation: Annotated[
        str, typer.Argument(help=f"one of: {', '.join(Operation.names())}", show_default=False)
    ],
    assignments: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", metavar="KEY=VALUE", help="an operation field (repeatable)"),
    ] = None,
    queen: QueenOption = DEFAULT_QUEEN,
    correlation_id: Annotated[
        str | None, typer.Option("--correlation-id", help="the correlation id to send")
    ] = None,
    ids: IdsOption = False,
    open_viewer: Annotated[
        bool, typer.Option("--open", help="also open the job's page in the web viewer")
    ] = False,
) -> None:
    """Submit an operation to the queen and stream its job live (the keeper).

    Exit code: 0 done, 1 error, 130 cancelled (Ctrl-C cancels the job first).
    """
    console = _console()
    try:
        op = build_operation(operation, assignments or [])
    except (OperationError, ValueError) as exc:
        console.print(Text(f"✖ {exc}", "bold red"))
        raise typer.Exit(EXIT_USAGE) from None
    printer = Printer(console, ids)
    code = _run(keep(queen, op, printer, correlation_id=correlation_id, open_viewer=open_viewer))
    raise typer.Exit(code)


@app.command()
def tail(
    job_id: Annotated[str, typer.Argument(help="the job to follow", show_default=False)],
    queen: QueenOption = DEFAULT_QUEEN,
    after: Annotated[
        int | None, typer.Option("--after", help="only events with ids above this")
    ] = None,
    ids: IdsOption = False,
) -> None:
    """Follow a job's stream to its end (exit codes as `submit`; Ctrl-C only stops following)."""
    printer = Printer(_console(), ids)

    async def run() -> int:
        async with JobClient(queen) as client:
            return await follow(client, job_id, printer, cancel_on_interrupt=False, after=after)

    raise typer.Exit(_run(run()))


# --------------------------------------------------------------------------- server commands

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


def _serve(app_: Any, host: str, port: int, label: str, quiet: bool) -> None:
    from .config import configure
    from .server import serve as run_server

    if not quiet:
        configure(console=True)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    base = f"http://{shown}:{port}"
    print(f"narration {label} {__version__} on {base}", file=sys.stderr)
    print(f"  viewer: {viewer_url(base)}", file=sys.stderr, flush=True)
    run_server(app_, host, port)


def _origins(given: list[str] | None) -> tuple[str, ...] | None:
    """`--cors-origin` values as a settings value (None: not given, keep env or default)."""
    if not given:
        return None
    from .server.cors import checked_origins

    try:
        return tuple(checked_origins(given))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--cors-origin") from None


def _given(**options: Any) -> dict[str, Any]:
    """The options that were given (None means: keep the default)."""
    return {key: value for key, value in options.items() if value is not None}


@app.command()
def serve(
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
    quiet: QuietOption = False,
) -> None:
    """Run a narration server (jobs and their SSE streams; env NARRATION_* also apply)."""
    from .server import create_app

    options = _given(
        store=store,
        retention_s=retention,
        job_timeout_s=job_timeout,
        keepalive_s=keepalive,
        max_running=max_running,
        cors_origins=_origins(cors_origin),
    )
    _serve(create_app(**options), host, port, "server", quiet)


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
    quiet: QuietOption = False,
) -> None:
    """Run the queen: answers hive_list/hive_get/status, forwards the rest to its hives."""
    from .services.queen import create_queen_app

    hives: dict[str, str] = {}
    for spec in hive or ["localhost=http://127.0.0.1:7835"]:
        hive_id, sep, url = spec.partition("=")
        if not sep or not hive_id.strip() or not url.strip().startswith(("http://", "https://")):
            raise typer.BadParameter(
                f"expected ID=http(s)://host:port, got {spec!r}", param_hint="--hive"
            )
        hives[hive_id.strip()] = url.strip()
    options = _given(store=store, retention_s=retention, cors_origins=_origins(cors_origin))
    _serve(create_queen_app(hives, **options), host, port, "queen", quiet)


@app.command()
def hive(
    host: HostOption = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port to listen on")] = 7835,
    hive_id: Annotated[str, typer.Option("--id", help="this hive's id")] = "localhost",
    store: StoreOption = None,
    retention: RetentionOption = None,
    cors_origin: CorsOption = None,
    quiet: QuietOption = False,
) -> None:
    """Run a hive: runs the stand-in worker as child processes and narrates them.

    Worker test knobs (environment, passed on to every worker): NARRATION_WORKER_FAIL=CODE
    makes workers exit CODE before generating; NARRATION_WORKER_TOKEN_DELAY=SECONDS slows
    token generation.
    """
    from .services.hive import create_hive_app

    options = _given(store=store, retention_s=retention, cors_origins=_origins(cors_origin))
    _serve(create_hive_app(hive_id, **options), host, port, f"hive {hive_id!r}", quiet)


# --------------------------------------------------------------------------- demo

DEMO_MODEL = "tinyllama-1.1b"
DEMO_PROMPT = "Why is the sky blue?"


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
    raise typer.Exit(run_demo(_console(), tokens=tokens, ids=ids))


def run_demo(console: Console, *, tokens: int = 12, ids: bool = False) -> int:
    """The demo; its exit code (0 when every job was done and every event carried the ids)."""
    from .services.launch import ServiceProcess, free_port

    hive_service = ServiceProcess("hive", ["hive", "--id", "localhost"])
    queen_service = ServiceProcess(
        "queen",
        ["queen", "--hive", f"localhost={hive_service.url}"],
        port=free_port(exclude={hive_service.port}),
    )
    services = (hive_service, queen_service)
    console.print(Text("narration demo: keeper -> queen -> hive -> worker", "bold"))
    code = EXIT_ERROR
    try:
        for service in services:
            service.start()
        for service in services:
            service.wait_healthy(20.0)
            console.print(
                Text(f"  started {service.name:<6} {service.url}  (pid {service.pid})", "dim")
            )
        correlation_id = f"demo-{uuid.uuid4().hex[:12]}"
        console.print(Text(f"  correlation id for every job: {correlation_id}", "dim"))
        code = _run(_demo_jobs(console, queen_service.url, correlation_id, tokens, ids))
    except KeyboardInterrupt:
        code = EXIT_CANCELLED
    except (OSError, RuntimeError, TimeoutError) as exc:
        console.print(Text(f"✖ {exc}", "bold red"))
    finally:
        console.print(Text("Shutting down the queen and the hive …", "dim"))
        for service in reversed(services):
            service.stop()
            service.remove_log()
    console.print(Text("demo finished" if code == 0 else f"demo failed (exit {code})", "bold"))
    return code


async def _demo_jobs(
    console: Console, queen_url: str, correlation_id: str, tokens: int, ids: bool
) -> int:
    operations: list[OperationModel] = [
        Operation.hive_list(),
        Operation.worker_spawn("localhost", DEMO_MODEL, "cpu"),
        Operation.infer("localhost", DEMO_MODEL, DEMO_PROMPT, max_tokens=tokens),
    ]
    seen: list[NarrationEvent] = []
    for operation in operations:
        console.print()
        console.rule(Text(f"keeper -> queen: {operation.name}", "bold"), align="left")
        printer = Printer(console, ids, keep=True)
        code = await keep(queen_url, operation, printer, correlation_id=correlation_id)
        if code != EXIT_DONE:
            return code
        console.print(Text("  " + _ids_summary(printer.events), "dim"))
        seen.extend(printer.events)
    console.print()
    correlations = {event.correlation_id for event in seen}
    if correlations != {correlation_id}:
        console.print(Text(f"✖ events carried other correlation ids: {correlations}", "bold red"))
        return EXIT_ERROR
    actors = list(dict.fromkeys(event.actor for event in seen))
    console.print(
        Text(
            f"✔ {len(operations)} jobs, {len(seen)} events from {', '.join(actors)}; every one "
            f"carried correlation id {correlation_id}",
            "bold green",
        )
    )
    return EXIT_DONE


def _ids_summary(events: Sequence[NarrationEvent]) -> str:
    """`12 events · actors queen, hive · 1 trace 4bf92f35… · job job-…` for one job."""
    actors = list(dict.fromkeys(event.actor for event in events))
    traces = list(dict.fromkeys(event.trace_id for event in events if event.trace_id))
    jobs = list(dict.fromkeys(event.job_id for event in events if event.job_id))
    trace = f"trace {traces[0][:8]}…" if len(traces) == 1 else f"{len(traces)} traces"
    return f"└ {len(events)} events · actors {', '.join(actors)} · {trace} · job {', '.join(jobs)}"


@app.command()
def version() -> None:
    """Print the version."""
    print(__version__)


def main(argv: Sequence[str] | None = None) -> None:
    """The `narration` console script."""
    app(args=list(argv) if argv is not None else None, prog_name="narration")


if __name__ == "__main__":
    main()
