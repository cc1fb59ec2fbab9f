"""`configure()`: level threshold, console, JSONL output and extra sinks; env `NARRATION_*`."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import TextIO

from . import environment
from .dispatch import Sink, dispatcher
from .events import LEVEL_RANK, Level, Mode
from .redact import Redaction, set_redaction
from .sinks._writer import QueuedSink
from .sinks.background import BackgroundSink
from .sinks.console import ConsoleSink
from .sinks.jsonl import JsonlSink

__all__ = ["configure", "configure_from_env", "flush"]

_console: ConsoleSink | None = None
_jsonl: JsonlSink | None = None
_extra: tuple[Sink, ...] = ()
_wrapped: tuple[BackgroundSink, ...] = ()  # the BackgroundSinks made for plain callables
_console_ids = False

_TRUE = {"1", "true", "yes", "on"}


def configure(
    *,
    redact: bool | Redaction | None = None,
    level: Level | str | None = None,
    console: bool | None = None,
    mode: Mode | str | None = None,
    color: bool | None = None,
    stream: TextIO | None = None,
    ids: bool | None = None,
    output: str | None = None,
    sinks: Iterable[Sink] | None = None,
) -> None:
    """Set what is emitted and where it goes; arguments left as None keep their setting.

    redact: secrets are redacted from everything that leaves the process (on by default);
    True restores the built-in rules, False turns them off, a `Redaction` adds your own
    patterns and field names (docs/REDACTION.md).

    level: drop events below it before any work is done. console: print events on stderr
    (or `stream`) in `mode` (human, cute, story); `ids=True` adds each event's job id and
    correlation id to its line. output="jsonl": one JSON event per line on stdout (child
    processes), `print()` output kept in order with the events. sinks: extra callables that
    receive every event, each on a background thread of its own (a `QueuedSink` is used as
    it is); replaces the extra sinks given before.
    """
    global _console, _jsonl, _extra, _wrapped
    if redact is not None:  # True: the built-in rules; False: off; a Redaction: yours too
        set_redaction(redact)
    if level is not None:
        dispatcher.min_rank = LEVEL_RANK[Level.parse(level)]
    if any(value is not None for value in (console, mode, color, stream, ids)):
        _configure_console(console, mode, color, stream, ids)
    if output is not None:
        if output not in ("jsonl", "none", ""):
            raise ValueError(f"unknown output {output!r}; valid outputs: jsonl, none")
        if output != "jsonl" and _jsonl is not None:
            dispatcher.remove_sink(_jsonl)
            _jsonl.close()
            _jsonl = None
        elif output == "jsonl" and _jsonl is None:
            _jsonl = JsonlSink.for_stdout()
            dispatcher.add_sink(_jsonl)
    if sinks is not None:
        given = tuple(sinks)
        for sink in _extra:
            dispatcher.remove_sink(sink)
        old = _wrapped
        _extra = tuple(s if isinstance(s, QueuedSink) else _background(s, old) for s in given)
        _wrapped = tuple(
            s for s in _extra if isinstance(s, BackgroundSink) and all(s is not g for g in given)
        )
        for sink in _extra:
            dispatcher.add_sink(sink)
        for stale in old:
            if stale not in _wrapped:
                stale.close()


def _background(fn: Sink, made: tuple[BackgroundSink, ...]) -> BackgroundSink:
    """The BackgroundSink already running `fn`, else a new one."""
    for sink in made:
        if sink.fn is fn:
            return sink
    return BackgroundSink(fn)


def _configure_console(
    console: bool | None,
    mode: Mode | str | None,
    color: bool | None,
    stream: TextIO | None,
    ids: bool | None,
) -> None:
    """Replace the console sink; settings not given are kept from the one it replaces."""
    global _console, _console_ids
    if ids is not None:
        _console_ids = ids
    old = _console
    want = console if console is not None else old is not None
    if old is not None:
        dispatcher.remove_sink(old)
        old.close()
        _console = None
    if not want:
        return
    if color is None and stream is None and old is not None:
        color = old.color
    _console = ConsoleSink(
        stream=stream if stream is not None else (old.stream if old is not None else None),
        mode=Mode(mode) if mode is not None else (old.mode if old is not None else Mode.HUMAN),
        color=color,
        ids=_console_ids,
    )
    dispatcher.add_sink(_console)


def configure_from_env(environ: Mapping[str, str] | None = None) -> None:
    """Apply NARRATION_LEVEL, NARRATION_CONSOLE, NARRATION_CONSOLE_IDS, NARRATION_MODE and
    NARRATION_OUTPUT (see `narration.environment`).

    Importing narration configures nothing; this is the one place output settings come from
    the environment. `init_from_env()`, the server entry points and the `narration` command
    call it; an application calls it when it wants them.
    """
    level = environment.get("NARRATION_LEVEL", environ)
    console = environment.get("NARRATION_CONSOLE", environ)
    ids = environment.get("NARRATION_CONSOLE_IDS", environ)
    mode = environment.get("NARRATION_MODE", environ)
    output = environment.get("NARRATION_OUTPUT", environ)
    try:
        configure(
            level=level,
            console=None if console is None else console.strip().lower() in _TRUE,
            ids=None if ids is None else ids.strip().lower() in _TRUE,
            mode=mode,
            output=output,
        )
    except ValueError as exc:  # a bad env value is reported, not fatal
        print(f"narration: ignoring environment setting: {exc}", file=sys.stderr)


def flush(timeout: float = 5.0) -> None:
    """Wait until the console, JSONL and configured sinks have handled everything so far."""
    for sink in (_console, _jsonl, *_extra):
        if isinstance(sink, QueuedSink):
            sink.flush(timeout)
