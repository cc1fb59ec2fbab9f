"""The Redis Streams store: job records and event logs shared by several server replicas.

Where things are (one idea per module):

    store.py        RedisStore, the `Store` API: records, finish, expire, health
    log.py          RedisEventLog, one job's log (hands appends to the writer, reads via the
                    reader; the owner's caught-up readers get what the writer wrote)
    writer.py       EventWriter: the write queue (no I/O in `append`) and the task writing it
    batch.py        one write batch's Redis call (one script call; one per job on a cluster)
    reader.py       StreamReader: a reader's frames after its cursor (own XREAD, then the tail)
    shared_frames.py the frames of a tail batch, built once for every reader of it
    tail.py         StreamTail: one blocking XREAD per replica for every caught-up reader,
                    waiting ones woken, followed ones handed their frames
    cluster_tail.py ClusterTail: the same on Redis Cluster, woken by notification streams
    cluster.py      redis+cluster:// URLs and their redis-py cluster clients
    leases.py       Leases: job ownership, renewal, reaping the jobs of dead owners
    resend.py       events Redis acknowledged last: written again if it lost them, and read
                    by the owner's readers a little behind
    query.py        job listings: the index newest first, a chunk of records at a time
    cancels.py      CancelInbox: cancel requests between replicas
    records.py      JobRecord <-> the fields of its hash
    scripts.py      the Lua scripts (every atomic write)
    keys.py         the key names (the layout of the data in Redis)
    options.py      RedisOptions: URL query keys, env, defaults
    connection.py   the connection pools, and whether Redis answers (`/health`)

Writes: `append()` only numbers the event and queues it (a short lock, no I/O); one writer task
per store encodes queued events and writes them in one Lua call per batch (one per job on a
cluster, pipelined), then hands them to the caught-up readers of this replica. `finish()`
commits the final state and appends the terminal in one Lua call, then the runner's `expire()`
sets the retention TTL. A dead owner's jobs are ended by another replica ("owner lost").

Options come from the URL query (`redis://host:6379/0?prefix=app:&lease_ttl=10`), else from env
(`NARRATION_REDIS_PREFIX`, `NARRATION_LEASE_TTL_S`, `NARRATION_REDIS_MAX_PENDING`,
`NARRATION_RETENTION_S`), else the defaults. Every key of a job carries the job id as its
Redis Cluster hash tag and every script touches one slot, so the same code runs on one Redis
and on a cluster (`redis+cluster://host:port,host:port`).
"""

from .leases import OWNER_LOST
from .log import LOST_BY_STORE, RedisEventLog
from .options import RedisOptions
from .store import RedisStore

__all__ = ["LOST_BY_STORE", "OWNER_LOST", "RedisEventLog", "RedisOptions", "RedisStore"]
