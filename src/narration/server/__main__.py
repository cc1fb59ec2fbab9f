"""`python -m narration.server`: one server process, without the CLI's extras.

    python -m narration.server --host 127.0.0.1 --port 7833 --store redis://127.0.0.1:6379/0
    python -m narration.server --jobs mypkg.jobs:jobs --hold-unhandled

`--jobs module:attr` names a `JobRegistry` (or a function returning one). `--hold-unhandled`
(env `NARRATION_HOLD_UNHANDLED=1`) accepts operations the registry does not know and keeps
their jobs running until they are cancelled, as the test harness does. Every other setting
comes from `NARRATION_*` env vars (see `ServerSettings`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .. import environment
from ..config import configure_from_env
from ..jobs import JobRegistry
from .app import create_app
from .loading import load_object
from .serve import serve

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m narration.server",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default=environment.get("NARRATION_HOST") or "127.0.0.1")
    parser.add_argument("--port", type=int, default=int(environment.get("NARRATION_PORT") or 7833))
    parser.add_argument("--store", default=None, help="memory:// (default) or redis://host:port/db")
    parser.add_argument("--jobs", default=None, metavar="MODULE:ATTR", help="a JobRegistry")
    parser.add_argument(
        "--hold-unhandled",
        action="store_true",
        default=(environment.get("NARRATION_HOLD_UNHANDLED") or "") in ("1", "true", "yes"),
        help="keep jobs without a handler running until cancelled (tests)",
    )
    parser.add_argument("--retention-s", type=float, default=None)
    parser.add_argument("--log-level", default="warning")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Parse `argv`, build the app and serve it until SIGINT/SIGTERM."""
    args = _parser().parse_args(argv)
    configure_from_env()
    jobs = load_object(args.jobs) if args.jobs else None
    if jobs is not None and not isinstance(jobs, JobRegistry):
        raise SystemExit(f"{args.jobs} is a {type(jobs).__name__}, not a JobRegistry")
    app = create_app(
        jobs,
        store=args.store,
        hold_unhandled=args.hold_unhandled,
        retention_s=args.retention_s,
    )
    serve(app, args.host, args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
