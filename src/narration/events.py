"""The event model: one immutable, slotted struct per narration, and its JSON wire form."""

from __future__ import annotations

import threading
import time
from enum import StrEnum
from time import perf_counter as _perf_counter
from typing import Any

import msgspec

from .sanitize import clean_text, safe_repr, safe_str

__all__ = [
    "LEVEL_RANK",
    "Level",
    "Mode",
    "NarrationEvent",
    "decode_event",
    "encode_event",
    "timestamp",
]

# Adding and subtracting 1.5 * 2**52 rounds a float below 2**52 to the nearest integer with two
# float operations (no int object): microseconds since 1970 stay below 2**52 until 2112.
_ROUND = 6755399441055744.0


def timestamp(seconds: float | None = None) -> float:
    """An event's `ts`: Unix seconds (now, or `seconds`) rounded to the microsecond.

    Every event gets its time from here; `n()` inlines the same two lines for speed
    (tests/core/test_events.py checks that they agree).
    """
    t = time.time() if seconds is None else seconds
    return ((t * 1e6 + _ROUND) - _ROUND) / 1e6


class Level(StrEnum):
    """Severity of an event, lowest first; the wire form is the lowercase name."""

    TRACE = "trace"
    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"
    FATAL = "fatal"

    @classmethod
    def parse(cls, value: str | Level) -> Level:
        """Accept a Level, its name or value in any case, and `warning` for `warn`."""
        if isinstance(value, Level):
            return value
        text = str(value).strip().lower()
        if text == "warning":
            text = "warn"
        elif text == "critical":
            text = "fatal"
        try:
            return cls(text)
        except ValueError:
            valid = ", ".join(level.value for level in cls)
            raise ValueError(f"unknown level {value!r}; valid levels: {valid}") from None


LEVEL_RANK: dict[Level, int] = {level: rank for rank, level in enumerate(Level)}


class Mode(StrEnum):
    """Which text a console shows: the plain `human` one, or the `cute`/`story` variant."""

    HUMAN = "human"
    CUTE = "cute"
    STORY = "story"


class NarrationEvent(msgspec.Struct, frozen=True, omit_defaults=True, kw_only=True, gc=False):
    """One narration: what happened, in plain words, and the ids of the job it belongs to.

    Field order is the wire order of docs/ARCHITECTURE.md section 3; empty optional fields are
    omitted.
    `id` is 0 until an event log numbers it (the number is spliced in when it is encoded);
    `ts`, `level`, `actor`, `action` and `human` are always present.
    """

    id: int = 0
    ts: float
    level: Level
    actor: str
    action: str
    target: str | None = None
    human: str
    job_id: str | None = None
    correlation_id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    fn_name: str | None = None
    cute: str | None = None
    story: str | None = None
    origin: str | None = None
    fields: dict[str, Any] | None = None

    def text(self, mode: Mode = Mode.HUMAN) -> str:
        """The text to show in `mode`, falling back to `human` when that variant is absent."""
        if mode is Mode.CUTE and self.cute:
            return self.cute
        if mode is Mode.STORY and self.story:
            return self.story
        return self.human

    def to_dict(self) -> dict[str, Any]:
        """The wire form as a plain dict (optional keys omitted when empty)."""
        result: dict[str, Any] = msgspec.json.decode(encode_event(self))
        return result


_SLOW_REPR_S = 0.1  # a field value's repr slower than this marks its type as slow
_REPR_TYPES_CAP = 4096
# Types whose repr was tried: True (fast enough) or the placeholder its values now get.
_repr_seen: dict[type, str | bool] = {}


