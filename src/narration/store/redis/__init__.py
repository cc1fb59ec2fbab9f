"""The Redis Streams store: job records and event logs shared by several server replicas.

Where things are (one idea per module):

    store.py        RedisStore, the `Store` API: records, finish, expire, health
    log.py          RedisEventLog, one job's log (hands appends to the writer, reads via the reader)
    writer.py       EventWriter: the write queue (no I/O in `append`) and the task writing it
    reader.py       StreamReader: a reader's frames after its cursor (own XREAD, then the tail)
    tail.py         StreamTail: one blocking XREAD per replica for every caught-up reader
    leases.py       Leases: job ownership, renewal, reaping the jobs of dead owners
    cancels.py      CancelInbox: cancel requests between replicas
    records.py      JobRecord <-> the fields of its hash
    scripts.py      the Lua scripts (every atomic write)
    keys.py         the key names (the layout of the data in Redis)
    options.py      RedisOptions: URL query keys, env, defaults
    connection.py   the connection pools, and whether Redis answers (`/health`)

Writes: `append()` only numbers the event and queues it (a short lock, no I/O); one writer task
per store encodes queued events and writes them in pipelined Lua calls, one per job. `finish()`
commits the final state and appends the terminal in one Lua call, then the runner's `expire()`
sets the retention TTL. A dead owner's jobs are ended by another replica ("owner lost").

Options come from the URL query (`redis://host:6379/0?prefix=app:&lease_ttl=10`), else from env
(`NARRATION_REDIS_PREFIX`, `NARRATION_LEASE_TTL_S`, `NARRATION_REDIS_MAX_PENDING`,
`NARRATION_RETENTION_S`), else the defaults. The scripts build key names from the prefix, so
this store needs a standalone Redis (or one cluster slot), not Redis Cluster.
"""

from .leases import OWNER_LOST
from .log import RedisEventLog
from .options import RedisOptions
from .store import RedisStore

__all__ = ["OWNER_LOST", "RedisEventLog", "RedisOptions", "RedisStore"]
