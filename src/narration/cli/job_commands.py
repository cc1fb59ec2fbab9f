"""The client commands: `submit` (the keeper), `tail`, `jobs`, `status`, `cancel`, `logs`,
`operations`."""

from __future__ import annotations

import json
import sys
import time
import webbrowser
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer
from rich.table import Table

from ..client import JobClient, JobClientError, Submitted
from .base import (
    DEFAULT_URL,
    IdsOption,
    UrlOption,
    api_token,
    app,
    checked_url,
    console,
    fail,
    job_page_url,
    report,
)
from .keeper import EXIT_USAGE, follow, keep, run
from .operations import build_operation, read_json_fields
from .render import Printer

__all__ = ["cancel", "jobs", "logs", "operations", "status", "submit", "tail"]

JobArgument = Annotated[str, typer.Argument(help="the job id (job-…)", show_default=False)]


async def _schemas(url: str) -> dict[str, Any] | None:
    """The server's operations (`GET /v1/operations`), or None if it cannot say."""
    async with JobClient(url, token=api_token()) as client:
        try:
            return await client.operations()
        except JobClientError:
            return None


@app.command()
def submit(
    operation: Annotated[str, typer.Argument(help="the operation's name", show_default=False)],
    assignments: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", metavar="KEY=VALUE", help="an operation field (repeatable)"),
    ] = None,
    json_source: Annotated[
        str | None,
        typer.Option("--json", metavar="FILE|-", help="fields as a JSON object (- reads stdin)"),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    correlation_id: Annotated[
        str | None, typer.Option("--correlation-id", help="the correlation id to send")
    ] = None,
    ids: IdsOption = False,
    open_viewer: Annotated[
        bool, typer.Option("--open", help="also open the job's page in the web viewer")
    ] = False,
) -> None:
    """Submit an operation and stream its job live (the keeper).

    Values given with --set are typed by the server's schema for the operation: text fields
    keep them as written, other fields read them as JSON. Exit code: 0 done, 1 error, 130
    cancelled (Ctrl-C cancels the job first), 2 usage error.
    """
    url = checked_url(url)
    try:
        base = read_json_fields(json_source) if json_source is not None else None
        body = build_operation(operation, assignments or [], run_sync(_schemas(url)), base)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    printer = Printer(console(), ids)

    def show_page(submitted: Submitted) -> None:
        page = job_page_url(url, submitted.job_id)
        printer.note(f"  viewer: {page}")
        webbrowser.open(page)

    opened = show_page if open_viewer else None
    code = run(keep(url, body, printer, correlation_id=correlation_id, on_submitted=opened))
    raise typer.Exit(code)


@app.command()
def tail(
    job_id: JobArgument,
    url: UrlOption = DEFAULT_URL,
    after: Annotated[
        int | None, typer.Option("--after", help="only events with ids above this")
    ] = None,
    ids: IdsOption = False,
) -> None:
    """Follow a job's stream to its end (exit codes as `submit`; Ctrl-C only stops following)."""
    url = checked_url(url)
    printer = Printer(console(), ids)

    async def main() -> int:
        async with JobClient(url, token=api_token()) as client:
            return await follow(client, job_id, printer, cancel_on_interrupt=False, after=after)

    raise typer.Exit(run(main()))


@app.command()
def jobs(
    url: UrlOption = DEFAULT_URL,
    state: Annotated[str | None, typer.Option("--state", help="only jobs in this state")] = None,
    limit: Annotated[int, typer.Option("--limit", help="at most this many (1-1000)")] = 50,
    operation_name: Annotated[
        str | None, typer.Option("--operation", help="only jobs of this operation")
    ] = None,
    correlation_id: Annotated[
        str | None, typer.Option("--correlation-id", help="only jobs of this correlation id")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="only jobs created since (Unix seconds or ISO 8601)"),
    ] = None,
) -> None:
    """List the server's jobs (live and archived), newest first."""
    url = checked_url(url)

    async def main() -> list[dict[str, Any]]:
        async with JobClient(url, token=api_token()) as client:
            return await client.list_jobs(
                state=state,
                limit=limit,
                operation=operation_name,
                correlation_id=correlation_id,
                since=since,
            )

    try:
        listing = run_sync(main())
    except JobClientError as exc:
        report(exc)
    table = Table("job", "operation", "state", "age", "events", "correlation id", box=None)
    now = time.time()
    for job in listing:
        operation = job.get("operation") or {}
        table.add_row(
            str(job.get("job_id")),
            str(operation.get("operation", "?")),
            str(job.get("state")),
            _age(now - float(job.get("created_at") or now)),
            str(job.get("events", "")),
            str(job.get("correlation_id", "")),
        )
    out = console()
    out.print(table if listing else "no jobs")