def represent(obj: object) -> str:
    """A field value JSON cannot hold, as bounded, printable text: its repr, or a placeholder.

    A repr that raises gives `<unrepresentable T>`. The first value of each type is repr'd on
    a helper thread and waited for at most 0.1 s: a type whose repr takes longer, then or
    later, is marked, and its values encode as `<slow repr: T>` from then on without that
    repr being run again. Long reprs are cut like messages.
    """
    kind = type(obj)
    seen = _repr_seen.get(kind)
    if seen is None:
        return _first_repr(obj, kind)
    if isinstance(seen, str):
        return seen
    start = _perf_counter()
    text = safe_repr(obj)
    if _perf_counter() - start > _SLOW_REPR_S:
        _mark(kind, f"<slow repr: {kind.__name__}>")
    return clean_text(text)


def _first_repr(obj: object, kind: type) -> str:
    """Repr the first value of a type on a thread of its own, so a hung repr cannot hang us."""
    result: list[str] = []
    done = threading.Event()

    def run() -> None:
        result.append(safe_repr(obj))
        done.set()

    try:
        threading.Thread(target=run, name="narration-repr", daemon=True).start()
    except RuntimeError:  # no new threads (interpreter shutdown): time it inline instead
        _mark(kind, True)
        return represent(obj)
    if not done.wait(_SLOW_REPR_S):
        return _mark(kind, f"<slow repr: {kind.__name__}>")
    _mark(kind, True)
    return clean_text(result[0])


def _mark(kind: type, verdict: str | bool) -> str:
    if len(_repr_seen) >= _REPR_TYPES_CAP:
        _repr_seen.clear()
    _repr_seen[kind] = verdict
    return str(verdict)


_encoder = msgspec.json.Encoder(enc_hook=represent)
_decoder = msgspec.json.Decoder(NarrationEvent)
_TEXT_FIELDS = tuple(
    name for name in NarrationEvent.__struct_fields__ if name not in ("id", "ts", "level", "fields")
)


def encode_event(event: NarrationEvent, event_id: int | None = None) -> bytes:
    """JSON bytes of `event`, numbered `event_id` when given (else its own id, if any).

    Never raises: what JSON cannot hold is repaired (see `_encode_repaired`).
    """
    if event_id and event.id:
        event = msgspec.structs.replace(event, id=0)  # a relayed event takes the reader's number
    try:
        body = _encoder.encode(event)
    except Exception:  # a list holding itself, a lone surrogate, a non-str key...
        body = _encode_repaired(event)
    if event_id:
        return b'{"id":%d,' % event_id + body[1:] if len(body) > 2 else b'{"id":%d}' % event_id
    return body


def _encode_repaired(event: NarrationEvent) -> bytes:
    """The event with unencodable fields repr'd and flagged; then, if still needed, its texts
    cleaned like messages; as a last resort a placeholder event saying it could not be encoded.
    """
    if event.fields:
        event = _sanitized_fields(event)
        try:
            return _encoder.encode(event)
        except Exception:
            pass
    texts = {
        name: clean_text(value if type(value) is str else safe_repr(value))
        for name in _TEXT_FIELDS
        if (value := getattr(event, name)) is not None
    }
    try:
        return _encoder.encode(msgspec.structs.replace(event, **texts))
    except Exception:
        placeholder = NarrationEvent(
            ts=timestamp(),
            level=Level.ERROR,
            actor="narration",
            action="unencodable",
            human="<an event that could not be encoded>",
        )
        return _encoder.encode(placeholder)


def _sanitized_fields(event: NarrationEvent) -> NarrationEvent:
    """A copy whose fields have string keys and values JSON can hold (others repr'd), flagged."""
    fields: dict[str, Any] = {}
    for key, value in (event.fields or {}).items():
        try:
            _encoder.encode(value)
        except Exception:
            value = represent(value) if type(value) is not str else safe_repr(value)
        name = key if type(key) is str else safe_str(key)[0]
        fields[name.encode("utf-8", "backslashreplace").decode("utf-8")] = value
    fields["fields_sanitized"] = True
    return msgspec.structs.replace(event, fields=fields)


def decode_event(data: bytes | str) -> NarrationEvent:
    """Parse one event from its JSON wire form; raises `msgspec.ValidationError` if malformed."""
    return _decoder.decode(data)
