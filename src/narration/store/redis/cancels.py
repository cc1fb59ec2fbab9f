"""Cancels across replicas: ask a job's owner through its inbox list; act on this replica's own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from .connection import BLOCK_CHUNK_S, UNREACHABLE, Connections, Reachability
from .keys import Keys

__all__ = ["CancelInbox"]


class CancelInbox:
    """This replica's inbox of cancel requests (`{prefix}cancel:{replica}`, a list), the task
    that waits on it, and `request` to put a job id in its owner's inbox."""

    def __init__(
        self, connections: Connections, reachability: Reachability, keys: Keys, replica: str
    ) -> None:
        self._redis = connections
        self._reachability = reachability
        self._keys = keys
        self._inbox = keys.cancel_inbox(replica)
        self.on_cancel: Callable[[str], Awaitable[Any]] | None = None
        self.cancelling: set[asyncio.Task[Any]] = set()  # on_cancel calls still running
        self.closed = False

    async def request(self, job_id: str) -> bool:
        """Ask the replica running `job_id` to cancel it; False when the job is unknown,
        finished or has no owner."""
        state, owner, terminal = await self._redis.command(
            "HMGET", self._keys.job(job_id), "state", "owner", "t"
        )
        if terminal is not None or owner is None or state not in (b"queued", b"running"):
            return False
        # The inbox is in another slot (Redis Cluster): a request for a job that ends in
        # between is ignored by its owner, which no longer runs it.
        inbox = self._keys.cancel_inbox(owner.decode())
        pipe = self._redis.control.pipeline(transaction=False)
        pipe.rpush(inbox, job_id)
        pipe.pexpire(inbox, 60_000)
        await pipe.execute()
        return True

    def start(self) -> asyncio.Task[None]:
        """Start waiting for this replica's cancel requests in the running loop."""
        return asyncio.create_task(self._run(), name="narration-redis-cancels")

    async def _run(self) -> None:
        """Wait for cancel requests for this replica's jobs (BLPOP on its inbox) and act."""
        while not self.closed:
            try:
                reply = await self._redis.command("BLPOP", self._inbox, int(BLOCK_CHUNK_S))
            except UNREACHABLE as exc:
                self._reachability.failed(exc)
                await asyncio.sleep(0.5)
                continue
            if not reply or self.on_cancel is None:
                continue
            job_id = reply[1].decode()
            task = asyncio.ensure_future(self.on_cancel(job_id))
            self.cancelling.add(task)
            task.add_done_callback(self.cancelling.discard)
