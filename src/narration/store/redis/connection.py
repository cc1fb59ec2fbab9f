"""The store's Redis connections (two bounded pools and the tail's own), and whether Redis answers.

Every part of the store talks to Redis through `Connections` and reports what happened to
`Reachability`, which `/health` and the metrics read.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, ParamSpec, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..base import StoreUnavailableError
from .options import without_query_key
from .scripts import SCRIPTS

__all__ = [
    "BLOCK_CHUNK_S",
    "UNREACHABLE",
    "Connections",
    "Reachability",
    "unavailable_when_unreachable",
]

logger = logging.getLogger("narration.store.redis")

# What redis-py raises when Redis cannot be reached (or answer in time).
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
BLOCK_CHUNK_S = 5.0  # longest single blocking command (below the socket timeout)
_READ_CONNECTIONS = 48  # pooled connections for stream reads (URL `max_connections`)
_CONTROL_CONNECTIONS = 16  # pooled connections for everything else: writes, leases, the API

_T = TypeVar("_T")
_P = ParamSpec("_P")


def unavailable_when_unreachable(
    method: Callable[_P, Coroutine[Any, Any, _T]],
) -> Callable[_P, Coroutine[Any, Any, _T]]:
    """Turn "Redis cannot be reached" into `StoreUnavailableError` (a 503) for the API's calls."""

    @functools.wraps(method)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return await method(*args, **kwargs)
        except UNREACHABLE as exc:
            raise StoreUnavailableError(f"the Redis store is unreachable: {exc}") from exc

    return wrapper


class Reachability:
    """Whether Redis answered the last call: failures counted, an outage logged once."""

    __slots__ = ("down_since", "errors", "last_error")

    def __init__(self) -> None:
        self.down_since: float | None = None  # wall clock of the first failure of an outage
        self.last_error: str | None = None
        self.errors = 0  # failed Redis calls (metrics: narration_store_errors_total)

    def failed(self, exc: BaseException) -> None:
        """A call failed because Redis could not be reached."""
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self.down_since is None:
            self.down_since = time.time()
            logger.warning("narration: Redis unreachable (%s); buffering events", exc)

    def ok(self) -> None:
        """A call succeeded: an outage, if any, is over."""
        if self.down_since is not None:
            down_for = time.time() - self.down_since
            self.down_since = None
            logger.warning("narration: Redis reachable again after %.1f s", down_for)

    def trouble(self) -> str | None:
        """Why the store cannot serve right now, or None."""
        down_since = self.down_since
        if down_since is None:
            return None
        # The error itself (addresses included) is logged, and kept out of /health.
        return f"Redis unreachable for {time.time() - down_since:.1f} s"


def _raw_reply(response: Any, **_: Any) -> Any:
    return response


class Connections:
    """The store's clients: `control` (writes, leases, the API), `reads` (stream reads and
    the tail's pokes) and `tail` (one connection, for the shared tail's blocking XREAD alone).

    The pools are bounded: a burst waits a moment for a connection rather than opening one
    each, and a burst of woken readers never delays a lease renewal, a write or an API call.
    The URL's `max_connections` sizes the read pool alone.
    """

    def __init__(self, url: str) -> None:
        connection: dict[str, Any] = {
            "protocol": 2,
            "decode_responses": False,
            "socket_timeout": BLOCK_CHUNK_S + 5.0,
            "socket_connect_timeout": 2.0,
            "retry": Retry(NoBackoff(), 1),
            "health_check_interval": 0,
        }
        control_url = without_query_key(url, "max_connections")  # it sizes reads only
        control_pool = aioredis.BlockingConnectionPool.from_url(
            control_url,
            max_connections=_CONTROL_CONNECTIONS,
            timeout=10.0,
            **connection,
        )
        read_pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=_READ_CONNECTIONS, timeout=10.0, **connection
        )
        self.control: aioredis.Redis = aioredis.Redis.from_pool(control_pool)
        self.reads: aioredis.Redis = aioredis.Redis.from_pool(read_pool)
        self.tail: aioredis.Redis = aioredis.Redis.from_url(
            control_url, single_connection_client=True, **connection
        )
        self.read_connections: int = read_pool.max_connections
        for client in (self.control, self.reads, self.tail):
            for command in ("XREAD", "HMGET", "EVALSHA", "ZREVRANGE"):
                client.set_response_callback(command, _raw_reply)

    async def command(self, *args: Any) -> Any:
        """One Redis command, its reply as Redis sent it (bytes, lists, ints)."""
        return await self.control.execute_command(*args)  # type: ignore[no-untyped-call]

    async def read_command(self, *args: Any) -> Any:
        """`command` on the readers' own pool (stream reads, the tail's pokes)."""
        return await self.reads.execute_command(*args)  # type: ignore[no-untyped-call]

    async def eval(self, name: str, keys: Sequence[str], args: Iterable[Any]) -> Any:
        """Run script `name` of `SCRIPTS` by its sha, loading it first if Redis lacks it."""
        script = SCRIPTS[name]
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return await self.command(*command)
        except NoScriptError:
            await self.load_scripts()
            return await self.command(*command)

    async def load_scripts(self) -> None:
        """Load every script (after a Redis restart, or on open)."""
        for script in SCRIPTS.values():
            await self.command("SCRIPT", "LOAD", script.source)

    async def aclose(self) -> None:
        """Disconnect the pools (the tail's connection is closed by the tail)."""
        await self.reads.aclose()
        await self.control.aclose()
