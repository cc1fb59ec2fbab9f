"""Building a request body on the command line: `--set key=value` and `--json FILE|-`.

The CLI knows no operation by name: it asks the server for its operations' schemas
(`GET /v1/operations`) and types each `--set` value by its field's schema: a text field keeps
the value as written, any other field reads it as JSON (`pages=10`, `stream=false`,
`top_p=null`). Without a schema, a value that parses as JSON is JSON, else text.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_operation", "read_json_fields"]


def build_operation(
    name: str,
    assignments: Sequence[str],
    schemas: Mapping[str, Any] | None = None,
    base: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The request body of operation `name`: `base` fields, then `key=value` assignments.

    `schemas` maps operation names to their JSON schema (as `GET /v1/operations` gives them,
    `{"name": {"schema": {...}}}` or `{"name": {...}}`). Raises `ValueError` for a malformed
    assignment or, when `schemas` is given, an operation the server does not have.
    """
    schema: Mapping[str, Any] = {}
    if schemas is not None:
        if name not in schemas:
            valid = ", ".join(schemas) or "none"
            raise ValueError(f"unknown operation {name!r}; the server runs: {valid}")
        entry = schemas[name]
        schema = entry.get("schema", entry) if isinstance(entry, Mapping) else {}
    properties: Mapping[str, Any] = schema.get("properties", {}) or {}
    fields: dict[str, Any] = {"operation": name, **(base or {})}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {assignment!r}")
        if _is_text(properties.get(key)):
            fields[key] = raw
            continue
        try:
            fields[key] = json.loads(raw)
        except ValueError:
            fields[key] = raw
    fields["operation"] = name
    return fields


def read_json_fields(source: str) -> dict[str, Any]:
    """The JSON object in file `source` (`-` reads standard input); `ValueError` otherwise."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {source}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{source} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{source} must hold a JSON object, not {type(data).__name__}")
    return data


def _is_text(prop: Any) -> bool:
    """True when a field's schema only admits strings (so the value is taken as written)."""
    if not isinstance(prop, Mapping):
        return False
    if prop.get("type") == "string":
        return True
    options = prop.get("anyOf") or prop.get("oneOf")
    if isinstance(options, list) and options:
        kinds = {opt.get("type") for opt in options if isinstance(opt, Mapping)}
        return kinds == {"string"}
    return False
