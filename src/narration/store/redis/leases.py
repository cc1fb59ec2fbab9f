"""Job ownership: this replica's leases, their renewal, and reaping the jobs of dead owners.

The replica that creates a job holds its lease (renewed every `0.2 * lease_ttl_s`, each
renewal valid `0.7 * lease_ttl_s`); every replica looks for expired leases about every
`0.08 * lease_ttl_s` and, in one atomic Lua call, marks such jobs failed ("owner lost") and
appends their `error` terminal. So a dead owner's job ends within `0.8 * lease_ttl_s`, once.
After an outage of Redis (or of the replica's own link to it), owners renew before anyone reaps
(the grace of `GAP` and `GRACE` below).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

from ...wire import TERMINAL_EVENTS, terminal_data
from .connection import UNREACHABLE, Connections, Reachability
from .keys import Keys
from .options import RedisOptions

__all__ = ["GAP", "GRACE", "OWNER_LOST", "Leases"]

logger = logging.getLogger("narration.store.redis")

OWNER_LOST = "owner lost"  # the error of a job ended because its owner's lease expired
# A dead owner's job ends within LEASE_SPAN + 1.2 * _REAP_EVERY = 0.8 of lease_ttl_s; a live
# owner keeps its jobs through stalls of up to LEASE_SPAN - _RENEW_EVERY = 0.5 of it.
LEASE_SPAN = 0.70  # a renewal is valid this fraction of lease_ttl_s
# No replica looked at the leases for GAP of lease_ttl_s (Redis was down, or all replicas were
# cut off): nobody reaps for GRACE of it, so that live owners renew first. Likewise a replica
# that itself could not reach Redis for GAP does not reap for GRACE once it can.
GAP = 0.40
GRACE = 1.0
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
        self.grace_until = 0.0  # time.monotonic() before which this replica does not reap
        self.after_round: Callable[[], Awaitable[None]] | None = None  # the store's checks

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

        Claiming the expired leases is atomic in the leases' slot, so however many replicas
        call this at once each job is claimed once; a claim whose reaper died before ending
        the job lapses and is claimed again (ending it twice is a no-op).
        """
        return await self._claim_and_end(limit, reap=True)

    async def _claim_and_end(self, limit: int, *, reap: bool) -> list[str]:
        keys = self._keys
        ttl_ms = self._options.lease_ttl_s * 1000
        args = [limit, int(ttl_ms), int(ttl_ms * GAP), int(ttl_ms * GRACE), "1" if reap else "0"]
        claimed = await self._redis.eval("claim", [keys.leases, keys.reaping, keys.alive], args)
        reaped: list[str] = []
        state, error = "failed", OWNER_LOST
        for raw_id in claimed:
            job_id = raw_id.decode()
            job_keys = [keys.job(job_id), keys.log(job_id)]
            end = [
                int(self._options.retention_s * 1000),
                state,
                error,
                TERMINAL_EVENTS[state],
                terminal_data(job_id, state, error),
            ]
            terminal = int(await self._redis.eval("end", job_keys, end))
            await self._redis.command("ZREM", keys.reaping, job_id)
            if terminal <= 0:
                continue  # finished meanwhile, or forgotten by Redis
            await self._redis.notify(keys.log(job_id), terminal)
            reaped.append(job_id)
            self.reaped += 1
            logger.warning("narration: job %s lost its owner; ended as failed", job_id)
            if job_id in self.held:
                self._lost(job_id)
        return reaped

    def _lost(self, job_id: str) -> None:
        self.held.discard(job_id)
        self._on_lost(job_id)

    async def _run(self) -> None:
        """Renew this replica's leases; end jobs whose owner's lease expired; prune the index.

        After this replica could not reach Redis, it renews first, and reaps nothing for one
        lease TTL: leases that expired while it was cut off may belong to live owners that
        were cut off too (`in_grace`).
        """
        ttl = self._options.lease_ttl_s
        loop = asyncio.get_running_loop()
        next_renew = loop.time() + ttl * _RENEW_EVERY
        next_prune = loop.time() + _PRUNE_EVERY_S
        last_ok = loop.time()
        while True:
            await asyncio.sleep(ttl * _REAP_EVERY * random.uniform(0.8, 1.2))
            try:
                now = loop.time()
                if now >= next_renew:
                    await self.renew()
                    next_renew = now + ttl * _RENEW_EVERY
                if loop.time() - last_ok > ttl * GAP:  # this replica was cut off
                    self.grace_until = time.monotonic() + ttl * GRACE
                    logger.warning(
                        "narration: Redis answers again; no reaping for %.1f s, so that "
                        "owners renew their leases first",
                        ttl * GRACE,
                    )
                reap = self._options.reaper and not self.in_grace
                await self._claim_and_end(100, reap=reap)
                last_ok = loop.time()
                if self.after_round is not None:
                    await self.after_round()
                if now >= next_prune:
                    next_prune = now + _PRUNE_EVERY_S
                    await self._prune()
                self._reachability.ok()
            except UNREACHABLE as exc:
                self._reachability.failed(exc)
                next_renew = 0.0  # renew first thing once Redis answers
            except Exception:
                logger.exception("narration: Redis lease maintenance failed")

    @property
    def in_grace(self) -> bool:
        """True while this replica holds off reaping after it was cut off from Redis."""
        return time.monotonic() < self.grace_until

    async def _prune(self) -> None:
        """Drop up to 200 of the oldest ids of jobs Redis expired from the listing index."""
        ids = await self._redis.command("ZRANGE", self._keys.jobs, 0, 199)
        if not ids:
            return
        pipe = self._redis.control.pipeline(transaction=False)
        for raw_id in ids:
            pipe.exists(self._keys.job(raw_id.decode()))
        gone = [raw for raw, n in zip(ids, await pipe.execute(), strict=True) if not n]
        if gone:
            await self._redis.command("ZREM", self._keys.jobs, *gone)
