"""Secret redaction: bearer tokens, key/token/secret/password pairs, JWTs, private keys and
passwords in URLs are replaced by a marker before an event leaves the process.

Redaction runs where events are encoded or written (a job log encoding its frames, a sink's
writer thread), never inside `n()`: the event `n()` returns, and what `capture()` records,
is the event as your code made it. Everything that leaves the process (sinks, job logs and
their streams, downloads, the archive, job listings) is redacted. On by default; see
docs/REDACTION.md.

Every built-in pattern runs in time linear in its input: each one starts only where a token
starts (a negative look-behind on the token's own characters) and consumes with possessive
quantifiers or bounded repeats, so no input makes the engine retry a long run from every
position. A cheap substring test gates each pattern, so text without a candidate costs a few
`in` checks, and short texts found clean are remembered (constant messages, field values).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from .events import NarrationEvent

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = [
    "DEFAULT_FIELD_NAMES",
    "MARKER",
    "Redaction",
    "Redactor",
    "current_redactor",
    "drop_job_secrets",
    "hold_job_secrets",
    "redact_batch",
    "redact_event",
    "redact_text",
    "redact_value",
    "secret_values",
    "set_redaction",
]

MARKER = "[REDACTED]"

DEFAULT_FIELD_NAMES = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "access_key",
        "secret_key",
        "private_key",
        "client_secret",
        "authorization",
        "auth",
        "cookie",
        "set_cookie",
        "session",
        "credentials",
    }
)
"""Field names whose whole value is masked (compared lowercased, `-` read as `_`); names
ending in `_password`, `_passwd`, `_secret`, `_token`, `_api_key` or `_apikey` too."""

_NAME_SUFFIXES = ("_password", "_passwd", "_secret", "_token", "_api_key", "_apikey")
_MAX_DEPTH = 8  # nested field values deeper than this are left as they are
_MIN_JOB_SECRET = 4  # shorter SecretStr values would mask ordinary text: not held
_NAME_CACHE_CAP = 4096
_CLEAN_CACHE_CAP = 4096  # texts remembered clean (each at most _CLEAN_TEXT_CHARS)
_CLEAN_TEXT_CHARS = 200

# ----------------------------------------------------------------------------- patterns
# Group `keep` (when present) stays in front of the marker; a quoted `value` keeps its quotes.

_BEARER = re.compile(r"(?P<keep>(?<![A-Za-z0-9_])(?i:bearer)\s++)[A-Za-z0-9\-._~+/]++=*+")
# A key ending in a keyword (`password`, `DB_PASSWORD`, `x-api-key`, `accessToken`), then
# `=` or `:`, then the value (quoted, or up to a space or separator).
_PAIR = re.compile(
    r"(?P<keep>(?:(?<![A-Za-z0-9])"
    r"(?i:api[_-]?key|access[_-]?key|token|secret|passw(?:or)?d|pwd|authorization|credentials?)"
    r"|(?<=[a-z])(?:Token|Secret|Password|Passwd|ApiKey|AccessKey|Credentials?))"
    r"[\"']?+\s*+[=:]\s*+(?:(?i:bearer|basic|token|digest)\s++)?+)"
    r"(?P<value>\"(?:[^\"\\\n]|\\.)*+\"?|'[^'\n]*+'?|[^\s\"',;&]++)"
)
_JWT = re.compile(r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]++\.[A-Za-z0-9_\-]++\.[A-Za-z0-9_\-]*+")
_PRIVATE_KEY = re.compile(
    r"-----BEGIN[ A-Z0-9]{0,64}PRIVATE KEY-----[^-]*+(?:-----END[ A-Z0-9]{0,64}PRIVATE KEY-----)?+"
)
_URL_PASSWORD = re.compile(r"(?P<keep>://[^\s:/?#@]*+:)[^\s/?#]+(?=@)")
_KNOWN_TOKENS = re.compile(
    r"(?<![A-Za-z0-9_\-])(?:gh[pousr]_[A-Za-z0-9]{30,}+|github_pat_[A-Za-z0-9_]{30,}+"
    r"|xox[abprs]-[A-Za-z0-9\-]{10,}+|AKIA[0-9A-Z]{16}(?![0-9A-Z])"
    r"|[sr]k_(?:live|test)_[A-Za-z0-9]{10,}+)"
)
_PAIR_WORDS = re.compile(r"key|token|secret|passw|pwd|auth|credential")


def _builtin(text: str, replace: Callable[[re.Match[str]], str]) -> str:
    """`text` through the built-in patterns, each gated by a substring test (inline `in`
    checks: this runs for every text that leaves the process)."""
    if "=" in text or ":" in text:
        lowered = text.lower()
        if "://" in text and "@" in text:
            text = _URL_PASSWORD.sub(replace, text)
        if _PAIR_WORDS.search(lowered) is not None:
            text = _PAIR.sub(replace, text)
        bearer = "bearer" in lowered
    else:
        bearer = "earer" in text or "EARER" in text
    if bearer:
        text = _BEARER.sub(replace, text)
    if "eyJ" in text:
        text = _JWT.sub(replace, text)
    if "PRIVATE KEY" in text:
        text = _PRIVATE_KEY.sub(replace, text)
    if "_" in text or "xox" in text or "AKIA" in text:
        text = _KNOWN_TOKENS.sub(replace, text)
    return text


@dataclass(frozen=True, slots=True)
class Redaction:
    """What to redact: the built-in rules (`defaults`), plus your `patterns` and `fields`.

    `patterns` are regular expressions (text or compiled); a match is replaced by `marker`,
    or only its group named `secret` when it has one (`r"acct=(?P<secret>\\d{6})"` keeps
    `acct=`). They run on every text, so keep them linear: anchor them, and use possessive
    quantifiers (`++`, `*+`) or bounded repeats. `fields` are field names whose whole value
    is masked, added to `DEFAULT_FIELD_NAMES` (unless `defaults=False`).
    """

    patterns: Sequence[str | re.Pattern[str]] = ()
    fields: Iterable[str] = ()
    defaults: bool = True
    marker: str = MARKER


class Redactor:
    """Applies one `Redaction` to texts, field values and events; returns its input object
    itself when nothing in it had to change (so clean events are not copied)."""

    def __init__(self, redaction: Redaction | None = None) -> None:
        rules = redaction or Redaction()
        self.redaction = rules
        self.marker = rules.marker
        self._defaults = rules.defaults
        self._custom = tuple(re.compile(p) if isinstance(p, str) else p for p in rules.patterns)
        names = set(DEFAULT_FIELD_NAMES) if rules.defaults else set()
        names.update(_normal(name) for name in rules.fields)
        self._names = frozenset(names)
        self._suffixes = _NAME_SUFFIXES if rules.defaults else ()
        self._name_verdicts: dict[str, bool] = {}
        self._clean: dict[str, None] = {}  # short texts found clean: constant messages, hosts…
        self._replace_builtin = self._replace  # bound once: `text` runs for every text

    # ------------------------------------------------------------------ texts

    def text(self, text: str, literals: Sequence[str] = ()) -> str:
        """`text` with every secret replaced by the marker (`text` itself when clean)."""
        if self._custom or "=" in text or ":" in text:
            out = self._text_remembered(text)
        elif self._defaults:  # only the cheap substring gates apply: no cache needed
            out = _builtin(text, self._replace_builtin)
        else:
            out = text
        if literals:
            for literal in literals:
                if literal in out:
                    out = out.replace(literal, self.marker)
        return out

    def _text_remembered(self, text: str) -> str:
        """`text` through every rule, short clean texts remembered (constant messages with a
        `key=value` or `host:port` in them would otherwise run the pair regexes each time)."""
        clean = self._clean
        if text in clean:
            return text
        out = _builtin(text, self._replace_builtin) if self._defaults else text
        for custom in self._custom:
            out = custom.sub(self._replace_custom, out)
        if out is text and len(text) <= _CLEAN_TEXT_CHARS:
            if len(clean) >= _CLEAN_CACHE_CAP:
                clean.clear()
            clean[text] = None
        return out

    def _replace(self, match: re.Match[str]) -> str:
        groups = match.groupdict()
        keep = groups.get("keep") or ""
        value = groups.get("value")
        if value and value[0] in "\"'":  # a quoted value keeps its quotes
            closing = value[0] if len(value) > 1 and value[-1] == value[0] else ""
            return f"{keep}{value[0]}{self.marker}{closing}"
        return keep + self.marker

    def _replace_custom(self, match: re.Match[str]) -> str:
        if "secret" in match.re.groupindex and match.group("secret") is not None:
            whole, start = match.group(), match.start()
            head = whole[: match.start("secret") - start]
            tail = whole[match.end("secret") - start :]
            return head + self.marker + tail
        return self.marker

    # ------------------------------------------------------------------ values

    def sensitive_name(self, name: str) -> bool:
        """True when a field called `name` has its whole value masked."""
        verdict = self._name_verdicts.get(name)
        if verdict is None:
            normal = _normal(name)
            verdict = normal in self._names or normal.endswith(self._suffixes)
            if len(self._name_verdicts) >= _NAME_CACHE_CAP:
                self._name_verdicts.clear()
            self._name_verdicts[name] = verdict
        return verdict

    def value(self, value: Any, literals: Sequence[str] = (), depth: int = 0) -> Any:
        """`value` with secrets in its strings redacted and sensitive keys masked (dicts,
        lists and tuples are walked; other values are returned as they are)."""
        kind = type(value)
        if kind is str:
            return self.text(value, literals)
        if depth >= _MAX_DEPTH:
            return value
        if kind is dict:
            changed = False
            result: dict[Any, Any] = {}
            for key, item in value.items():
                if type(key) is str and self.sensitive_name(key) and item is not None:
                    new: Any = self.marker
                else:
                    new = self.value(item, literals, depth + 1)
                changed = changed or new is not item
                result[key] = new
            return result if changed else value
        if kind is list or kind is tuple:
            items = [self.value(item, literals, depth + 1) for item in value]
            if all(new is old for new, old in zip(items, value, strict=True)):
                return value
            return items
        return value

    def fields(self, fields: dict[str, Any], literals: Sequence[str] = ()) -> dict[str, Any]:
        """An event's fields redacted (`fields` itself when clean).

        Values JSON holds only through their repr, or as objects (dataclasses, structs), are
        first turned into the JSON values they would be encoded as, so their text is
        redacted too.
        """
        verdicts = self._name_verdicts
        out: dict[str, Any] | None = None
        for key, item in fields.items():
            kind = type(item)
            if (kind is int or kind is float) and verdicts.get(key) is False:
                continue  # the common case first: a number under a name known not sensitive
            sensitive = verdicts.get(key)
            if sensitive is None:
                sensitive = self.sensitive_name(key) if type(key) is str else False
            if sensitive and item is not None:
                new: Any = self.marker
            elif kind is str:
                new = self.text(item, literals)
            elif kind in _SCALARS:
                continue
            elif kind is dict or kind is list or kind is tuple:
                new = self.value(item, literals, 1)
            else:
                return self._fields_as_json(fields, literals)
            if new is not item:
                if out is None:
                    out = dict(fields)
                out[key] = new
        return fields if out is None else out

    def _fields_as_json(self, fields: dict[str, Any], literals: Sequence[str]) -> dict[str, Any]:
        """`fields` holding objects: redacted as the JSON they encode to (as they are, when
        they cannot be encoded: the encoder repairs those later)."""
        result: dict[str, Any] = self.value(_as_json(fields) or fields, literals)
        return result

    # ------------------------------------------------------------------ events

    def event(self, event: NarrationEvent) -> NarrationEvent:
        """`event` with its texts and field values redacted (the same object if clean)."""
        job_id = event.job_id
        literals = _job_secrets.get(job_id, ()) if job_id and _job_secrets else ()
        text = self.text
        human = text(event.human, literals)
        cute = event.cute
        if cute is not None:
            cute = text(cute, literals)
        story = event.story
        if story is not None:
            story = text(story, literals)
        fields = event.fields
        if fields:
            fields = self.fields(fields, literals)
        if (
            human is event.human
            and cute is event.cute
            and story is event.story
            and fields is event.fields
        ):
            return event
        return msgspec.structs.replace(event, human=human, cute=cute, story=story, fields=fields)


_SCALARS = frozenset({int, float, bool, type(None)})


def _normal(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _as_json(fields: dict[str, Any]) -> dict[str, Any] | None:
    """`fields` as the JSON values the event encoder makes of them (reprs included), or None
    when they cannot be encoded."""
    from .events import _encoder  # the event encoder: the same hook for what JSON cannot hold

    try:
        decoded = msgspec.json.decode(_encoder.encode(fields))
    except Exception:
        return None
    return decoded if isinstance(decoded, dict) else None


# ----------------------------------------------------------------------------- state

_redactor: Redactor | None = Redactor()
_job_secrets: dict[str, tuple[str, ...]] = {}
_OFF = Redactor(Redaction(defaults=False))  # applies job secrets only


def set_redaction(redaction: bool | Redaction) -> None:
    """Turn redaction on (`True`: the built-in rules), off (`False`), or to `redaction`.

    `configure(redact=...)` calls this. Off, only the values of a job's `SecretStr` fields
    are still masked in its events.
    """
    global _redactor
    if redaction is True:
        _redactor = Redactor()
    elif redaction is False:
        _redactor = None
    elif isinstance(redaction, Redaction):
        _redactor = Redactor(redaction)
    else:
        raise TypeError(f"redact must be True, False or a Redaction, not {redaction!r}")


def current_redactor() -> Redactor:
    """The redactor in force (with redaction off, one that masks job secrets only)."""
    return _redactor or _OFF


def redact_event(event: NarrationEvent) -> NarrationEvent:
    """`event` as it may leave the process (the same object when nothing was redacted)."""
    redactor = _redactor
    if redactor is None:
        if not (event.job_id and event.job_id in _job_secrets):
            return event
        redactor = _OFF
    return redactor.event(event)


def redact_batch(batch: list[Any]) -> list[Any]:
    """A sink's batch with each event redacted (other items, e.g. raw bytes, as they are)."""
    return [redact_event(item) if type(item) is NarrationEvent else item for item in batch]


