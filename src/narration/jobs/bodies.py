"""Request bodies: JSON read with a nesting limit, and validation errors made readable (every
bad field listed, codes `invalid_json` and `invalid_fields`)."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from .errors import OperationError

__all__ = ["MAX_JSON_DEPTH", "invalid_fields", "load_json"]

MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects a JSON body may have (deeper answers `invalid_json`)."""


def load_json(raw: bytes | str) -> Any:
    """`json.loads(raw)`, with nesting limited to `MAX_JSON_DEPTH`; `OperationError`
    (`invalid_json`) for anything that is not JSON or nests deeper."""
    try:
        text = raw if isinstance(raw, str) else raw.decode("utf-8")
    except UnicodeDecodeError as error:
        message = f"body is not valid JSON (not UTF-8): {error}"
        raise OperationError("invalid_json", message) from None
    depth = _max_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise OperationError(
            "invalid_json", f"body nests deeper than {MAX_JSON_DEPTH} levels of arrays/objects"
        )
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise OperationError("invalid_json", f"body is not valid JSON: {error}") from None


_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _max_depth(text: str) -> int:
    """The deepest bracket nesting in JSON text, ignoring brackets inside strings (a linear
    scan, so a hostile body cannot make the parser recurse before it is refused)."""
    if "[" not in text and "{" not in text:
        return 0
    depth = deepest = 0
    for match in _BRACKETS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    return deepest
        elif token in "]}":
            depth -= 1
    return deepest


def _loc(loc: tuple[int | str, ...]) -> str:
    """`("fields", 0, "x")` -> `"fields[0].x"`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(body)"


def invalid_fields(name: str, error: ValidationError) -> OperationError:
    """Turn a pydantic error into one readable `invalid_fields` error listing every field."""
    problems = tuple(
        {"loc": _loc(tuple(detail["loc"])), "msg": str(detail["msg"])}
        for detail in error.errors(include_url=False, include_input=False)
    )
    listing = "; ".join(f"{problem['loc']}: {problem['msg']}" for problem in problems)
    return OperationError(
        "invalid_fields", f"invalid fields for operation {name!r}: {listing}", problems
    )
