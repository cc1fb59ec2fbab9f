"""Server settings: the defaults of docs/ARCHITECTURE.md section 4, overridable by `NARRATION_*`
environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from .. import environment

__all__ = ["ServerSettings", "split_list"]


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Everything a server can be told; each field `x` reads env `NARRATION_X` in `from_env`."""

    retention_s: float = 600.0
    max_events: int = 100_000
    max_bytes: int = 64 * 1024 * 1024
    job_timeout_s: float | None = None
    keepalive_s: float = 15.0
    max_body_bytes: int = 1024 * 1024
    max_running: int = 10_000
    shutdown_grace_s: float = 5.0
    store: str | None = None
    actor: str | None = None
    cors_origins: tuple[str, ...] = ()
    """Origins whose pages may call the API and read streams (`*` for any); none by default."""
    archive: str | None = None
    """Where finished jobs are archived: a directory, or an fsspec URL (s3://…); off if None."""
    archive_retention_days: float = 30.0
    archive_max_bytes: int = 1024 * 1024 * 1024

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServerSettings:
        """Defaults, then `NARRATION_*` env values, then `overrides` (None means "not given")."""
        values: dict[str, Any] = {}
        for spec in fields(cls):
            raw = environment.get(f"NARRATION_{spec.name.upper()}", environ)
            if raw is None:
                continue
            values[spec.name] = _convert(spec.name, str(spec.type), raw)
        settings = replace(cls(), **values)
        given = {key: value for key, value in overrides.items() if value is not None}
        return replace(settings, **given)


def _convert(name: str, kind: str, raw: str) -> Any:
    if kind.startswith("tuple"):
        return split_list(raw)
    try:
        if "float" in kind:
            return None if raw.lower() in ("none", "off") else float(raw)
        if "int" in kind:
            return int(raw)
    except ValueError:
        raise ValueError(f"NARRATION_{name.upper()}={raw!r} is not a number") from None
    return raw


def split_list(raw: str) -> tuple[str, ...]:
    """A comma-separated env value as a tuple of its non-empty, stripped items."""
    return tuple(item.strip() for item in raw.split(",") if item.strip())
