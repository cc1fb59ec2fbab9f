"""The event model: one immutable, slotted struct per narration, and its JSON wire form."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec

__all__ = ["LEVEL_RANK", "Level", "Mode", "NarrationEvent", "decode_event", "encode_event"]


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

    Field order is the wire order of DESIGN.md section 3; empty optional fields are omitted.
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


def _fallback(obj: Any) -> Any:
    """Encode what JSON cannot hold as its repr, so bad field values never break a stream."""
    try:
        return repr(obj)
    except Exception:  # a hostile __repr__ must not break encoding either
        return f"<unrepresentable {type(obj).__name__}>"


_encoder = msgspec.json.Encoder(enc_hook=_fallback)
_decoder = msgspec.json.Decoder(NarrationEvent)


def encode_event(event: NarrationEvent, event_id: int | None = None) -> bytes:
    """JSON bytes of `event`, numbered `event_id` when given (else its own id, if any)."""
    if event_id and event.id:
        event = msgspec.structs.replace(event, id=0)  # a relayed event takes the reader's number
    try:
        body = _encoder.encode(event)
    except (TypeError, ValueError, OverflowError, RecursionError):  # e.g. a list holding itself
        body = _encoder.encode(_sanitized_fields(event))
    if event_id:
        return b'{"id":%d,' % event_id + body[1:] if len(body) > 2 else b'{"id":%d}' % event_id
    return body


def _sanitized_fields(event: NarrationEvent) -> NarrationEvent:
    """A copy whose fields have string keys and repr'd values: JSON can always hold it."""
    fields = {
        str(key).encode("utf-8", "backslashreplace").decode("utf-8"): _fallback(value)
        for key, value in (event.fields or {}).items()
    }
    fields["fields_sanitized"] = True
    return msgspec.structs.replace(event, fields=fields)


def decode_event(data: bytes | str) -> NarrationEvent:
    """Parse one event from its JSON wire form; raises `msgspec.ValidationError` if malformed."""
    return _decoder.decode(data)
