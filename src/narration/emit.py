"""`n()`: build one event from the caller's words and context, and hand it to the dispatcher.

This is the hot path: no I/O, no locks, no per-subscriber work, and it never raises for bad
runtime data (it sanitizes and flags instead). Measure before and after changing it.
"""

from __future__ import annotations

import sys
from _thread import get_ident as _get_ident
from collections.abc import Callable
from time import time as _time
from types import CodeType, FrameType
from typing import Any, Protocol

import msgspec

from . import lost_context as _lost
from .context import EMPTY as _EMPTY
from .context import NarrationContext, _current
from .dispatch import dispatcher
from .events import _ROUND, LEVEL_RANK, Level, NarrationEvent
from .sanitize import (
    MAX_MESSAGE_CHARS,
    VALID_ACTIONS,
    clean_action,
    clean_text,
    safe_repr,
    safe_str,
)
from .template import INVALID_LEVEL, POSITIONAL_TEMPLATES, format_error, format_template

__all__ = ["LevelledNarrate", "Narrate", "n", "narrate", "relay"]

_CALLER_CACHE_CAP = 8192
# Keyed by id(code): hashing a code object is slow, and the entry holds the code object, so
# its id cannot be reused while it is cached.
_callers: dict[int, tuple[CodeType, str, str]] = {}
_getframe = sys._getframe
_INFO = Level.INFO
# Level members and their ranks keyed by the member's id: hashing an Enum member runs Python code.
_levels_by_id = {id(level): (level, rank) for level, rank in LEVEL_RANK.items()}
_routes = dispatcher.routes
# Where `n()` reads its context: the ContextVar itself, unless OpenTelemetry spans are followed
# (`narration.otel.bridge.follow_spans`, which swaps in a reader that adds the active span's ids).
_context: Callable[[], NarrationContext] = _current.get
_valid_actions = VALID_ACTIONS
_positional_templates = POSITIONAL_TEMPLATES
_NO_CALLER = compile("", "<no caller>", "exec")


def _caller_info(code: CodeType, frame: FrameType | None) -> tuple[CodeType, str, str]:
    """(code, actor, fn_name) of `n()`'s caller (`frame`, running `code`): its top-level
    package and qualified name."""
    module = "main" if frame is None else frame.f_globals.get("__name__", "main")
    if len(_callers) >= _CALLER_CACHE_CAP:
        _callers.clear()
    actor = module.partition(".")[0].strip("_") or "main"
    info = (code, actor, f"{module}.{code.co_qualname}")
    _callers[id(code)] = info
    return info


