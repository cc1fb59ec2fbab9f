"""`configure()`: level threshold, console, JSONL output and extra sinks; env `NARRATION_*`."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TextIO

from .dispatch import Sink, dispatcher
from .events import LEVEL_RANK, Level, Mode
from .redact import Redaction, set_redaction
from .sinks.console import ConsoleSink
from .sinks.jsonl import JsonlSink

__all__ = ["configure", "configure_from_env", "flush"]

_console: ConsoleSink | None = None
_jsonl: JsonlSink | None = None
_extra: tuple[Sink, ...] = ()

_TRUE = {"1", "true", "yes", "on"}


def configure(
    *,
    redact: bool | Redaction | None = None,
    level: Level | str | None = None,
    console: bool | None = None,
    mode: Mode | str | None = None,
    color: bool | None = None,
    stream: TextIO | None = None,
    output: str | None = None,
    sinks: Iterable[Sink] | None = None,
) -> None:
    """Set what is emitted and where it goes; arguments left as None keep their setting.

    redact: secrets are redacted from everything that leaves the process (on by default);
    True restores the built-in rules, False turns them off, a `Redaction` adds your own
    patterns and field names (docs/REDACTION.md).

    level: drop events below it before any work is done. console: print events on stderr
    (or `stream`) in `mode` (human, cute, story). output="jsonl": one JSON event per line on
    stdout (child processes). sinks: extra callables that receive every event (replaces the
    extra sinks given before).
    """
    global _console, _jsonl, _extra
    if redact is not None:  # True: the built-in rules; False: off; a Redaction: yours too
        set_redaction(redact)
    if level is not None:
        dispatcher.min_rank = LEVEL_RANK[Level.parse(level)]
    if console is not None or mode is not None or color is not None or stream is not None:
        want = console if console is not None else _console is not None
        if _console is not None:
            dispatcher.remove_sink(_console)
            _console.close()
            _console = None
        if want:
            _console = ConsoleSink(stream=stream, mode=Mode(mode or Mode.HUMAN), color=color)
            dispatcher.add_sink(_console)
    if output is not None:
        if output not in ("jsonl", "none", ""):
            raise ValueError(f"unknown output {output!r}; valid outputs: jsonl, none")
        if _jsonl is not None:
            dispatcher.remove_sink(_jsonl)
            _jsonl.close()
            _jsonl = None
        if output == "jsonl":
            _jsonl = JsonlSink()
            dispatcher.add_sink(_jsonl)
    if sinks is not None:
        for sink in _extra:
            dispatcher.remove_sink(sink)
        _extra = tuple(sinks)
        for sink in _extra:
            dispatcher.add_sink(sink)


def configure_from_env(environ: dict[str, str] | None = None) -> None:
    """Apply NARRATION_LEVEL, NARRATION_CONSOLE, NARRATION_MODE and NARRATION_OUTPUT."""
    env = os.environ if environ is None else environ
    level = env.get("NARRATION_LEVEL") or None
    console = env.get("NARRATION_CONSOLE")
    mode = env.get("NARRATION_MODE") or None
    output = env.get("NARRATION_OUTPUT") or None
    try:
        configure(
            level=level,
            console=None if console is None else console.strip().lower() in _TRUE,
            mode=mode,
            output=output,
        )
    except ValueError as exc:  # a bad env value must not make `import narration` fail
        print(f"narration: ignoring environment setting: {exc}", file=sys.stderr)


def flush(timeout: float = 5.0) -> None:
    """Wait until the console and JSONL sinks have written everything emitted so far."""
    for sink in (_console, _jsonl):
        if sink is not None:
            sink.flush(timeout)
