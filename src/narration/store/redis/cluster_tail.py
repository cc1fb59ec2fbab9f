"""The shared tail on Redis Cluster: readers woken by per-shard notification streams.

On one Redis the tail blocks in one XREAD over every waited-for job stream (`tail.py`); a
cluster refuses an XREAD over keys of several slots. So there, each write of a job's events
also appends "log K has ids up to N" to one of `NOTIFY_SHARDS` notification streams (chosen
by K's hash, so spread over the cluster's nodes), and this tail keeps one blocked XREAD per
shard: 16 connections per replica, whatever the number of jobs and readers. A notification
for a stream some reader here awaits makes one non-blocking XREAD of that stream, from its
lowest waiting cursor, handed to every reader it concerns (as `tail.py` does). Notifications
are hints: a reader that missed one (a failover lost it) reads for itself at its next turn,
within seconds (`reader.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .keys import NOTIFY_SHARDS, Keys

__all__ = ["ClusterTail"]

logger = logging.getLogger("narration.store.redis")

_BLOCK_MS = 5_000  # longest XREAD BLOCK (below the connection's socket timeout)
_RETRY_S = 0.5  # pause after the shard's node could not be reached
_RECENT = 20_000  # streams whose newest notified id is remembered


class ClusterTail:
    """Wakes readers of job streams from notifications, one blocked XREAD per shard."""

    def __init__(
        self,
        tail_command: Callable[..., Any],
        read_command: Callable[..., Any],
        keys: Keys,
        unreachable: tuple[type[BaseException], ...],
        batch: int,
    ) -> None:
        self._tail_command = tail_command  # the blocking XREADs (a pool of their own)
        self._read = read_command  # the readers' pool, for reading streams when notified
        self._keys = keys
        self._unreachable = unreachable
        self._batch = batch
        self._waiters: dict[str, dict[asyncio.Future[list[Any]], int]] = {}
        # The newest id notified per stream: a reader registering just after a notification
        # it has not read yet is answered at once instead of waiting for the next one.
        self._recent: OrderedDict[str, int] = OrderedDict()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start the shards' XREAD loops in the running loop (once)."""
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run(shard), name=f"narration-redis-notify-{shard}")
                for shard in range(NOTIFY_SHARDS)
            ]

    async def wait(self, key: str, after: int, timeout: float) -> list[Any] | None:
        """Entries of stream `key` (as XREAD gives them), or [] when there are new ones to
        read; None after `timeout` s. Entries up to `after` may come first: skip them."""
        self.start()
        if self._recent.pop(key, 0) > after:  # once: a reader finding nothing waits next time
            return []
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(key, {})
        waiters[future] = after
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            return None
        finally:
            del waiters[future]
            if not waiters and self._waiters.get(key) is waiters:
                del self._waiters[key]

    async def close(self) -> None:
        """Stop the XREAD loops."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, shard: int) -> None:
        key = self._keys.notify_shard(shard)
        cursor = b"$"
        while True:
            command = ["XREAD", "COUNT", 1000, "BLOCK", _BLOCK_MS, "STREAMS", key, cursor]
            try:
                reply = await self._tail_command(*command)
            except Exception as exc:  # readers read for themselves meanwhile
                if not isinstance(exc, self._unreachable):
                    logger.exception("narration: the Redis Cluster notification tail failed")
                await asyncio.sleep(_RETRY_S)
                continue
            if not reply:
                continue
            entries = reply[0][1]
            cursor = entries[-1][0]
            newest: dict[str, int] = {}
            for _, fields in entries:
                values = dict(zip(fields[::2], fields[1::2], strict=True))
                log_key, last = values[b"k"].decode(), int(values[b"n"])
                newest[log_key] = max(last, newest.get(log_key, 0))
            woken = [
                self._hand_over(log_key, last)
                for log_key, last in newest.items()
                if self._remember(log_key, last)
            ]
            if woken:
                await asyncio.gather(*woken)

    def _remember(self, log_key: str, last: int) -> bool:
        """Note `last` as `log_key`'s newest id; True when a reader here awaits it."""
        recent = self._recent
        recent[log_key] = max(last, recent.get(log_key, 0))
        recent.move_to_end(log_key)
        if len(recent) > _RECENT:
            recent.popitem(last=False)
        return any(after < last for after in self._waiters.get(log_key, {}).values())

    async def _hand_over(self, log_key: str, last: int) -> None:
        """Read `log_key` once from its lowest waiting cursor; wake the readers it concerns."""
        waiters = self._waiters.get(log_key, {})
        cursors = [after for future, after in waiters.items() if not future.done()]
        if not cursors:
            return
        command = ["XREAD", "COUNT", self._batch, "STREAMS", log_key, b"%d-0" % min(cursors)]
        try:
            reply = await self._read(*command)
        except self._unreachable:
            reply = None
        entries = reply[0][1] if reply else []
        for future, after in list(self._waiters.get(log_key, {}).items()):
            if after < last and not future.done():
                future.set_result(entries)  # [] when the read failed: the reader reads itself
