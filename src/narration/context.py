"""The job context: one immutable value in one ContextVar, inherited by tasks and threads."""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from .sanitize import clean_text, safe_str

__all__ = [
    "NarrationContext",
    "attach",
    "current_context",
    "detach",
    "narration_context",
    "with_narration_context",
]

T = TypeVar("T")
_ID_FIELDS = ("job_id", "correlation_id", "actor", "trace_id", "span_id")


@dataclass(frozen=True, slots=True)
class NarrationContext:
    """Who is doing what: the ids every event emitted inside this context carries.

    Frozen, so copying it between tasks and threads is a pointer copy. `fields` are added to
    every event. The ids are cleaned like messages when the context is made (a non-str is
    converted with str(); unprintable characters such as lone surrogates are stripped), so
    no event carries text that cannot be encoded.
    """

    job_id: str | None = None
    correlation_id: str | None = None
    actor: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    fields: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        # The ids go into every event: make them plain, printable, encodable text once, here.
        for value in (self.job_id, self.correlation_id, self.actor, self.trace_id, self.span_id):
            if value is not None and not (type(value) is str and value.isprintable()):
                self._clean_ids()
                return

    def _clean_ids(self) -> None:
        for name in _ID_FIELDS:
            value = getattr(self, name)
            if value is not None and not (type(value) is str and value.isprintable()):
                object.__setattr__(self, name, clean_text(safe_str(value)[0]))

    def with_job_id(self, job_id: str | None) -> NarrationContext:
        """A copy with `job_id` replaced."""
        return replace(self, job_id=job_id)

    def with_correlation_id(self, correlation_id: str | None) -> NarrationContext:
        """A copy with `correlation_id` replaced."""
        return replace(self, correlation_id=correlation_id)

    def with_actor(self, actor: str | None) -> NarrationContext:
        """A copy with `actor` replaced."""
        return replace(self, actor=actor)

    def with_trace(self, trace_id: str | None, span_id: str | None) -> NarrationContext:
        """A copy with the W3C trace and span ids replaced."""
        return replace(self, trace_id=trace_id, span_id=span_id)

    def with_fields(self, **fields: Any) -> NarrationContext:
        """A copy whose fields are these merged over the current ones."""
        merged = {**(self.fields or {}), **fields}
        return replace(self, fields=merged or None)

    def merged(self, **overrides: Any) -> NarrationContext:
        """A copy where every non-None override replaces its field; `fields` merge key by key."""
        changes = {key: value for key, value in overrides.items() if value is not None}
        if "fields" in changes:
            changes["fields"] = {**(self.fields or {}), **changes["fields"]} or None
        return replace(self, **changes) if changes else self


EMPTY = NarrationContext()
_current: contextvars.ContextVar[NarrationContext] = contextvars.ContextVar(
    "narration_context", default=EMPTY
)


def current_context() -> NarrationContext:
    """The context in force here (an empty one outside any job)."""
    return _current.get()


def attach(ctx: NarrationContext) -> contextvars.Token[NarrationContext]:
    """Make `ctx` the current context, exactly (nothing merged); `detach(token)` undoes it.

    The one way in and out of a context for code that cannot use a `with` block (a job
    runner, a middleware, a child process taking its ids from the environment).
    """
    return _current.set(ctx)


def detach(token: contextvars.Token[NarrationContext]) -> None:
    """Restore the context that was current before the `attach` that gave `token`."""
    _current.reset(token)


@contextmanager
def narration_context(
    ctx: NarrationContext | None = None,
    *,
    job_id: str | None = None,
    correlation_id: str | None = None,
    actor: str | None = None,
    trace_id: str | None = None,
    span_id: str | None = None,
    fields: Mapping[str, Any] | None = None,
) -> Iterator[NarrationContext]:
    """Merge `ctx` and the given values into the current context for the `with` block.

    Values given here override, the rest inherit; the previous context comes back on exit,
    also when the block raises. Works in sync and async code alike.
    """
    base = _current.get()
    if ctx is not None:
        base = base.merged(
            job_id=ctx.job_id,
            correlation_id=ctx.correlation_id,
            actor=ctx.actor,
            trace_id=ctx.trace_id,
            span_id=ctx.span_id,
            fields=ctx.fields,
        )
    new = base.merged(
        job_id=job_id,
        correlation_id=correlation_id,
        actor=actor,
        trace_id=trace_id,
        span_id=span_id,
        fields=fields,
    )
    token = attach(new)
    try:
        yield new
    finally:
        detach(token)


async def with_narration_context(ctx: NarrationContext, awaitable: Awaitable[T]) -> T:
    """Await `awaitable` with exactly `ctx` current, and return its result.

    Tasks the awaitable creates inherit `ctx`; the caller's context is restored afterwards,
    also when it raises. (An already running Task keeps the context it was created with.)
    """
    token = attach(ctx)
    try:
        return await awaitable
    finally:
        detach(token)
