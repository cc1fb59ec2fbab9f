"""Carrying the job's ids into a child process, through its environment.

The parent builds the child's environment with `child_env()`; the child calls
`narration.init_from_env()` once at start-up. From then on, whatever the child narrates carries
the parent's job id, correlation id and trace id, and goes to stdout as one JSON event per line,
which `ProcessCapture` in the parent turns back into events of the parent's job.

Variables (docs/ARCHITECTURE.md section 5): `NARRATION_JOB_ID`, `NARRATION_CORRELATION_ID`,
`TRACEPARENT`, `TRACESTATE`, `NARRATION_OUTPUT=jsonl`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .. import environment
from ..config import configure_from_env
from ..context import NarrationContext, attach, current_context
from ..ids import valid_correlation_id
from .tracecontext import (
    bind_trace,
    clean_tracestate,
    format_traceparent,
    new_span_id,
    parse_traceparent_flags,
    trace_flags_for,
    tracestate_for,
    valid_trace_id,
)

__all__ = [
    "ENV_CORRELATION_ID",
    "ENV_JOB_ID",
    "ENV_OUTPUT",
    "ENV_TRACEPARENT",
    "ENV_TRACESTATE",
    "child_env",
    "init_from_env",
]

ENV_JOB_ID = "NARRATION_JOB_ID"
ENV_CORRELATION_ID = "NARRATION_CORRELATION_ID"
ENV_TRACEPARENT = "TRACEPARENT"
ENV_TRACESTATE = "TRACESTATE"
ENV_OUTPUT = "NARRATION_OUTPUT"
ENV_CONSOLE = "NARRATION_CONSOLE"
_PROPAGATED = (ENV_JOB_ID, ENV_CORRELATION_ID, ENV_TRACEPARENT, ENV_TRACESTATE)


def child_env(
    base: Mapping[str, str] | None = None, ctx: NarrationContext | None = None
) -> dict[str, str]:
    """The environment for a child process that narrates into `ctx`'s job.

    `base` (default: `os.environ`) plus the ids of `ctx` (default: the current context): its job
    id, correlation id, a `TRACEPARENT` naming a new span of the current trace (the child's
    span), its `TRACESTATE`, and `NARRATION_OUTPUT=jsonl`. Ids `base` already holds are replaced
    or, when `ctx` has none, removed, so a stale id is never passed on. `NARRATION_CONSOLE` is
    removed too: the child's events come back through its stdout, a console copy on its stderr
    would show each one twice. The child's actor is its own (its package name), not set here.
    """
    ctx = current_context() if ctx is None else ctx
    env = dict(os.environ if base is None else base)
    for name in (*_PROPAGATED, ENV_CONSOLE):
        env.pop(name, None)
    if ctx.job_id:
        env[ENV_JOB_ID] = ctx.job_id
    if ctx.correlation_id:
        env[ENV_CORRELATION_ID] = ctx.correlation_id
    if ctx.trace_id and valid_trace_id(ctx.trace_id):
        flags = trace_flags_for(ctx)
        env[ENV_TRACEPARENT] = format_traceparent(ctx.trace_id, new_span_id(), flags=flags)
        state = tracestate_for(ctx)
        if state:
            env[ENV_TRACESTATE] = state
    env[ENV_OUTPUT] = "jsonl"
    return env


def init_from_env(environ: Mapping[str, str] | None = None) -> NarrationContext:
    """Set a child process up from the environment its parent gave it; return its context.

    Applies the `NARRATION_*` settings (with `NARRATION_OUTPUT=jsonl`, events go to stdout as
    JSON lines, and `print()` output shares their queue, so both arrive in the order they were
    made), and makes the job id, correlation id and trace ids (the span named by
    `TRACEPARENT`) the context of the calling thread: call it at module level or first thing
    in `main()`, and
    everything after it (tasks, `asyncio.run`, `narration.propagation` threads) narrates into
    the parent's job. Ids that are malformed are ignored. Events still queued are written at
    exit (by the JSONL sink).
    """
    configure_from_env(environ)
    job_id = valid_correlation_id(environment.get(ENV_JOB_ID, environ))
    correlation_id = valid_correlation_id(environment.get(ENV_CORRELATION_ID, environ))
    trace_id = span_id = None
    parsed = parse_traceparent_flags(environment.get(ENV_TRACEPARENT, environ))
    if parsed is not None:
        trace_id, span_id = parsed.trace_id, parsed.span_id
    ctx = current_context().merged(
        job_id=job_id, correlation_id=correlation_id, trace_id=trace_id, span_id=span_id
    )
    attach(ctx)  # for the rest of the process: it runs for this one job
    if parsed is not None:
        state = clean_tracestate(environment.get(ENV_TRACESTATE, environ))
        bind_trace(parsed.trace_id, parsed.flags, state)
    return ctx
