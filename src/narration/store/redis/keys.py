"""The names of the store's Redis keys, all under one prefix (`narration:` by default).

    {prefix}job:{id}        hash    the job record, plus `n` (ids used so far) and `t` (terminal id)
    {prefix}log:{id}        stream  one entry per event: stream id `<n>-0` is SSE id n, field `d`
                                    the event JSON; the terminal entry has `e` (done|error|
                                    cancelled) + `d` (see `narration.wire.terminal_data`)
    {prefix}jobs            zset    job ids by creation time (listing)
    {prefix}leases          zset    unfinished job ids -> lease deadline (ms, Redis server clock)
    {prefix}cancel:{replica} list   job ids other replicas ask `replica` to cancel
    {prefix}tail:{replica}  stream  pokes that end `replica`'s shared tail XREAD early

The Lua scripts that find a job's keys from its id build the same `job:` and `log:` names, so
this store needs a standalone Redis (or one cluster slot), not Redis Cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Keys"]


@dataclass(frozen=True, slots=True)
class Keys:
    """The names of the store's keys, all under `prefix` (the Lua scripts that find a job's
    keys from its id build the same `job:` and `log:` names)."""

    prefix: str

    def of(self, kind: str, name: str) -> str:
        """`{prefix}{kind}{name}`, e.g. `of("job:", job_id)`."""
        return f"{self.prefix}{kind}{name}"

    def job(self, job_id: str) -> str:
        """The job's record (hash)."""
        return f"{self.prefix}job:{job_id}"

    def log(self, job_id: str) -> str:
        """The job's event log (stream)."""
        return f"{self.prefix}log:{job_id}"

    @property
    def jobs(self) -> str:
        """Every job id by creation time (sorted set), for listing."""
        return self.prefix + "jobs"

    @property
    def leases(self) -> str:
        """Unfinished job ids -> lease deadline in ms of the Redis clock (sorted set)."""
        return self.prefix + "leases"

    def cancel_inbox(self, replica: str) -> str:
        """Job ids another replica asks `replica` to cancel (list)."""
        return f"{self.prefix}cancel:{replica}"

    def poke(self, replica: str) -> str:
        """The stream that ends `replica`'s shared tail XREAD early (see `tail.py`)."""
        return f"{self.prefix}tail:{replica}"
