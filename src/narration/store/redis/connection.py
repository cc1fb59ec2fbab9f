"""The store's Redis connections (two bounded pools and the tail's own), and whether Redis answers.

Every part of the store talks to Redis through `Connections` and reports what happened to
`Reachability`, which `/health` and the metrics read.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, ParamSpec, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    ClusterDownError,
    NoScriptError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..base import StoreUnavailableError
from .cluster import cluster_client, is_cluster_url
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

# What redis-py raises when Redis cannot be reached (or answer in time), or when a cluster
# cannot serve a slot for the moment (a failover in progress).
UNREACHABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    ClusterDownError,
    TryAgainError,
    RedisClusterException,
)
_NOTIFY_MAXLEN = 10_000  # entries a cluster notification stream keeps (about)
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

    __slots__ = ("down_since", "errors", "last_error", "recoveries", "up_since")

    def __init__(self) -> None:
        self.down_since: float | None = None  # wall clock of the first failure of an outage
        self.up_since: float | None = None  # wall clock of the end of the last outage
        self.recoveries = 0  # outages over: readers then check that their job still exists
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
            self.up_since = time.time()
            down_for = self.up_since - self.down_since
            self.down_since = None
            self.recoveries += 1
            logger.warning("narration: Redis reachable again after %.1f s", down_for)

    def trouble(self) -> str | None:
        """Why the store cannot serve right now, or None."""
        down_since = self.down_since
        if down_since is None:
            return None
        # The error itself (addresses included) is logged, and kept out of /health.
        return f"Redis unreachable for {time.time() - down_since:.1f} s"


async def on_cluster(client: Client, args: tuple[Any, ...]) -> Any:
    """`args` on `client`; an XREAD is sent to its stream's node directly (redis-py would
    first ask a node which of its arguments are keys: a round trip per XREAD)."""
    try:
        if args[0] == "XREAD" and isinstance(client, RedisCluster):
            key = args[args.index("STREAMS") + 1]
            await client.initialize()  # at once unless new, or a node failed since
            node = client.get_node_from_key(key)
            if node is not None:
                return await client.execute_command(*args, target_nodes=node)
        return await client.execute_command(*args)
    except (AttributeError, TypeError) as exc:
        if not _closed_under_us(exc):
            raise
        raise _closed_under(exc) from exc


def _closed_under_us(exc: BaseException) -> bool:
    """Whether `exc` is how a command fails on a connection closed while it used it.

    redis-py's cluster client (8.1) can close a connection while a command uses it, when a
    failover makes it refresh the topology: the command then fails with an AttributeError on
    the closed socket, or with asyncio's transport raising TypeError ('NoneType' object is
    not callable) from the write callback it has just cleared.
    """
    if isinstance(exc, AttributeError):
        return True
    return isinstance(exc, TypeError) and "'NoneType' object is not callable" in str(exc)


def _closed_under(exc: BaseException) -> RedisConnectionError:
    """A command's failure on a connection closed under it (`_closed_under_us`): a lost
    connection, retried as one."""
    return RedisConnectionError(f"connection closed by a cluster topology refresh ({exc})")


def _raw_reply(response: Any, **_: Any) -> Any:
    return response


Client = aioredis.Redis | RedisCluster


class Connections:
    """The store's clients: `control` (writes, leases, the API), `reads` (stream reads and
    the tail's pokes) and `tail` (one connection, for the shared tail's blocking XREAD alone).

    The pools are bounded: a burst waits a moment for a connection rather than opening one
    each, and a burst of woken readers never delays a lease renewal, a write or an API call.
    The URL's `max_connections` sizes the read pool alone.

    With a `redis+cluster://` URL the three are redis-py cluster clients (pools per node, the
    tail's with one connection per notification shard; `cluster.py`), and `cluster` is True.
    """

    def __init__(self, url: str, notify_key: Callable[[str], str] | None = None) -> None:
        self.cluster = is_cluster_url(url)
        self._notify_key = notify_key
        self.control: Client
        self.reads: Client
        self.tail: Client
        self._control_slots: asyncio.Semaphore | None = None  # the blocking pools wait
        self._writer: AbstractConnection | None = None  # the writer's own (one Redis only)
        self._read_slots: asyncio.Semaphore | None = None
        if self.cluster:
            # redis-py's cluster pools fail when full instead of waiting: the semaphores make
            # commands wait for a connection, leaving room for pipelines.
            self.control = cluster_client(url, _CONTROL_CONNECTIONS + 16)
            self.reads = cluster_client(url, _READ_CONNECTIONS + 16)
            self.tail = cluster_client(url, 4 + 16)  # the notify shards' blocked XREADs
            self.read_connections = _READ_CONNECTIONS
            self._control_slots = asyncio.Semaphore(_CONTROL_CONNECTIONS)
            self._read_slots = asyncio.Semaphore(_READ_CONNECTIONS)
            for client in (self.control, self.reads, self.tail):
                for command in ("XREAD", "HMGET", "EVALSHA", "ZREVRANGE"):
                    client.set_response_callback(command, _raw_reply)
            return
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
        self.control = aioredis.Redis.from_pool(control_pool)
        self.reads = aioredis.Redis.from_pool(read_pool)
        self.tail = aioredis.Redis.from_url(
            control_url, single_connection_client=True, **connection
        )
        self.read_connections = read_pool.max_connections
        for plain in (self.control, self.reads, self.tail):
            for command in ("XREAD", "HMGET", "EVALSHA", "ZREVRANGE"):
                plain.set_response_callback(command, _raw_reply)

    async def command(self, *args: Any) -> Any:
        """One Redis command, its reply as Redis sent it (bytes, lists, ints)."""
        if self._control_slots is None:
            return await self.control.execute_command(*args)
        async with self._control_slots:
            return await on_cluster(self.control, args)

    async def write_command(self, *args: Any) -> Any:
        """`command` on the event writer's own connection (one Redis only; the writer has one
        write in flight at a time): no pool, lock or retry wrapper. Client CPU per PING on
        this VM: 123 µs through the client, 83 on its connection, 61 on bare asyncio streams."""
        connection = self._writer
        if connection is None:
            assert isinstance(self.control, aioredis.Redis)
            connection = self._writer = self.control.connection_pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            await connection.send_packed_command(connection.pack_command(*args), False)
            return await connection.read_response()
        except ResponseError:
            raise  # Redis answered: the connection is fine
        except BaseException:  # cut off mid-command (or cancelled): start over on a new one
            await connection.disconnect(nowait=True)
            raise

    async def read_command(self, *args: Any) -> Any:
        """`command` on the readers' own pool (stream reads, the tail's pokes)."""
        if self._read_slots is None:
            return await self.reads.execute_command(*args)
        async with self._read_slots:
            return await on_cluster(self.reads, args)

    async def tail_command(self, *args: Any) -> Any:
        """`command` on the tail's own connections (its blocking XREADs)."""
        return await on_cluster(self.tail, args)

    async def eval(self, name: str, keys: Sequence[str], args: Iterable[Any]) -> Any:
        """Run script `name` of `SCRIPTS` by its sha, loading it first if Redis lacks it."""
        script = SCRIPTS[name]
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return await self.command(*command)
        except NoScriptError:
            await self.load_scripts()
            return await self.command(*command)

    async def execute(self, pipe: Any) -> list[Any]:
        """Run pipeline `pipe` of `control`; its replies, errors among them as exceptions."""
        try:
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        except (AttributeError, TypeError) as exc:
            if not (self.cluster and _closed_under_us(exc)):
                raise
            raise _closed_under(exc) from exc
        if self.cluster:
            replies = [_closed_under(r) if _closed_under_us(r) else r for r in replies]
        return replies

    def notify_args(self, log_key: str, last_id: int) -> list[Any] | None:
        """The XADD telling cluster tails that `log_key` has ids up to `last_id` (None when
        not a cluster: there the tail reads the job streams themselves)."""
        if self._notify_key is None or not self.cluster:
            return None
        key = self._notify_key(log_key)
        return ["XADD", key, "MAXLEN", "~", _NOTIFY_MAXLEN, "*", "k", log_key, "n", last_id]

    async def notify(self, log_key: str, last_id: int) -> None:
        """Send `notify_args` (a cluster only); an unreachable Redis only delays readers."""
        args = self.notify_args(log_key, last_id)
        if args is not None:
            with contextlib.suppress(*UNREACHABLE):  # readers look for themselves, too
                await self.command(*args)

    async def load_scripts(self) -> None:
        """Load every script (after a Redis restart, or on open; on every cluster node, so
        that a replica promoted by a failover has them too)."""
        for script in SCRIPTS.values():
            if self.cluster:
                await self.control.execute_command(
                    "SCRIPT LOAD", script.source, target_nodes=RedisCluster.ALL_NODES
                )
            else:
                await self.command("SCRIPT", "LOAD", script.source)

    async def aclose(self) -> None:
        """Disconnect the pools (the tail's connection is closed by the tail)."""
        if self.cluster:
            await self.tail.aclose()
        if self._writer is not None:
            await self._writer.disconnect()
        await self.reads.aclose()
        await self.control.aclose()
