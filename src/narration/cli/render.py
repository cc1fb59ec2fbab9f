"""Rendering a job's stream for a terminal: one line per event, styled by actor and level."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rich.console import Console
from rich.text import Text

from ..client import Gap, Terminal
from ..events import Level, NarrationEvent

__all__ = ["Printer", "render_event"]

_LEVEL_STYLE = {
    Level.TRACE: "dim",
    Level.DEBUG: "dim",
    Level.INFO: "",
    Level.WARN: "yellow",
    Level.ERROR: "bold red",
    Level.FATAL: "bold white on red",
}
_ACTOR_STYLE = {"queen": "magenta", "hive": "cyan", "worker": "green"}


@dataclass
class Printer:
    """Prints a job's stream: one line per event; `ids` adds each event's ids; with `keep`,
    the events are also collected in `events`."""

    console: Console
    ids: bool = False
    keep: bool = False
    events: list[NarrationEvent] = field(default_factory=list)

    def event(self, event: NarrationEvent) -> None:
        if self.keep:
            self.events.append(event)
        self.console.print(render_event(event, self.ids))

    def gap(self, gap: Gap) -> None:
        self.console.print(
            Text(f"… {gap.missed} event(s) dropped by the server (next id {gap.next_id})", "yellow")
        )

    def terminal(self, terminal: Terminal) -> None:
        if terminal.state == "completed":
            self.console.print(Text(f"✔ done ({terminal.job_id})", "bold green"))
        elif terminal.state == "cancelled":
            reason = f": {terminal.error}" if terminal.error else ""
            self.console.print(Text(f"■ cancelled ({terminal.job_id}){reason}", "bold yellow"))
        else:
            self.console.print(
                Text(f"✖ error ({terminal.job_id}): {terminal.error or 'failed'}", "bold red")
            )

    def note(self, text: str, style: str = "dim") -> None:
        self.console.print(Text(text, style))


def render_event(event: NarrationEvent, ids: bool = False) -> Text:
    """`HH:MM:SS.mmm actor    action         message`, styled by actor and level."""
    clock = time.strftime("%H:%M:%S", time.localtime(event.ts))
    clock += f".{int(event.ts * 1000) % 1000:03d}"
    line = Text()
    line.append(clock, "dim")
    line.append(" ")
    line.append(f"{event.actor:<7}", _ACTOR_STYLE.get(event.actor, "blue"))
    line.append(" ")
    line.append(f"{event.action:<13}", "bold")
    line.append(" ")
    text = event.human
    if event.level not in (Level.INFO, Level.DEBUG, Level.TRACE):
        text = f"[{event.level.value}] {text}"
    line.append(text, _LEVEL_STYLE.get(event.level, ""))
    if ids:
        parts = [
            f"corr={event.correlation_id}",
            f"trace={(event.trace_id or '-')[:8]}…",
            f"span={(event.span_id or '-')[:8]}…",
        ]
        if event.origin:
            parts.append(f"origin={event.origin}")
        line.append("  " + " ".join(parts), "dim")
    return line
