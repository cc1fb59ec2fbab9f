"""W3C `tracestate`: parse, limit and format it by the current (Level 2) grammar.

opentelemetry-api's parser follows an older key grammar (it refuses `foo@=1`, 256-character
keys, `t*242@v`) and drops a whole header over one duplicated key; this one follows the spec:

- the header fields are joined with `,`; members are split on `,`, surrounding spaces and tabs
  ignored, empty members skipped;
- key: a lowercase letter or digit, then up to 255 of `a-z 0-9 _ - * / @`;
- value: up to 256 printable ASCII characters but `,` and `=`, not ending in a space;
- a member that breaks the grammar, or more than 32 members, makes the whole header invalid
  (it is then dropped, and the trace still continued);
- a repeated key keeps its first (left-most, most recent) member;
- over 512 characters, whole members are removed: first those longer than 128 characters,
  then from the right.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "MAX_MEMBERS",
    "MAX_TRACESTATE_CHARS",
    "format_tracestate",
    "parse_tracestate",
    "parse_tracestate_members",
    "truncate_tracestate",
]

MAX_MEMBERS = 32
MAX_TRACESTATE_CHARS = 512  # W3C: vendors SHOULD propagate at least this much
LONG_MEMBER_CHARS = 128  # members longer than this go first when truncating
_MEMBER_RE = re.compile(
    r"([a-z0-9][a-z0-9_\-*/@]{0,255})=([\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e])"
)
_OWS = " \t"


def parse_tracestate_members(fields: str | Iterable[str] | None) -> list[tuple[str, str]] | None:
    """The `(key, value)` members of the `tracestate` header field(s), or None when invalid.

    An absent or empty header gives `[]`. See the module docstring for the rules.
    """
    if fields is None:
        return []
    joined = fields if isinstance(fields, str) else ",".join(fields)
    members: list[tuple[str, str]] = []
    seen: set[str] = set()
    count = 0
    for raw in joined.split(","):
        member = raw.strip(_OWS)
        if not member:
            continue
        match = _MEMBER_RE.fullmatch(member)
        if match is None:
            return None
        count += 1
        if count > MAX_MEMBERS:
            return None
        key = match[1]
        if key not in seen:
            seen.add(key)
            members.append((key, match[2]))
    return members


def truncate_tracestate(
    members: list[tuple[str, str]], limit: int = MAX_TRACESTATE_CHARS
) -> list[tuple[str, str]]:
    """`members` cut to at most `limit` characters as a header, whole members only.

    Members longer than 128 characters are removed first (right-most first), then members from
    the right, as the spec says.
    """
    sizes = [len(key) + 1 + len(value) for key, value in members]
    total = sum(sizes) + max(len(members) - 1, 0)
    if total <= limit:
        return members
    keep = [True] * len(members)
    for long_first in (True, False):
        for index in range(len(members) - 1, -1, -1):
            if total <= limit:
                break
            if keep[index] and (not long_first or sizes[index] > LONG_MEMBER_CHARS):
                keep[index] = False
                total -= sizes[index] + 1
    return [member for member, kept in zip(members, keep, strict=True) if kept]


def format_tracestate(members: Iterable[tuple[str, str]]) -> str | None:
    """`key=value,key=value`, or None for no members (an empty header is not sent)."""
    text = ",".join(f"{key}={value}" for key, value in members)
    return text or None


def parse_tracestate(fields: str | Iterable[str] | None) -> str | None:
    """The header value to forward for the received `tracestate` field(s), or None.

    Parsed, de-duplicated and limited to 512 characters; None when absent, empty or invalid.
    """
    members = parse_tracestate_members(fields)
    if not members:
        return None
    return format_tracestate(truncate_tracestate(members))
