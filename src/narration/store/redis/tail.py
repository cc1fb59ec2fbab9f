"""The shared tail: one blocking XREAD per replica for every job stream a reader here awaits.

A reader that has caught up with its job's stream would otherwise sit in `XREAD BLOCK` on a
connection of its own, so 10,000 watchers of quiet jobs would hold 10,000 Redis connections.
Instead it registers here (`wait`) and holds none: one task, on one dedicated connection,
blocks on all the waited-for streams at once, from each stream's lowest waiting cursor, and
hands the entries it read to every reader whose cursor they pass: a job watched by 1,000
readers costs one XREAD per wake-up, not 1,001. When a reader asks for a stream the pending
XREAD does not cover, a tiny per-replica "poke" stream, part of every XREAD, is appended to,
which ends the XREAD so the next one covers it.

A reader can also be followed (`follow`): the tail then hands it the frames past its cursor
itself, built once per batch for all of them (`SharedFrames`), so a caught-up stream costs
no future, timeout or task switch per event (`server/following.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import redis.asyncio as aioredis

from ..base import Follower
from .shared_frames import SharedFrames, hand_over, stream_entry_id

__all__ = ["StreamTail"]

logger = logging.getLogger("narration.store.redis")

_BLOCK_MS = 5_000  # longest XREAD BLOCK (below the connection's socket timeout)
_POKE_TTL_MS = 600_000  # the poke stream outlives a replica that died by at most this
_RETRY_S = 0.5  # pause after Redis could not be reached


class StreamTail:
    """Wakes readers of Redis streams from one shared, blocking XREAD."""

    def __init__(
        self,
        tail_client: aioredis.Redis,
        command: Callable[..., Any],
        poke_key: str,
        unreachable: tuple[type[BaseException], ...],
        batch: int,
    ) -> None:
        self._client = tail_client  # used by the tail task alone: it blocks
        self._command = command  # the store's pooled connections, for pokes
        self._poke_key = poke_key
        self._unreachable = unreachable
        self._batch = batch  # entries per stream per XREAD
        self._waiters: dict[str, dict[asyncio.Future[list[Any]], int]] = {}
        self._followers: dict[str, dict[Follower, int]] = {}  # key -> follower -> cursor
        self._poking: asyncio.Task[None] | None = None  # a poke on behalf of a follower
        self._failed = False  # the last XREAD failed: followers recheck once Redis answers
        self._covered: dict[str, int] | None = None  # what the pending XREAD watches
        self._poke_seen = b"0-0"
        self._expiry_set = -float("inf")  # loop time the poke stream's expiry was last set
        self._work = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def wait(self, key: str, after: int, timeout: float) -> list[Any] | None:
        """Entries of stream `key` (as XREAD gives them), at least one past `after`, once
        there are; None after `timeout` s. Entries up to `after` may come first: skip them."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="narration-redis-tail")
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(key, {})
        waiters[future] = after
        try:
            covered = self._covered
            if covered is not None and covered.get(key, after + 1) > after:
                await self._poke()  # the pending XREAD would not see it: end that one
            self._work.set()
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            return None
        finally:
            del waiters[future]
            if not waiters and self._waiters.get(key) is waiters:
                del self._waiters[key]

    def follow(self, key: str, after: int, follower: Follower) -> None:
        """Hand `follower` the frames of stream `key` past `after` as they come (`deliver`),
        and at last the terminal (`finish`); one that refuses frames, or that a hole in the
        ids leaves with a gap to make, is woken (`wake`) to read for itself. Event loop thread
        only."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="narration-redis-tail")
        self._followers.setdefault(key, {})[follower] = after
        covered = self._covered
        if covered is not None and covered.get(key, after + 1) > after and self._poking is None:
            self._poking = asyncio.get_running_loop().create_task(self._poke())
            self._poking.add_done_callback(self._poked)
        self._work.set()

    def unfollow(self, key: str, follower: Follower) -> None:
        """Stop handing frames to `follower` (nothing if it is not followed)."""
        followers = self._followers.get(key)
        if followers is not None and followers.pop(follower, None) is not None and not followers:
            del self._followers[key]

    def _poked(self, _: asyncio.Task[None]) -> None:
        self._poking = None

    async def close(self) -> None:
        """Stop the tail task, remove the poke stream, disconnect."""
        if self._poking is not None:
            self._poking.cancel()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(*self._unreachable):
            await self._command("DEL", self._poke_key)
        await self._client.aclose()

    async def _poke(self) -> None:
        try:
            await self._command("XADD", self._poke_key, "MAXLEN", "1", "*", "p", "1")
            now = asyncio.get_running_loop().time()
            if now - self._expiry_set > _POKE_TTL_MS / 10_000:  # refresh every tenth of it
                self._expiry_set = now
                await self._command("PEXPIRE", self._poke_key, _POKE_TTL_MS)
        except self._unreachable:
            pass  # the tail's own XREAD fails as well and starts over

    async def _run(self) -> None:
        while True:
            # From each stream's lowest cursor among readers not woken yet (a woken one leaves
            # once it runs; until then it would only end the next XREAD at once, for nothing).
            covered: dict[str, int] = {}
            for key, waiters in self._waiters.items():
                cursors = [after for future, after in waiters.items() if not future.done()]
                if cursors:
                    covered[key] = min(cursors)
            for key, cursors_of in self._followers.items():
                lowest = min(cursors_of.values())
                covered[key] = min(lowest, covered.get(key, lowest))
            if not covered:
                self._work.clear()
                await self._work.wait()
                continue
            # After a failure, one XREAD that does not block: it tells at once that Redis is back.
            block = [] if self._failed else ["BLOCK", _BLOCK_MS]
            command: list[Any] = ["XREAD", "COUNT", self._batch, *block, "STREAMS"]
            command += [self._poke_key, *covered, self._poke_seen]
            command += [b"%d-0" % after for after in covered.values()]
            self._covered = covered
            try:
                reply = await self._client.execute_command(*command)  # type: ignore[no-untyped-call]
            except Exception as exc:  # waiting readers time out and read for themselves
                if not isinstance(exc, self._unreachable):
                    logger.exception("narration: the Redis stream tail failed")
                self._failed = True  # and followers are rechecked once Redis answers
                await asyncio.sleep(_RETRY_S)
                continue
            finally:
                self._covered = None
            if self._failed:  # Redis may be back without some jobs: followers find out
                self._failed = False
                rechecked, self._followers = self._followers, {}
                for of_key in rechecked.values():
                    for follower in of_key:
                        follower.recheck()
            woken = False
            for raw_key, entries in reply or ():
                key = raw_key.decode()
                if key == self._poke_key:
                    self._poke_seen = entries[-1][0]
                    continue
                newest = stream_entry_id(entries[-1][0])
                for future, after in self._waiters.get(key, {}).items():
                    if after < newest and not future.done():
                        future.set_result(entries)
                        woken = True
                followed = self._followers.get(key)
                if followed:
                    hand_over(followed, newest, partial(SharedFrames, entries))
                    if not followed:
                        del self._followers[key]
            if woken:  # let the woken readers write and wait here again first, so that the
                await asyncio.sleep(0)  # next XREAD covers them (else each would poke it)
