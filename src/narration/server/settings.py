"""Server settings: the defaults (docs/ARCHITECTURE.md section 4, docs/SECURITY.md), each
overridable by its `NARRATION_*` environment variable (see `narration.environment`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
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
    # Who may call (server/auth.py, docs/SECURITY.md).
    api_keys: tuple[str, ...] = ()
    """API keys as `name:scopes:sha256hex[:tenant]` (`narration keys new` makes one)."""
    api_keys_file: str | None = None
    """A file of API key specs, one a line (`#` comments)."""
    no_auth: bool = False
    """Serve without authentication, even beyond loopback (`--no-auth`)."""
    allowed_hosts: tuple[str, ...] = ()
    """Host names requests may name (`*.example.com`, `*`); none: loopback names on loopback."""
    stream_token_secret: str | None = field(default=None, repr=False)
    """The key signing stream tokens (the same on every replica); none: one per process."""
    stream_token_ttl_s: float = 300.0
    """How long a stream token (in `sse_url`) stays valid."""
    # Limits (docs/SECURITY.md).
    submit_rate: str | None = "50/second;1200/minute"
    """Submissions per principal (`limits` notation, `;`-separated); `off` for none."""
    max_finished_jobs: int = 10_000
    """Finished jobs retained at once; past it the oldest finished job is forgotten."""
    max_event_bytes: int = 64 * 1024
    """One encoded event at most (its fields are cut to fit, marked)."""
    max_field_bytes: int = 16 * 1024
    """One encoded field value at most (cut, marked, listed in `fields_truncated`)."""
    repr_timeout_s: float = 0.25
    """How long a field value's repr may take (in a worker thread) before a placeholder."""
    max_header_bytes: int = 64 * 1024
    """A request's line and headers at most (431 past it; `serve` and the CLI only)."""
    header_timeout_s: float = 10.0
    """How long a client may take to send a request's headers (408; `serve` and the CLI)."""
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
    if kind == "bool":
        text = raw.strip().lower()
        if text not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ValueError(f"NARRATION_{name.upper()}={raw!r} is not true or false")
        return text in ("1", "true", "yes", "on")
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
