"""Every environment variable narration reads: its name, default and meaning, in one list.

Code reads the environment through `get(name)`, which accepts only the names listed here, so
this list is complete by construction; the README's table is `markdown_table()` of it (a test
checks that the README shows exactly that). Variables of other libraries (`OTEL_*`,
`PROMETHEUS_MULTIPROC_DIR`) are read as those libraries document them.
Nothing is read at import time: `configure_from_env()`, `init_from_env()`, the server settings
and the `narration` command read what they need when they are called.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["JOB_SCOPED", "VARIABLES", "Variable", "get", "markdown_table"]


@dataclass(frozen=True, slots=True)
class Variable:
    """One environment variable: `name`, its `default` (as text, or "none"), what it means and
    who reads it (`scope`: output, server, store, child, service or cli)."""

    name: str
    default: str
    meaning: str
    scope: str


VARIABLES: tuple[Variable, ...] = (
    # What this process prints (configure_from_env).
    Variable("NARRATION_LEVEL", "info", "lowest level emitted (trace … fatal)", "output"),
    Variable("NARRATION_CONSOLE", "0", "1: readable lines on stderr", "output"),
    Variable(
        "NARRATION_CONSOLE_IDS", "0", "1: console lines show job and correlation id", "output"
    ),
    Variable("NARRATION_MODE", "human", "console text: human, cute or story", "output"),
    Variable("NARRATION_OUTPUT", "none", "jsonl: one JSON event per line on stdout", "output"),
    # A child process's job (child_env() sets them; init_from_env() reads them).
    Variable("NARRATION_JOB_ID", "none", "the job a child process narrates into", "child"),
    Variable("NARRATION_CORRELATION_ID", "none", "that job's correlation id", "child"),
    Variable("TRACEPARENT", "none", "W3C trace context of that job (a new span)", "child"),
    Variable("TRACESTATE", "none", "W3C tracestate that goes with it", "child"),
    # The job server (ServerSettings: NARRATION_<FIELD>).
    Variable("NARRATION_RETENTION_S", "600", "seconds a finished job stays readable", "server"),
    Variable("NARRATION_MAX_EVENTS", "100000", "events kept per job (oldest dropped)", "server"),
    Variable("NARRATION_MAX_BYTES", "67108864", "bytes kept per job (oldest dropped)", "server"),
    Variable("NARRATION_JOB_TIMEOUT_S", "none", "seconds before a running job fails", "server"),
    Variable("NARRATION_KEEPALIVE_S", "15", "silence before a keepalive comment", "server"),
    Variable("NARRATION_MAX_BODY_BYTES", "1048576", "largest request body", "server"),
    Variable("NARRATION_MAX_RUNNING", "10000", "running jobs before 503", "server"),
    Variable("NARRATION_SHUTDOWN_GRACE_S", "5", "time running jobs get when stopping", "server"),
    Variable(
        "NARRATION_STORE",
        "memory://",
        "memory://, redis://host:port/db or redis+cluster://host:port,…",
        "server",
    ),
    Variable(
        "NARRATION_WORKERS",
        "1",
        "`narration serve` processes sharing the port (more than 1: Redis store)",
        "server",
    ),
    Variable("NARRATION_ACTOR", "none", "the actor of the server's own events", "server"),
    Variable("NARRATION_CORS_ORIGINS", "none", "origins allowed to call the API (a,b)", "server"),
    Variable("NARRATION_API_KEYS", "none", "API keys: name:scopes:sha256[:tenant], …", "server"),
    Variable("NARRATION_API_KEYS_FILE", "none", "a file of API key specs, one a line", "server"),
    Variable("NARRATION_NO_AUTH", "0", "1: serve without keys beyond loopback", "server"),
    Variable("NARRATION_ALLOWED_HOSTS", "loopback", "Host names requests may name (a,b)", "server"),
    Variable("NARRATION_STREAM_TOKEN_SECRET", "per process", "signs stream tokens", "server"),
    Variable("NARRATION_STREAM_TOKEN_TTL_S", "300", "stream token lifetime", "server"),
    Variable("NARRATION_SUBMIT_RATE", "50/second;1200/minute", "submissions per key", "server"),
    Variable("NARRATION_MAX_FINISHED_JOBS", "10000", "finished jobs kept at once", "server"),
    Variable("NARRATION_MAX_EVENT_BYTES", "65536", "one encoded event at most", "server"),
    Variable("NARRATION_MAX_FIELD_BYTES", "16384", "one encoded field value at most", "server"),
    Variable("NARRATION_REPR_TIMEOUT_S", "0.25", "a field's repr before a placeholder", "server"),
    Variable("NARRATION_MAX_HEADER_BYTES", "65536", "request line and headers at most", "server"),
    Variable("NARRATION_HEADER_TIMEOUT_S", "10", "time to send a request's headers", "server"),
    Variable("NARRATION_ARCHIVE", "none", "archive finished jobs: a dir or fsspec URL", "server"),
    Variable("NARRATION_ARCHIVE_RETENTION_DAYS", "30", "days an archived job is kept", "server"),
    Variable("NARRATION_ARCHIVE_MAX_BYTES", "1073741824", "archive size cap (oldest go)", "server"),
    # `python -m narration.server`.
    Variable(
        "NARRATION_HOST", "127.0.0.1", "interface `python -m narration.server` binds", "server"
    ),
    Variable("NARRATION_PORT", "7833", "port it listens on", "server"),
    Variable("NARRATION_HOLD_UNHANDLED", "0", "1: hold jobs without a handler (tests)", "server"),
    # The Redis store (a URL's query keys win over these).
    Variable("NARRATION_REDIS_PREFIX", "narration", "Redis key prefix", "store"),
    Variable("NARRATION_LEASE_TTL_S", "10", "a dead owner's jobs end within this", "store"),
    Variable("NARRATION_REDIS_MAX_PENDING", "100000", "events buffered in an outage", "store"),
    # The `narration` command.
    Variable("NARRATION_URL", "http://127.0.0.1:7833", "the server the commands talk to", "cli"),
    Variable("NARRATION_QUEEN_URL", "none", "the same (older name)", "cli"),
    Variable("NARRATION_TOKEN", "none", "the API key the commands send", "cli"),
    Variable("NARRATION_HIVE_TOKEN", "none", "the API key a queen sends its hives", "service"),
    # The reference services' stand-in worker.
    Variable("NARRATION_WORKER_FAIL", "none", "workers exit with this code (tests)", "service"),
    Variable("NARRATION_WORKER_TOKEN_DELAY", "0.02", "seconds per generated token", "service"),
)

_BY_NAME = {variable.name: variable for variable in VARIABLES}

JOB_SCOPED: tuple[str, ...] = (
    *(v.name for v in VARIABLES if v.scope == "child"),
    "NARRATION_OUTPUT",
)
"""Variables that tie a process to one job: a long-running service must not inherit them."""


def get(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The value of `name` (None when unset or empty); `KeyError` for a name not listed."""
    if name not in _BY_NAME:
        raise KeyError(f"{name} is not a narration environment variable (see VARIABLES)")
    value = (os.environ if environ is None else environ).get(name)
    return value if value else None


def markdown_table() -> str:
    """The README's table of environment variables."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    lines += [f"| `{v.name}` | {v.default} | {v.meaning} |" for v in VARIABLES]
    return "\n".join(lines)
