"""The store's options: from the URL's query, else from env, else the defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ... import environment

__all__ = ["RedisOptions", "without_query_key"]


@dataclass(frozen=True, slots=True)
class RedisOptions:
    """What a `RedisStore` can be told (URL query keys and env names in brackets).

    - `prefix` [`prefix`, `NARRATION_REDIS_PREFIX`]: key prefix, to share one Redis database.
    - `lease_ttl_s` [`lease_ttl`, `NARRATION_LEASE_TTL_S`]: a dead owner's jobs end within this.
    - `max_pending` [`max_pending`, `NARRATION_REDIS_MAX_PENDING`]: events buffered while
      Redis is unreachable, before the oldest are dropped (and reported as a gap).
    - `retention_s` [`retention`, `NARRATION_RETENTION_S`]: how long a finished job is kept
      when no `expire()` follows (owner lost, or Redis unreachable at that moment). A server
      passes its own `retention_s` setting, which the URL's `retention` still overrides.
    - `reaper`: look for jobs of dead owners (always on in servers; tests turn it off).
    """

    prefix: str = "narration:"
    lease_ttl_s: float = 10.0
    max_pending: int = 100_000
    retention_s: float = 600.0
    reaper: bool = True

    _QUERY: ClassVar[dict[str, str]] = {
        "prefix": "prefix",
        "lease_ttl": "lease_ttl_s",
        "max_pending": "max_pending",
        "retention": "retention_s",
    }
    _ENV: ClassVar[dict[str, str]] = {
        "NARRATION_REDIS_PREFIX": "prefix",
        "NARRATION_LEASE_TTL_S": "lease_ttl_s",
        "NARRATION_REDIS_MAX_PENDING": "max_pending",
        "NARRATION_RETENTION_S": "retention_s",
    }

    @classmethod
    def from_url(
        cls,
        url: str,
        environ: Mapping[str, str] | None = None,
        retention_s: float | None = None,
    ) -> tuple[str, RedisOptions]:
        """(the URL without narration's query keys, the options: env, then `retention_s`
        when given, then the URL's query keys, each overriding the one before)."""
        values: dict[str, str] = {}
        for name, field in cls._ENV.items():
            value = environment.get(name, environ)
            if value is not None:
                values[field] = value
        if retention_s is not None:
            values["retention_s"] = repr(float(retention_s))
        parts = urlsplit(url)
        kept: list[tuple[str, str]] = []
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in cls._QUERY:
                values[cls._QUERY[key]] = value
            else:
                kept.append((key, value))
        clean = urlunsplit(parts._replace(query=urlencode(kept)))
        return clean, cls()._with(values)

    def _with(self, values: dict[str, str]) -> RedisOptions:
        typed: dict[str, Any] = {}
        for field, raw in values.items():
            try:
                if field == "prefix":
                    typed[field] = raw
                elif field == "max_pending":
                    typed[field] = max(1, int(raw))
                else:
                    typed[field] = float(raw)
            except ValueError:
                raise ValueError(f"Redis store option {field}={raw!r} is not a number") from None
        options = replace(self, **typed)
        if options.lease_ttl_s <= 0:
            raise ValueError("lease_ttl must be > 0 seconds")
        return options


def without_query_key(url: str, key: str) -> str:
    """`url` without the query parameter `key`."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != key]
    return urlunsplit(parts._replace(query=urlencode(query)))
