"""Cleaning untrusted text so an event is always printable, bounded and safe to stream."""

from __future__ import annotations

import re

__all__ = [
    "MAX_MESSAGE_CHARS",
    "VALID_ACTIONS",
    "clean_action",
    "clean_text",
    "describe_error",
    "safe_repr",
    "safe_str",
]

MAX_MESSAGE_CHARS = 8 * 1024
_ACTION_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_ACTION_BAD_CHARS = re.compile(r"[^A-Za-z0-9_.:-]+")
# C0/C1 controls except \t and \n, DEL, the zero-width / bidi-override characters that hide
# or reorder text on a terminal, and lone surrogates (UTF-8, hence JSON, cannot hold them).
_UNSAFE_CHARS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
    "\ud800-\udfff]"
)
VALID_ACTIONS: set[str] = set()  # actions already seen valid: a set lookup on the hot path
_VALID_ACTIONS_CAP = 4096


def clean_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Strip unsafe characters, then cut to `limit` chars with a visible `… (+N chars)` marker."""
    if not (text.isprintable() and len(text) <= limit):
        text = _UNSAFE_CHARS.sub("", text)
        if len(text) > limit:
            text = f"{text[:limit]}… (+{len(text) - limit} chars)"
    return text


def clean_action(action: str) -> tuple[str, bool]:
    """The action if it is `[A-Za-z0-9_.:-]{1,64}`, else a sanitized one and True (invalid)."""
    if action in VALID_ACTIONS:
        return action, False
    if _ACTION_RE.fullmatch(action):
        if len(VALID_ACTIONS) < _VALID_ACTIONS_CAP:
            VALID_ACTIONS.add(action)
        return action, False
    fixed = _ACTION_BAD_CHARS.sub("_", action.encode("ascii", "replace").decode("ascii"))
    return (fixed.strip("_")[:64] or "invalid"), True


def safe_str(value: object) -> tuple[str, str | None]:
    """`str(value)`, or `<unprintable T>` and the error when its `__str__` raises."""
    try:
        text = str(value)
    except Exception as exc:
        return f"<unprintable {type(value).__name__}>", describe_error(exc)
    return str.__str__(text), None


def safe_repr(value: object) -> str:
    """`repr(value)`, or `<unrepresentable T>` when its `__repr__` raises."""
    try:
        return str.__str__(repr(value))
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


def describe_error(exc: BaseException) -> str:
    """`Type: message` of an exception, even one whose own `__str__` raises."""
    try:
        return clean_text(f"{type(exc).__name__}: {exc}", 512)
    except Exception:
        return type(exc).__name__
