"""What every `narration` command shares: the typer app, common options, and error reporting."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from ..client import JobClientError
from .keeper import EXIT_ERROR, EXIT_USAGE, TOKEN_ENV, api_token

__all__ = [
    "DEFAULT_URL",
    "TOKEN_ENV",
    "IdsOption",
    "UrlOption",
    "api_token",
    "app",
    "checked_url",
    "console",
    "fail",
    "job_page_url",
    "report",
    "viewer_url",
]

DEFAULT_URL = "http://127.0.0.1:7833"

app = typer.Typer(
    name="narration",
    help="Job-scoped, live, human-readable narration: run a server, submit work, watch it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

UrlOption = Annotated[
    str,
    typer.Option(
        "--url",
        "--queen",
        envvar=["NARRATION_URL", "NARRATION_QUEEN_URL"],
        help="the narration server's URL (with its path prefix, if mounted under one)",
    ),
]
IdsOption = Annotated[bool, typer.Option("--ids", help="show each event's ids and origin")]


def console() -> Console:
    """The console commands print to (no syntax highlighting; long lines wrap softly)."""
    return Console(highlight=False, soft_wrap=True)


def viewer_url(base_url: str) -> str:
    """The web viewer of the server at `base_url`."""
    return f"{base_url.rstrip('/')}/ui/"


def job_page_url(base_url: str, job_id: str) -> str:
    """The viewer's page of one job."""
    return f"{viewer_url(base_url)}#/jobs/{job_id}"


def checked_url(url: str) -> str:
    """`url` if it is an http(s) URL; exit 2 at once with a hint otherwise."""
    text = url.strip()
    if text.startswith(("http://", "https://")):
        return text
    fail(f"{url!r} is not an http(s) URL; did you mean http://{text}?", EXIT_USAGE)


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print `✖ message` and exit with `code`."""
    console().print(Text(f"✖ {message}", "bold red"))
    raise typer.Exit(code)


def report(exc: JobClientError, job_id: str | None = None) -> NoReturn:
    """Exit 1 with a readable line for a failed request (no such job, no server, ...)."""
    if exc.code == "unknown_job":
        fail(f"no such job: {job_id or ''} ({exc.message})".replace(" ()", ""))
    if exc.code == "connection_failed":
        fail(f"{exc.message} (is a narration server running there?)")
    if exc.status_code == 401:
        fail(f"{exc} (set {TOKEN_ENV} to an API key of that server)")
    fail(str(exc))