def redact_text(text: str, job_id: str | None = None) -> str:
    """`text` redacted (and the secrets held for `job_id`, if any)."""
    literals = _job_secrets.get(job_id, ()) if job_id else ()
    return current_redactor().text(text, literals)


def redact_value(value: Any, job_id: str | None = None) -> Any:
    """A JSON-like value (a job's operation, say) redacted: strings, and sensitive keys."""
    literals = _job_secrets.get(job_id, ()) if job_id else ()
    return current_redactor().value(value, literals)


def hold_job_secrets(job_id: str, values: Iterable[str]) -> None:
    """Mask these exact strings (a job's `SecretStr` values) in that job's events from now on.

    Values shorter than 4 characters are not held (they would mask ordinary words).
    """
    held = tuple(sorted({v for v in values if len(v) >= _MIN_JOB_SECRET}, key=len, reverse=True))
    if held:
        _job_secrets[job_id] = held


def drop_job_secrets(job_id: str, after_s: float = 0.0) -> None:
    """Forget the secrets held for `job_id` (its events are all written), now or `after_s`
    seconds from now (on the running event loop)."""
    if job_id not in _job_secrets:
        return
    if after_s > 0:
        asyncio.get_running_loop().call_later(after_s, _job_secrets.pop, job_id, None)
    else:
        _job_secrets.pop(job_id, None)


def secret_values(model: BaseModel | Mapping[str, Any] | Any, depth: int = 0) -> list[str]:
    """The plain values of every `SecretStr`/`SecretBytes` in a pydantic model, walking nested
    models, lists, tuples, sets and dicts."""
    from pydantic import BaseModel, SecretBytes, SecretStr

    found: list[str] = []
    if depth > _MAX_DEPTH:
        return found
    if isinstance(model, SecretStr):
        found.append(model.get_secret_value())
    elif isinstance(model, SecretBytes):
        found.append(model.get_secret_value().decode("utf-8", "replace"))
    elif isinstance(model, BaseModel):
        for name in type(model).model_fields:
            found += secret_values(getattr(model, name, None), depth + 1)
    elif isinstance(model, Mapping):
        for item in model.values():
            found += secret_values(item, depth + 1)
    elif isinstance(model, list | tuple | set | frozenset):
        for item in model:
            found += secret_values(item, depth + 1)
    return found
