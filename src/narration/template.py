"""Safe message templates: `{}`, `{0}` and `{name}` fields only, widths capped.

`str.format` on untrusted text can read attributes and items of its arguments
(`"{0.__init__.__globals__[KEY]}"`) and allocate without bound (`"{:>100000000}"`). A template
is parsed once (cached), and only plain positional or named fields with a format spec of
bounded numbers are formatted; anything else is flagged in `fields["format_error"]` and the
raw template is emitted. More positional arguments than the template uses (for instance a
`%s` template) are flagged too. `n()` inlines the fast path: a cached, plain, positional-only
template given exactly its number of arguments.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from string import Formatter
from typing import Any, NamedTuple

from .sanitize import MAX_MESSAGE_CHARS, clean_text
from .sanitize import describe_error as format_error

__all__ = [
    "INVALID_LEVEL",
    "MAX_FORMAT_WIDTH",
    "POSITIONAL_TEMPLATES",
    "format_error",
    "format_template",
]

INVALID_LEVEL = "invalid_level"  # the flag n() adds for an unknown level, before formatting
MAX_FORMAT_WIDTH = 1000  # the largest width or precision a format spec may ask for
_CACHE_CAP = 4096
_CACHE_MAX_CHARS = 1024  # longer templates are planned on every call, not cached
_NUMBER = re.compile(r"\d+")
_parse = Formatter().parse

# Plain, positional-only templates whose specs need no capping -> (their bound `str.format`,
# how many arguments they use). `n()` calls it directly when given exactly that many.
POSITIONAL_TEMPLATES: dict[str, tuple[Callable[..., str], int]] = {}
# Every planned template (cached up to _CACHE_CAP) -> its _Plan.
_plans: dict[str, _Plan] = {}


def format_template(template: str, args: tuple[Any, ...], fields: dict[str, Any]) -> str:
    """`template` with `args` and the named `fields` filled in; flags problems in `fields`.

    Returns the raw template when it cannot be formatted safely (flagged); a template whose
    widths were capped, or which left positional arguments unused, is formatted and flagged.
    """
    if not args and fields.keys() == {INVALID_LEVEL}:
        return template  # n()'s own flag is not a caller's field: no template without any
    plan = _plans.get(template) or _plan(template)
    if plan.safe is None:
        fields["format_error"] = plan.problem
        return template
    try:
        text = plan.safe.format(*args, **fields)
    except Exception as exc:  # wrong arguments, a bad spec, a raising __format__
        fields["format_error"] = format_error(exc)
        return template
    problem = plan.problem
    if len(args) > plan.positional:
        unused, used = len(args) - plan.positional, plan.positional
        note = (
            f"TypeError: {unused} argument{'s' if unused > 1 else ''} not used: the template"
            f" has {used} positional field{'' if used == 1 else 's'}"
        )
        if "%" in template:
            note += " (%-style templates are not formatted; write {} or {name})"
        problem = f"{problem}; {note}" if problem else note
    if problem:
        fields["format_error"] = problem
    return text


class _Plan(NamedTuple):
    """What checking a template found: the template to format (None: refused), the number of
    positional arguments it takes, whether it has named fields, and a problem to flag."""

    safe: str | None
    positional: int
    named: bool
    problem: str | None


def _plan(template: str) -> _Plan:
    """Check `template` (cached): refuse unsafe fields, cap big numbers in specs, count args."""
    plan = _check(template)
    if len(template) <= _CACHE_MAX_CHARS:
        if len(_plans) >= _CACHE_CAP:
            _plans.clear()
            POSITIONAL_TEMPLATES.clear()
        _plans[template] = plan
        if plan.safe is template and not plan.named and plan.problem is None:
            POSITIONAL_TEMPLATES[template] = (template.format, plan.positional)
    return plan


def _refused(problem: str) -> _Plan:
    return _Plan(None, 0, False, problem)


def _check(template: str) -> _Plan:
    if len(template) > MAX_MESSAGE_CHARS:
        return _refused(f"ValueError: a template over {MAX_MESSAGE_CHARS} chars is not formatted")
    try:
        parts = list(_parse(template))
    except ValueError as exc:
        return _refused(format_error(exc))
    pieces: list[str] = []
    auto, top, named, capped = 0, -1, False, False
    for literal, name, spec, conversion in parts:
        pieces.append(literal.replace("{", "{{").replace("}", "}}"))
        if name is None:
            continue
        if name == "":
            auto += 1
        elif name.isascii() and name.isdecimal():
            top = max(top, int(name))
        elif name.isidentifier():
            named = True
        else:
            return _refused(
                f"ValueError: field {{{clean_text(name, 64)}}} is not formatted: templates take"
                " plain {}, {0} and {name} fields, without attribute or index access"
            )
        if spec and "{" in spec:
            return _refused("ValueError: nested fields in a format spec are not formatted")
        bounded = _NUMBER.sub(_cap, spec) if spec else ""
        capped = capped or bounded != spec
        convert = f"!{conversion}" if conversion else ""
        pieces.append(f"{{{name}{convert}:{bounded}}}" if bounded else f"{{{name}{convert}}}")
    problem = f"ValueError: width or precision over {MAX_FORMAT_WIDTH} capped" if capped else None
    return _Plan("".join(pieces) if capped else template, auto or top + 1, named, problem)


def _cap(match: re.Match[str]) -> str:
    """A number in a format spec, capped at MAX_FORMAT_WIDTH (a leading 0 flag is kept)."""
    digits = match.group()
    if len(digits) <= 4 and int(digits) <= MAX_FORMAT_WIDTH:
        return digits
    return ("0" if digits[0] == "0" else "") + str(MAX_FORMAT_WIDTH)