@app.command()
def status(job_id: JobArgument, url: UrlOption = DEFAULT_URL) -> None:
    """Print a job's state, times, error and event count (JSON)."""
    url = checked_url(url)

    async def main() -> dict[str, Any]:
        async with JobClient(url, token=api_token()) as client:
            return await client.status(job_id)

    try:
        info = run_sync(main())
    except JobClientError as exc:
        report(exc, job_id)
    print(json.dumps(info, indent=2))


@app.command()
def cancel(job_id: JobArgument, url: UrlOption = DEFAULT_URL) -> None:
    """Cancel a running job (exit 1 if it had already finished)."""
    url = checked_url(url)

    async def main() -> dict[str, Any]:
        async with JobClient(url, token=api_token()) as client:
            return await client.cancel(job_id)

    try:
        answer = run_sync(main())
    except JobClientError as exc:
        if exc.code == "job_finished":
            fail(f"{job_id} had already finished: {exc.message}")
        report(exc, job_id)
    console().print(f"■ {answer.get('job_id', job_id)}: {answer.get('state')}")


@app.command()
def logs(
    job_id: JobArgument,
    url: UrlOption = DEFAULT_URL,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="save to this file (default: print on stdout)"),
    ] = None,
    level: Annotated[
        str | None, typer.Option("--level", help="only events at this level or above")
    ] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="only these actors (a,b)")] = None,
    action: Annotated[str | None, typer.Option("--action", help="only these actions (a,b)")] = None,
    grep: Annotated[
        str | None, typer.Option("--grep", help="only events whose text contains this")
    ] = None,
) -> None:
    """Download a job's events (live or archived) as NDJSON: one JSON event per line, then
    its terminal line (`{"id": …, "event": "done", …}`)."""
    url = checked_url(url)

    async def main(out: BinaryIO) -> int:
        size = 0
        async with JobClient(url, token=api_token()) as client:
            chunks = client.download(job_id, level=level, actor=actor, action=action, q=grep)
            async for chunk in chunks:
                out.write(chunk)
                size += len(chunk)
        out.flush()
        return size

    try:
        if output is None:
            run_sync(main(sys.stdout.buffer))
            return
        partial = output.with_name(f".{output.name}.part")
        with open(partial, "wb") as out:
            size = run_sync(main(out))
        partial.replace(output)
    except JobClientError as exc:
        if output is not None:
            partial.unlink(missing_ok=True)
        report(exc, job_id)
    except OSError as exc:
        fail(f"cannot write {output}: {exc}")
    console().print(f"saved {job_id} to {output} ({size:,} bytes)")


@app.command()
def operations(url: UrlOption = DEFAULT_URL) -> None:
    """List the operations the server runs, with their fields."""
    url = checked_url(url)

    async def main() -> dict[str, Any]:
        async with JobClient(url, token=api_token()) as client:
            return await client.operations()

    try:
        listing = run_sync(main())
    except JobClientError as exc:
        report(exc)
    out = console()
    for name, entry in listing.items():
        schema = entry.get("schema", {}) if isinstance(entry, dict) else {}
        required = set(schema.get("required", ()))
        fields = [
            f"{key}{'' if key in required else '?'}"
            for key in schema.get("properties", {})
            if key != "operation"
        ]
        out.print(f"[bold]{name}[/bold]  {entry.get('summary', '')}")
        if fields:
            out.print("  fields: " + ", ".join(fields), style="dim")


def run_sync(main: Any) -> Any:
    """Run a coroutine to its result (commands are sync functions)."""
    import asyncio

    return asyncio.run(main)


def _age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"
