"""`python -m narration.server`: one server process, without the CLI's extras.

    python -m narration.server --host 127.0.0.1 --port 7833 --store redis://127.0.0.1:6379/0
    python -m narration.server --handlers mypkg.handlers:HANDLERS --hold-unhandled

`--handlers module:attr` names a mapping of operation names to `async def handler(op, job)`
(or a function returning one). `--hold-unhandled` (env `NARRATION_HOLD_UNHANDLED=1`) keeps jobs
without a handler running until they are cancelled, as the test harness does. Every other
setting comes from `NARRATION_*` env vars (see `ServerSettings`).
"""

from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

from .app import create_app
from .serve import serve

__all__ = ["load_handlers", "main"]


def load_handlers(spec: str) -> Mapping[str, Any]:
    """The handler mapping named by `module:attr` (a mapping, or a callable returning one)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"--handlers wants module:attr, got {spec!r}")
    value: Any = getattr(importlib.import_module(module_name), attr)
    if callable(value) and not isinstance(value, Mapping):
        value = value()
    if not isinstance(value, Mapping):
        raise TypeError(f"{spec} is not a mapping of operation names to handlers")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m narration.server",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default=os.environ.get("NARRATION_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("NARRATION_PORT", "7833")))
    parser.add_argument("--store", default=None, help="memory:// (default) or redis://host:port/db")
    parser.add_argument("--handlers", action="append", default=[], metavar="MODULE:ATTR")
    parser.add_argument(
        "--hold-unhandled",
        action="store_true",
        default=os.environ.get("NARRATION_HOLD_UNHANDLED", "") in ("1", "true", "yes"),
        help="keep jobs without a handler running until cancelled (tests)",
    )
    parser.add_argument("--retention-s", type=float, default=None)
    parser.add_argument("--log-level", default="warning")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Parse `argv`, build the app and serve it until SIGINT/SIGTERM."""
    args = _parser().parse_args(argv)
    handlers: dict[str, Any] = {}
    for spec in args.handlers:
        handlers.update(load_handlers(spec))
    app = create_app(
        handlers=handlers,
        store=args.store,
        hold_unhandled=args.hold_unhandled,
        retention_s=args.retention_s,
    )
    serve(app, args.host, args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
