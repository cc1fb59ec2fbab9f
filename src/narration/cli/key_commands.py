"""`narration keys new`: make an API key and the line that configures a server with it."""

from __future__ import annotations

from typing import Annotated

import typer

from .base import app, fail
from .keeper import EXIT_USAGE

__all__ = ["keys_app", "new"]

keys_app = typer.Typer(
    name="keys", help="API keys for narration servers.", no_args_is_help=True, add_completion=False
)
app.add_typer(keys_app)


@keys_app.command()
def new(
    name: Annotated[str, typer.Option("--name", help="who holds the key (its principal)")],
    scopes: Annotated[
        str,
        typer.Option("--scopes", help="comma-separated: submit, read, cancel, admin"),
    ] = "submit,read,cancel",
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="whose jobs it sees (default: the name)", show_default=False),
    ] = None,
) -> None:
    """Print a new random API key (give it to the client) and its spec line for the server
    (NARRATION_API_KEYS, or a line of NARRATION_API_KEYS_FILE). The server keeps only the hash."""
    from ..server.auth import ApiKeys, hash_key, new_key

    key = new_key()
    parts = [name, "+".join(s.strip() for s in scopes.split(",") if s.strip()), hash_key(key)]
    if tenant is not None:
        parts.append(tenant)
    spec = ":".join(parts)
    try:
        ApiKeys([spec])
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    print(f"key:  {key}")
    print(f"spec: {spec}")
