"""Per-reader event filters for streams and downloads: a minimum level, actors, actions and a
text to look for. A filtered reader skips what does not match without changing any id, so it
resumes exactly like an unfiltered one (`Last-Event-ID` is the last id it was sent)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import msgspec

from .events import LEVEL_RANK, Level
from .frames import NARRATION, parse_frame, split_frames

__all__ = ["FILTER_PARAMS", "EventFilter"]

FILTER_PARAMS = ("level", "actor", "action", "q")
"""Query parameters read by `EventFilter.from_query` (actor and action: repeated, or
comma-separated)."""

_MAX_TEXT = 256
_RANKS = {level.value: rank for level, rank in LEVEL_RANK.items()}


class _Matched(msgspec.Struct):
    """The parts of an event's JSON a filter looks at (the rest is skipped by the decoder)."""

    level: str
    actor: str
    action: str
    human: str
    cute: str | None = None
    story: str | None = None


_decode = msgspec.json.Decoder(_Matched).decode


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which narration events a reader wants; gaps and the terminal always pass."""

    min_rank: int = 0
    actors: frozenset[str] | None = None
    actions: frozenset[str] | None = None
    text: str | None = None  # lowercased; looked for in human, cute and story

    @classmethod
    def from_query(cls, values: Callable[[str], list[str]]) -> EventFilter | None:
        """The filter a request asks for (None when it asks for none); ValueError, with a
        message naming the parameter, for a bad value. `values(name)` lists its values."""
        level = values("level")
        actors = _names(values("actor"))
        actions = _names(values("action"))
        text = values("q")
        if not (level or actors or actions or text):
            return None
        min_rank = 0
        if level:
            try:
                min_rank = LEVEL_RANK[Level.parse(level[-1])]
            except ValueError as exc:
                raise ValueError(f"level: {exc}") from None
        needle = text[-1].strip().lower() if text else ""
        if len(needle) > _MAX_TEXT:
            raise ValueError(f"q: at most {_MAX_TEXT} characters")
        return cls(min_rank, actors, actions, needle or None)

    def matches(self, data: bytes) -> bool:
        """True when the event JSON `data` passes this filter."""
        try:
            event = _decode(data)
        except msgspec.DecodeError:
            return True  # not ours to judge: let the reader see it
        if _RANKS.get(event.level, 0) < self.min_rank:
            return False
        if self.actors is not None and event.actor not in self.actors:
            return False
        if self.actions is not None and event.action not in self.actions:
            return False
        if self.text is not None:
            needle = self.text
            return (
                needle in event.human.lower()
                or (event.cute is not None and needle in event.cute.lower())
                or (event.story is not None and needle in event.story.lower())
            )
        return True

    def apply(self, pieces: Iterable[bytes]) -> list[bytes]:
        """The frames of `pieces` this reader is sent: matching events, gaps, the terminal."""
        kept: list[bytes] = []
        for raw in split_frames(pieces):
            frame = parse_frame(raw)
            if frame is None or frame.event != NARRATION or self.matches(frame.data):
                kept.append(raw)
        return kept


def _names(values: list[str]) -> frozenset[str] | None:
    names = frozenset(name.strip() for value in values for name in value.split(",") if name.strip())
    return names or None
