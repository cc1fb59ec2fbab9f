"""The names of the store's Redis keys, all under one prefix (`narration:` by default).

    {prefix}job:{{id}}          hash    the job record, plus `n` (ids used so far) and `t`
                                        (terminal id)
    {prefix}log:{{id}}          stream  one entry per event: stream id `<n>-0` is SSE id n,
                                        field `d` the event JSON; the terminal entry has `e`
                                        (done|error|cancelled) + `d` (`wire.terminal_data`)
    {prefix}jobs                zset    job ids by creation time (listing)
    {prefix}{leases}            zset    unfinished job ids -> lease deadline (ms, Redis clock)
    {prefix}{leases}:reaping    zset    job ids a reaper claimed -> when the claim lapses
    {prefix}{leases}:alive      hash    `seen`: when a replica last looked; `grace`: no reaping
                                        before this (Redis, or every replica, was away)
    {prefix}cancel:{{replica}}  list    job ids other replicas ask `replica` to cancel
    {prefix}tail:{{replica}}    stream  pokes that end `replica`'s shared tail XREAD early
    {prefix}notify:{{shard}}    stream  (Redis Cluster) "job log K has ids up to N", for tails

The part in braces is the key's Redis Cluster hash tag: every key of one job is in the slot of
its id, and the three lease keys share one slot, so no Lua script ever touches two slots.
"""

from __future__ import annotations

from dataclasses import dataclass
from zlib import crc32

__all__ = ["NOTIFY_SHARDS", "Keys"]

NOTIFY_SHARDS = 16  # notification streams of a cluster deployment (one blocked XREAD each)


@dataclass(frozen=True, slots=True)
class Keys:
    """The names of the store's keys, all under `prefix`."""

    prefix: str

    def of(self, kind: str, name: str) -> str:
        """`{prefix}{kind}{{name}}`, e.g. `of("job:", job_id)` (`name` is the hash tag)."""
        return f"{self.prefix}{kind}{{{name}}}"

    def job(self, job_id: str) -> str:
        """The job's record (hash)."""
        return f"{self.prefix}job:{{{job_id}}}"

    def log(self, job_id: str) -> str:
        """The job's event log (stream), in the slot of its record."""
        return f"{self.prefix}log:{{{job_id}}}"

    @property
    def jobs(self) -> str:
        """Every job id by creation time (sorted set), for listing."""
        return self.prefix + "jobs"

    @property
    def leases(self) -> str:
        """Unfinished job ids -> lease deadline in ms of the Redis clock (sorted set)."""
        return self.prefix + "{leases}"

    @property
    def reaping(self) -> str:
        """Job ids claimed by a reaper -> when its claim lapses (sorted set, `leases`' slot)."""
        return self.prefix + "{leases}:reaping"

    @property
    def alive(self) -> str:
        """When a replica last looked at the leases, and the reaping grace (hash)."""
        return self.prefix + "{leases}:alive"

    def cancel_inbox(self, replica: str) -> str:
        """Job ids another replica asks `replica` to cancel (list)."""
        return self.of("cancel:", replica)

    def poke(self, replica: str) -> str:
        """The stream that ends `replica`'s shared tail XREAD early (see `tail.py`)."""
        return self.of("tail:", replica)

    def notify(self, log_key: str) -> str:
        """The notification stream that tells cluster tails about `log_key` (`cluster_tail.py`)."""
        return self.notify_shard(crc32(log_key.encode()) % NOTIFY_SHARDS)

    def notify_shard(self, shard: int) -> str:
        """Notification stream number `shard` (0 <= shard < NOTIFY_SHARDS)."""
        return self.of("notify:", str(shard))
