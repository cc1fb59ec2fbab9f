"""Encoding an event for a stream within bounds: sizes capped, separators escaped, and any user
code (a field value's `repr`) kept off the event loop and limited in time.

`encode_now(event, id, caps)` encodes what JSON can hold as it is (the common case, on the event
loop) and returns None when a value needs user code; `await encode_off_loop(...)` then runs the
repr fallback of `events.encode_event` in a worker thread and, past `caps.repr_timeout_s`, gives
a placeholder instead (the values JSON cannot hold become `<TypeName: ...>`, flagged with
`fields_sanitized`). Either way the event keeps its id, so a stream always moves on to its
terminal. Both cut a field whose JSON is over `caps.max_field_bytes` (its JSON text, cut, with
`… (+N bytes)`; its name listed in `fields_truncated`) and keep the whole event within
`caps.max_event_bytes`. U+2028, U+2029 and U+0085 are escaped, so no line-splitting reader can
see a frame break where there is none.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import msgspec

from .events import NarrationEvent, decode_event, encode_event
from .redact import redact_event

__all__ = [
    "EventCaps",
    "encode_now",
    "encode_off_loop",
    "escape_separators",
    "placeholder_encoding",
]

_SEPARATORS = (
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
    ("\u0085".encode(), b"\\u0085"),
)
_WORKERS = 4  # threads running slow reprs; a stuck one only makes later events time out
_MIN_CUT = 64  # a field is never cut below this many bytes while others are larger


@dataclass(frozen=True, slots=True)
class EventCaps:
    """Bounds on one encoded event (see the module docstring)."""

    max_event_bytes: int = 64 * 1024
    max_field_bytes: int = 16 * 1024
    repr_timeout_s: float = 0.25

    def __post_init__(self) -> None:
        if not 1024 <= self.max_field_bytes <= self.max_event_bytes:
            raise ValueError("need 1024 <= max_field_bytes <= max_event_bytes")
        if self.repr_timeout_s <= 0:
            raise ValueError("repr_timeout_s must be > 0")


class _NeedsUserCode(Exception):
    """A value JSON cannot hold as it is: encoding it would run its `repr`."""


def _strict_hook(obj: Any) -> Any:
    """Values whose repr is known to be quick and safe; anything else needs the slow path."""
    kind = type(obj)
    if kind.__repr__ is object.__repr__ or isinstance(  # type: ignore[comparison-overlap]
        obj, PurePath | ipaddress.IPv4Address | ipaddress.IPv6Address
    ):
        return repr(obj)
    raise _NeedsUserCode


_strict = msgspec.json.Encoder(enc_hook=_strict_hook)


def escape_separators(body: bytes) -> bytes:
    """`body` with U+2028, U+2029 and U+0085 written as JSON escapes (same JSON value)."""
    if body.isascii():
        return body
    for raw, escaped in _SEPARATORS:
        if raw in body:
            body = body.replace(raw, escaped)
    return body


def _numbered(body: bytes, event_id: int | None) -> bytes:
    if event_id:
        return b'{"id":%d,' % event_id + body[1:] if len(body) > 2 else b'{"id":%d}' % event_id
    return body


def encode_now(
    event: NarrationEvent, event_id: int | None = None, caps: EventCaps | None = None
) -> bytes | None:
    """The bounded JSON of `event` (numbered `event_id`), its secrets redacted, or None if it
    needs user code (then `encode_off_loop` runs that in a worker thread)."""
    caps = caps or _DEFAULT_CAPS
    if event_id and event.id != event_id:  # `id` is the first field: the encoder numbers it
        event = msgspec.structs.replace(event, id=event_id)  # (a relayed one's id replaced)
    try:
        body = _strict.encode(event)
        redacted = redact_event(event)  # plain JSON values only here: no user code runs
        if redacted is not event:
            event, body = redacted, _strict.encode(redacted)
        if len(body) > caps.max_field_bytes:
            body = _capped(event, body, caps)
    except Exception:  # a value needing its repr, a bad key, too deep: the slow path decides
        return None
    return body if body.isascii() else escape_separators(body)


def _capped(event: NarrationEvent, body: bytes, caps: EventCaps) -> bytes:
    """`body` with each field over `max_field_bytes` cut, and the event within
    `max_event_bytes` (fields cut further, then the texts); every cut is marked and listed."""
    fields = event.fields or {}
    sizes = {key: len(_strict.encode(value)) for key, value in fields.items()}
    limit = caps.max_field_bytes
    while True:
        cut = {key: _cut(fields[key], limit) for key, size in sizes.items() if size > limit}
        if cut:
            listed = sorted(str(key) for key in cut)
            capped = msgspec.structs.replace(
                event, fields={**fields, **cut, "fields_truncated": listed}
            )
            body = _strict.encode(capped)
        if len(body) <= caps.max_event_bytes or limit <= _MIN_CUT:
            break
        limit //= 2
    if len(body) > caps.max_event_bytes:  # the texts, or a great many fields: last resort
        body = _strict.encode(_shrunk(event, caps.max_event_bytes))
    return body


def _cut(value: Any, limit: int) -> str:
    """`value` (a string, or else its JSON text) cut so its JSON is at most `limit` bytes,
    ending with a visible `… (+N bytes)` marker."""
    raw = value.encode("utf-8", "replace") if type(value) is str else _strict.encode(value)
    keep = limit - 32
    while True:
        text = raw[: max(keep, 0)].decode("utf-8", "ignore")
        cut = f"{text}… (+{len(raw) - len(text.encode())} bytes)"
        size = len(_strict.encode(cut))
        if size <= limit or keep <= 0:
            return cut
        keep -= size - limit + 8  # escapes made it longer: take that much less


def _shrunk(event: NarrationEvent, max_bytes: int) -> NarrationEvent:
    """`event` with its fields reduced to a note and its texts cut to fit `max_bytes`."""
    fields = event.fields or {}
    budget = max(max_bytes // 8, 256)
    note: dict[str, Any] = {"fields_truncated": True, "fields_dropped": len(fields)}

    def cut(text: str | None) -> str | None:
        if text is None or len(text.encode()) <= budget:
            return text
        head = text.encode()[:budget].decode("utf-8", "ignore")
        return f"{head}… (+{len(text) - len(head)} chars)"

    return msgspec.structs.replace(
        event,
        human=cut(event.human) or "",
        cute=cut(event.cute),
        story=cut(event.story),
        fields=note if fields else None,
    )


def placeholder_encoding(
    event: NarrationEvent, event_id: int | None, caps: EventCaps, why: str
) -> bytes:
    """The event with every value JSON cannot hold as it is replaced by `<TypeName: why>`
    (no user code runs), flagged `fields_sanitized`."""
    fields: dict[str, Any] = {}
    for index, (key, value) in enumerate((event.fields or {}).items()):
        name = key if type(key) is str else f"<{type(key).__name__} key #{index}>"
        try:
            _strict.encode(value)
        except Exception:
            value = f"<{type(value).__name__}: {why}>"
        fields[name] = value
    fields["fields_sanitized"] = True
    plain = msgspec.structs.replace(event, fields=fields)
    return (
        encode_now(plain, event_id, caps)
        or encode_now(_scrubbed(plain), event_id, caps)
        or _numbered(b"{}", event_id)
    )


def _scrubbed(event: NarrationEvent) -> NarrationEvent:
    """`event` with every text UTF-8 can hold (lone surrogates become `?`)."""

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            return value.encode("utf-8", "replace").decode("utf-8")
        if isinstance(value, dict):
            return {scrub(str(key)): scrub(item) for key, item in value.items()}
        return value

    changes = {
        name: scrub(getattr(event, name))
        for name in event.__struct_fields__
        if isinstance(getattr(event, name), str | dict)
    }
    return msgspec.structs.replace(event, **changes)


def _encode_with_user_code(event: NarrationEvent, event_id: int | None, caps: EventCaps) -> bytes:
    """The full encoding (reprs included), then bounded: runs in a worker thread."""
    body = encode_event(event, event_id)
    plain = decode_event(body)  # every field value is plain JSON now
    return encode_now(plain, event_id, caps) or placeholder_encoding(
        event, event_id, caps, "not encodable"
    )


# --------------------------------------------------------------------------- worker threads

_Job = tuple[Callable[[], bytes], asyncio.AbstractEventLoop, "asyncio.Future[bytes]"]
_jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
_started = 0
_start_lock = threading.Lock()


def _work() -> None:
    while True:
        call, loop, future = _jobs.get()
        if future.done():  # timed out while queued: nobody waits for it
            continue
        try:
            result = call()
        except BaseException as exc:  # handed back to the waiting coroutine
            _hand_back(loop, future, exc)
        else:
            _hand_back(loop, future, result)


def _hand_back(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[bytes], outcome: Any
) -> None:
    def settle() -> None:
        if future.done():
            return
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

    if not loop.is_closed():
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(settle)


def _ensure_workers() -> None:
    """Start the daemon worker threads once (daemons: a repr that never returns cannot keep
    the process from exiting)."""
    global _started
    if _started:
        return
    with _start_lock:
        while _started < _WORKERS:
            threading.Thread(target=_work, name="narration-encode", daemon=True).start()
            _started += 1


async def encode_off_loop(
    event: NarrationEvent, event_id: int | None = None, caps: EventCaps | None = None
) -> bytes:
    """The bounded JSON of `event`, its reprs run in a worker thread; a placeholder if that
    takes over `caps.repr_timeout_s` or fails."""
    caps = caps or _DEFAULT_CAPS
    _ensure_workers()
    loop = asyncio.get_running_loop()
    future: asyncio.Future[bytes] = loop.create_future()
    _jobs.put((lambda: _encode_with_user_code(event, event_id, caps), loop, future))
    try:
        return await asyncio.wait_for(future, caps.repr_timeout_s)
    except TimeoutError:
        why = f"repr took over {caps.repr_timeout_s:g} s"
    except Exception as exc:
        why = f"not encodable ({type(exc).__name__})"
    return placeholder_encoding(event, event_id, caps, why)


_DEFAULT_CAPS = EventCaps()
