"""Storage backends for job records and event logs: memory (default) and Redis Streams."""

from .base import EventLog, JobRecord, LogLimits, ReadResult, Store, StoreUnavailable
from .memory import MemoryEventLog, MemoryStore

__all__ = [
    "EventLog",
    "JobRecord",
    "LogLimits",
    "MemoryEventLog",
    "MemoryStore",
    "ReadResult",
    "Store",
    "StoreUnavailable",
    "open_store",
]


def open_store(url: str | None, limits: LogLimits | None = None) -> Store:
    """The store named by `url`: None or `memory://` for memory, `redis://...` for Redis."""
    if not url or url.startswith("memory:"):
        return MemoryStore(limits)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from .redis import RedisStore  # optional backend, imported only when asked for

        return RedisStore(url, limits)
    raise ValueError(f"unknown store URL {url!r}; use memory:// or redis://host:port/db")
