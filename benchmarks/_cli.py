"""The command line the table-printing benchmarks share: `--quick`, `--json`, else the table."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

__all__ = ["table_main"]


def table_main(
    doc: str | None, run: Callable[..., dict[str, Any]], table: Callable[[dict[str, Any]], str]
) -> None:
    """Parse the command line, `run(quick=...)`, print the results as `table` renders them
    (or as JSON with `--json`); `doc` is the module docstring (its first line describes it)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    results = run(quick=args.quick)
    print(json.dumps(results, indent=2) if args.json else table(results))