def n(
    action: str,
    message: str,
    *args: Any,
    level: Level | str = _INFO,
    cute: str | None = None,
    story: str | None = None,
    target: str | None = None,
    **fields: Any,
) -> NarrationEvent | None:
    """Narrate: `n("spawn", "Spawning worker on GPU {}", gpu)`.

    With `args` or `fields`, `message` is a safe template: `{}`/`{0}` take the args, `{name}`
    the fields (which stay fields); see `narration.template`. The event carries the current
    context's job id, correlation id and trace ids; its actor is the context's actor or the
    caller's top-level package. Returns the event, or None when its level is below the
    configured threshold. Raises only TypeError, for a non-str action or message.
    """
    if level is _INFO:
        if dispatcher.info_muted:
            return None
        member = _INFO
    else:
        try:  # a Level member below the threshold? (compared by identity first: no hashing)
            if level in dispatcher.muted:
                return None
        except Exception:  # an object whose __eq__ raises: `_parse_level` flags it
            pass
        member, rank = _levels_by_id.get(id(level)) or _parse_level(level, fields)
        if rank < dispatcher._min_rank:
            return None
    if type(action) is not str or type(message) is not str:
        action, message = _check_types(action, message)
    ctx = _context()
    frame: FrameType | None
    try:
        frame = _getframe(1)
    except ValueError:  # called straight from C with no Python caller (e.g. an atexit hook)
        frame, code = None, _NO_CALLER
    else:
        code = frame.f_code
        if code is _LEVELLED_CODE:  # through `n.debug(...)` and friends: their caller counts
            frame = frame.f_back
            code = _NO_CALLER if frame is None else frame.f_code
    info = _callers.get(id(code)) or _caller_info(code, frame)
    if args:
        try:  # a template checked safe and positional-only: its bound format and its arity
            fmt, arity = _positional_templates[message]
        except KeyError:
            arity = -1
        if arity == len(args):
            try:
                message = fmt(*args)
            except Exception as exc:
                fields["format_error"] = format_error(exc)
        else:
            message = format_template(message, args, fields)
    elif fields and "{" in message:  # a template only if the caller gave fields
        message = format_template(message, args, fields)
    if not (message.isprintable() and len(message) <= MAX_MESSAGE_CHARS):
        message = clean_text(message)
    if action not in _valid_actions:
        action, invalid = clean_action(action)
        if invalid:
            fields["invalid_action"] = True
    if ctx.fields:
        fields = {**ctx.fields, **fields}
    job_id = ctx.job_id
    event = NarrationEvent(
        ts=((_time() * 1e6 + _ROUND) - _ROUND) / 1e6,  # events.timestamp(), inlined
        level=member,
        actor=ctx.actor or info[1],
        action=action,
        human=message,
        job_id=job_id,
        correlation_id=ctx.correlation_id,
        trace_id=ctx.trace_id,
        span_id=ctx.span_id,
        fn_name=info[2],
        fields=fields or None,
    )
    if target is not None or cute is not None or story is not None:
        event = _with_variants(event, target, cute, story)
    # `dispatcher.deliver`, inlined (the hottest lines of the library): job log, sinks, taps.
    if job_id is not None:
        route = _routes.get(job_id)
        if route is None:
            dispatcher.unrouted += 1
        else:
            route(event)
    elif _routes and ctx is _EMPTY and _get_ident() != _lost.main_ident:
        _lost.note()  # jobs run here, yet a worker thread has no context: a plain thread?
    if dispatcher.sinks:
        dispatcher.to_sinks(event)
    if dispatcher.taps:
        dispatcher.to_taps(event)
    return event


class LevelledNarrate(Protocol):
    """`n.debug(...)` and friends: `n()` at one level, nothing at all when it is muted."""

    def __call__(
        self,
        action: str,
        message: str,
        *args: Any,
        cute: str | None = None,
        story: str | None = None,
        target: str | None = None,
        **fields: Any,
    ) -> NarrationEvent | None: ...


class Narrate(Protocol):
    """The type of `n`: the function, plus one shortcut per level (`n.debug(...)`)."""

    trace: LevelledNarrate
    debug: LevelledNarrate
    info: LevelledNarrate
    warn: LevelledNarrate
    error: LevelledNarrate
    fatal: LevelledNarrate

    def __call__(
        self,
        action: str,
        message: str,
        *args: Any,
        level: Level | str = ...,
        cute: str | None = None,
        story: str | None = None,
        target: str | None = None,
        **fields: Any,
    ) -> NarrationEvent | None: ...


def _levelled(level: Level) -> tuple[LevelledNarrate, Callable[[tuple[Level, ...]], None]]:
    """`n` at `level`, and what keeps its muted flag in step with the threshold.

    Below the threshold the shortcut returns after one flag test, before any work (as a
    filtering logger's no-op method does); a reference kept to it stays right after
    `configure(level=...)`. Every shortcut shares one code object, which `n()` recognises to
    take the shortcut's caller as its own.
    """
    muted = level in dispatcher.muted

    def narrate_at(
        action: str, message: str, *args: Any, **fields: Any
    ) -> NarrationEvent | None:  # cute, story and target reach n() among the keywords
        if muted:
            return None
        return n(action, message, *args, level=level, **fields)

    def follow_threshold(muted_levels: tuple[Level, ...]) -> None:
        nonlocal muted
        muted = level in muted_levels

    narrate_at.__qualname__ = narrate_at.__name__ = f"n.{level.name.lower()}"
    return narrate_at, follow_threshold


