"""Storage backends for job records and event logs: memory (default) and Redis Streams."""

from .base import EventLog, JobRecord, LogLimits, ReadResult, Store, StoreUnavailableError
from .memory import MemoryEventLog
from .memory_store import MemoryStore

__all__ = [
    "EventLog",
    "JobRecord",
    "LogLimits",
    "MemoryEventLog",
    "MemoryStore",
    "ReadResult",
    "Store",
    "StoreUnavailableError",
    "open_store",
]


def open_store(
    url: str | None, limits: LogLimits | None = None, retention_s: float | None = None
) -> Store:
    """The store named by `url`: None or `memory://` for memory, `redis://...` for Redis,
    `redis+cluster://host:port[,host:port...]` for a Redis Cluster.

    `retention_s` (a server's setting) is how long Redis keeps a job its owner could not
    expire itself; a `retention` key in the URL overrides it.
    """
    if not url or url.startswith("memory:"):
        return MemoryStore(limits)
    if url.startswith(
        ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")
    ):
        from .redis import RedisStore  # optional backend, imported only when asked for

        return RedisStore(url, limits, retention_s=retention_s)
    raise ValueError(
        f"unknown store URL {url!r}; use memory://, redis://host:port/db or "
        "redis+cluster://host:port,host:port"
    )
