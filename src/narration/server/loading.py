"""Finding a user's app or registry from a `module:attr` string (`narration serve --app ...`)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import FunctionType
from typing import Any

__all__ = ["load_object"]


def load_object(spec: str) -> Any:
    """The object named by `module:attr` (`attr` may be dotted); a callable with no required
    arguments (an app factory) is called. The current directory is importable, as with
    uvicorn. Raises `ValueError` with a readable message."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected module:attr (e.g. myservice.jobs:jobs), got {spec!r}")
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        value: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r}: {exc}") from None
    for part in attr.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise ValueError(f"{module_name!r} has no attribute {attr!r}") from None
    if isinstance(value, FunctionType):  # an app factory (an app itself is not a function)
        value = value()
    return value