def _add_shortcuts() -> None:
    for level in Level:
        shortcut, follow = _levelled(level)
        setattr(n, level.name.lower(), shortcut)
        dispatcher.threshold_listeners.append(follow)


_add_shortcuts()
_LEVELLED_CODE = n.info.__code__  # type: ignore[attr-defined]  # the code every shortcut runs

narrate = n


def set_context_source(source: Callable[[], NarrationContext] | None) -> None:
    """Make `n()` read its context from `source`; None puts back the narration ContextVar."""
    global _context
    _context = _current.get if source is None else source


def relay(event: NarrationEvent, origin: str | None = None) -> NarrationEvent:
    """Re-emit an event that happened elsewhere (a child process, another service) here.

    It joins the current job (its `job_id` becomes this job's) and keeps its actor, action,
    level, text and its own correlation and trace ids; `origin` records where it first
    happened (an origin it already had is kept). Its text, action and actor are checked as
    `n()` checks its own (it came from outside). Returns the relayed event.
    """
    ctx = _current.get()
    human = event.human
    if not (human.isprintable() and len(human) <= MAX_MESSAGE_CHARS):
        human = clean_text(human)
    action = event.action if event.action in _valid_actions else clean_action(event.action)[0]
    actor = event.actor if event.actor in _valid_actions else clean_action(event.actor)[0]
    event = msgspec.structs.replace(
        event,
        id=0,
        human=human,
        action=action,
        actor=actor,
        job_id=ctx.job_id or event.job_id,
        correlation_id=event.correlation_id or ctx.correlation_id,
        trace_id=event.trace_id or ctx.trace_id,
        span_id=event.span_id or ctx.span_id,
        origin=event.origin or origin,
    )
    dispatcher.deliver(event)
    return event


def _with_variants(
    event: NarrationEvent, target: object, cute: object, story: object
) -> NarrationEvent:
    """`event` with its target and its cute/story texts (cleaned like the message).

    A value that is not a str is converted with str(); when that raises, a marked placeholder
    takes its place and `fields["invalid_<name>"]` says why.
    """
    flags: dict[str, str] = {}
    texts = [
        None if value is None else _variant_text(value, name, flags)
        for name, value in (("target", target), ("cute", cute), ("story", story))
    ]
    fields = {**(event.fields or {}), **flags} if flags else event.fields
    return msgspec.structs.replace(
        event,
        target=None if texts[0] is None else clean_action(texts[0])[0],
        cute=None if texts[1] is None else clean_text(texts[1]),
        story=None if texts[2] is None else clean_text(texts[2]),
        fields=fields,
    )


def _variant_text(value: object, name: str, flags: dict[str, str]) -> str:
    if type(value) is str:
        return value
    text, error = safe_str(value)
    if error is not None:
        flags[f"invalid_{name}"] = error
    return text


def _parse_level(level: object, fields: dict[str, Any]) -> tuple[Level, int]:
    """`level` (a name, any case) as a Level and its rank; an unknown one is INFO, flagged."""
    try:
        member = Level.parse(level)  # type: ignore[arg-type]
    except Exception:  # unknown, or an object whose __str__ raises
        fields[INVALID_LEVEL] = safe_repr(level)[:64]
        member = _INFO
    return member, LEVEL_RANK[member]


def _check_types(action: object, message: object) -> tuple[str, str]:
    """Non-str actions or messages are programming errors: fail loudly, at the call site."""
    if not isinstance(action, str):
        raise TypeError(f"narration action must be str, not {type(action).__name__}")
    if not isinstance(message, str):
        raise TypeError(f"narration message must be str, not {type(message).__name__}")
    return str.__str__(action), str.__str__(message)  # a subclass's own __str__ is not run
