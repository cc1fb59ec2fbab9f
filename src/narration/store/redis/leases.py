"""Job ownership: this replica's leases, their renewal, and reaping the jobs of dead owners.

The replica that creates a job holds its lease (renewed every `0.2 * lease_ttl_s`, each
renewal valid `0.7 * lease_ttl_s`); every replica looks for expired leases about every
`0.08 * lease_ttl_s` and, in one atomic Lua call, marks such jobs failed ("owner lost") and
appends their `error` terminal. So a dead owner's job ends within `0.8 * lease_ttl_s`, once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

from ...wire import TERMINAL_EVENTS, terminal_data
from .connection import UNREACHABLE, Connections, Reachability
from .keys import Keys
from .options import RedisOptions

__all__ = ["OWNER_LOST", "Leases"]

logger = logging.getLogger("narration.store.redis")

OWNER_LOST = "owner lost"  # the error of a job ended because its owner's lease expired
# A dead owner's job ends within LEASE_SPAN + 1.2 * _REAP_EVERY = 0.8 of lease_ttl_s; a live
# owner keeps its jobs through stalls of up to LEASE_SPAN - _RENEW_EVERY = 0.5 of it.
LEASE_SPAN = 0.70  # a renewal is valid this fraction of lease_ttl_s
_RENEW_EVERY = 0.20  # renew leases every this fraction of lease_ttl_s
_REAP_EVERY = 0.08  # look for expired leases every this fraction of lease_ttl_s (+-20 %)
_PRUNE_EVERY_S = 30.0  # drop expired jobs from the listing index


class Leases:
    """The leases this replica holds, and the task that renews them and reaps orphans.

    `held` is the ids of this replica's unfinished jobs (`RedisStore.create` adds, `finish`
    removes). When one of them is found ended elsewhere, `on_lost(job_id)` is called.
    """

    def __init__(
        self,
        connections: Connections,
        reachability: Reachability,
        keys: Keys,
        options: RedisOptions,
        on_lost: Callable[[str], None],
    ) -> None:
        self._redis = connections
        self._reachability = reachability
        self._keys = keys
        self._options = options
        self._on_lost = on_lost
        self.held: set[str] = set()
        self.renewals = 0  # completed renewal rounds (metrics)
        self.reaped = 0  # jobs of dead owners this replica ended (metrics: failovers)

    @property
    def lease_ms(self) -> int:
        """How long a lease (or a renewal) is valid, in ms."""
        return int(self._options.lease_ttl_s * LEASE_SPAN * 1000)

    def start(self) -> asyncio.Task[None]:
        """Start renewing, reaping and pruning in the running loop."""
        return asyncio.create_task(self._run(), name="narration-redis-leases")

    async def renew(self) -> list[str]:
        """Extend this replica's leases; returns (and hands to `on_lost`) the jobs it lost."""
        lease_ms = self.lease_ms
        held = list(self.held)
        lost: list[str] = []
        for index in range(0, len(held), 1000):
            chunk = held[index : index + 1000]
            reply = await self._redis.eval("renew", [self._keys.leases], [lease_ms, *chunk])
            lost.extend(job_id.decode() for job_id in reply)
        self.renewals += 1
        for job_id in lost:
            if job_id in self.held:
                self._lost(job_id)
        return lost

    async def reap(self, limit: int = 100) -> list[str]:
        """End jobs whose owner's lease expired (failed, "owner lost"); returns their ids.

        Atomic in Redis: however many replicas call this at once, each job is ended once.
        """
        leases = [self._keys.leases]
        expired = await self._redis.eval("expired", leases, [limit])
        if not expired:
            return []
        state, error = "failed", OWNER_LOST
        args: list[Any] = [
            self._keys.prefix,
            int(self._options.retention_s * 1000),
            state,
            error,
            TERMINAL_EVENTS[state],
        ]
        for raw_id in expired:
            args += [raw_id, terminal_data(raw_id.decode(), state, error)]
        reply = await self._redis.eval("reap", leases, args)
        reaped = [job_id.decode() for job_id in reply]
        for job_id in reaped:
            self.reaped += 1
            logger.warning("narration: job %s lost its owner; ended as failed", job_id)
            if job_id in self.held:
                self._lost(job_id)
        return reaped

    def _lost(self, job_id: str) -> None:
        self.held.discard(job_id)
        self._on_lost(job_id)

    async def _run(self) -> None:
        """Renew this replica's leases; end jobs whose owner's lease expired; prune the index."""
        ttl = self._options.lease_ttl_s
        loop = asyncio.get_running_loop()
        next_renew = loop.time() + ttl * _RENEW_EVERY
        next_prune = loop.time() + _PRUNE_EVERY_S
        while True:
            await asyncio.sleep(ttl * _REAP_EVERY * random.uniform(0.8, 1.2))
            try:
                now = loop.time()
                if now >= next_renew:
                    next_renew = now + ttl * _RENEW_EVERY
                    await self.renew()
                if self._options.reaper:
                    await self.reap()
                else:
                    await self._redis.command("PING")
                if now >= next_prune:
                    next_prune = now + _PRUNE_EVERY_S
                    await self._prune()
                self._reachability.ok()
            except UNREACHABLE as exc:
                self._reachability.failed(exc)
            except Exception:
                logger.exception("narration: Redis lease maintenance failed")

    async def _prune(self) -> None:
        """Drop up to 200 of the oldest ids of jobs Redis expired from the listing index."""
        await self._redis.eval("prune", [self._keys.jobs], [self._keys.prefix, 200])
