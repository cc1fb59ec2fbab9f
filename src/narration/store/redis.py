"""The Redis Streams store: job records and event logs shared by several server replicas.

Keys (`prefix` defaults to `narration:`):

    {prefix}job:{id}   hash    the job record, plus `n` (ids used so far) and `t` (terminal id)
    {prefix}log:{id}   stream  one entry per event: stream id `<n>-0` is SSE id n, field `d` the
                               event JSON; the terminal entry has `e` (done|error|cancelled) + `d`
    {prefix}jobs       zset    job ids by creation time (listing)
    {prefix}leases     zset    unfinished job ids -> lease deadline (ms, Redis server clock)

Writes: `append()` only numbers the event and queues it (a short lock, no I/O); one writer task
per store encodes queued events and writes them in pipelined Lua calls, one per job, which skip
ids already written, so a retried batch never duplicates. While Redis is unreachable the queue
holds at most `max_pending` events; older ones are then dropped and counted, and readers see
the hole in the ids as a `gap` frame with its exact size. `finish()` commits the final state and
appends the terminal in one Lua call, then the runner's `expire()` sets the retention TTL.

Ownership: the replica that creates a job holds its lease (renewed every `0.2 * lease_ttl_s`, each
renewal valid `0.7 * lease_ttl_s`); every replica looks for expired leases about every
`0.08 * lease_ttl_s` and, in one atomic Lua call, marks such jobs failed ("owner lost") and
appends their `error` terminal. So a dead owner's job ends within `0.8 * lease_ttl_s`, once.

Options come from the URL query (`redis://host:6379/0?prefix=app:&lease_ttl=10`), else from env
(`NARRATION_REDIS_PREFIX`, `NARRATION_LEASE_TTL_S`, `NARRATION_REDIS_MAX_PENDING`,
`NARRATION_RETENTION_S`), else the defaults. The scripts build key names from the prefix, so
this store needs a standalone Redis (or one cluster slot), not Redis Cluster.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import functools
import logging
import os
import random
import socket
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, replace
from hashlib import sha1
from typing import Any, ClassVar, ParamSpec, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..events import NarrationEvent, encode_event
from ..wire import TERMINAL_EVENTS, event_frame_from_json, gap_frame, terminal_data
from ._reentry import ReentrySafe
from .base import EventLog, JobRecord, LogLimits, ReadResult, Store, StoreUnavailable
from .redis_tail import StreamTail, stream_entry_id

__all__ = ["RedisEventLog", "RedisOptions", "RedisStore"]

logger = logging.getLogger("narration.store.redis")

OWNER_LOST = "owner lost"
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
_T = TypeVar("_T")
_P = ParamSpec("_P")


def _unavailable_when_unreachable(
    method: Callable[_P, Coroutine[Any, Any, _T]],
) -> Callable[_P, Coroutine[Any, Any, _T]]:
    """Turn "Redis cannot be reached" into `StoreUnavailable` (a 503) for the API's calls."""

    @functools.wraps(method)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return await method(*args, **kwargs)
        except _UNREACHABLE as exc:
            raise StoreUnavailable(f"the Redis store is unreachable: {exc}") from exc

    return wrapper


_FINAL = frozenset({"completed", "failed", "cancelled"})
_READ_BATCH = 2048  # entries per XREAD
_WRITE_BATCH = 8192  # queued events per pipelined write
_BLOCK_CHUNK_S = 5.0  # longest single XREAD BLOCK (below the socket timeout)
_SHORT_BLOCK_S = 0.05  # a reader's own XREAD BLOCK before it waits on the shared tail
_READ_CONNECTIONS = 48  # pooled connections for stream reads (URL `max_connections`)
_CONTROL_CONNECTIONS = 16  # pooled connections for everything else: writes, leases, the API
# A dead owner's job ends within _LEASE_SPAN + 1.2 * _REAP_EVERY = 0.8 of lease_ttl_s; a live
# owner keeps its jobs through stalls of up to _LEASE_SPAN - _RENEW_EVERY = 0.5 of it.
_LEASE_SPAN = 0.70  # a renewal is valid this fraction of lease_ttl_s
_RENEW_EVERY = 0.20  # renew leases every this fraction of lease_ttl_s
_REAP_EVERY = 0.08  # look for expired leases every this fraction of lease_ttl_s (+-20 %)
_PRUNE_EVERY_S = 30.0  # drop expired jobs from the listing index
_READER_GRACE_S = 5.0  # a finished job's stream outlives its record by at least this
_HEAD = struct.Struct(">II")  # an event in an append blob: id, JSON length


# --------------------------------------------------------------------------- Lua

_NOW = """
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

# KEYS: job, stream. ARGV: maxlen, then the events in id order packed in one string: for each,
# a big-endian u32 id, a u32 length and that many bytes of event JSON (one argument, so the
# client packs one blob, not two arguments per event). Ids already written are skipped (a
# retried batch), so nothing is ever written twice.
# Returns the last id written, -1 if the job is gone, -2 if it is already sealed.
_APPEND = """
local meta = redis.call('HMGET', KEYS[1], 'state', 't', 'n')
if not meta[1] then return -1 end
if meta[2] then return -2 end
local last = tonumber(meta[3] or '0')
local first = last
local blob = ARGV[2]
local pos, size = 1, #blob
while pos <= size do
  local id, length
  id, length, pos = struct.unpack('>I4I4', blob, pos)
  if id > last then
    local data = string.sub(blob, pos, pos + length - 1)
    redis.call('XADD', KEYS[2], string.format('%d-0', id), 'd', data)
    last = id
  end
  pos = pos + length
end
if last ~= first then
  redis.call('HSET', KEYS[1], 'n', last)
  redis.call('XTRIM', KEYS[2], 'MAXLEN', '~', ARGV[1])
end
return last
"""

# KEYS: job, jobs index, leases, stream. ARGV: job id, created_at, lease ms, field, value, ...
_CREATE = (
    _NOW
    + """
redis.call('DEL', KEYS[1], KEYS[4])
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[1])
return now
"""
)

# KEYS: job. ARGV: field, value, ... Applied only while the job is queued (queued -> running).
_START = """
if redis.call('HGET', KEYS[1], 'state') ~= 'queued' then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""

# KEYS: job, stream, leases. ARGV: job id, state, finished_at, error, has_error (1|0),
# terminal id, event name, terminal json, retention ms.
# The final state and the terminal entry are written together; returns the terminal id,
# -1 if the job is gone, -2 if it was already final (e.g. reaped after its lease expired).
_FINISH = """
local meta = redis.call('HMGET', KEYS[1], 'state', 't', 'n')
if not meta[1] then return -1 end
if meta[2] or (meta[1] ~= 'queued' and meta[1] ~= 'running') then return -2 end
local tid = math.max(tonumber(ARGV[6]), tonumber(meta[3] or '0') + 1)
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'finished_at', ARGV[3], 'n', tid - 1, 't', tid)
if ARGV[5] == '1' then
  redis.call('HSET', KEYS[1], 'error', ARGV[4])
else
  redis.call('HDEL', KEYS[1], 'error')
end
redis.call('XADD', KEYS[2], string.format('%d-0', tid), 'e', ARGV[7], 'd', ARGV[8])
redis.call('ZREM', KEYS[3], ARGV[1])
local ttl = math.max(tonumber(ARGV[9]), 1)
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return tid
"""

# KEYS: leases. ARGV: lease ms, job id, ... Extends the leases still held; returns the ids
# whose lease is gone (finished, or reaped by another replica).
_RENEW = (
    _NOW
    + """
local deadline = now + tonumber(ARGV[1])
local lost = {}
for i = 2, #ARGV do
  if redis.call('ZADD', KEYS[1], 'XX', 'CH', deadline, ARGV[i]) == 0 then
    if not redis.call('ZSCORE', KEYS[1], ARGV[i]) then table.insert(lost, ARGV[i]) end
  end
end
return lost
"""
)

# KEYS: leases. ARGV: key prefix, retention ms, max jobs, error (JSON string), error (raw).
# Ends every job whose lease expired: state failed + `error` terminal, atomically, so exactly
# one replica reaps each job. Returns the reaped job ids.
_REAP = (
    _NOW
    + """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local reaped = {}
local ttl = math.max(tonumber(ARGV[2]), 1)
local finished = string.format('%d.%06d', tonumber(clock[1]), tonumber(clock[2]))
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local job = ARGV[1] .. 'job:' .. id
  local stream = ARGV[1] .. 'log:' .. id
  local meta = redis.call('HMGET', job, 'state', 't', 'n')
  if meta[1] and not meta[2] and (meta[1] == 'queued' or meta[1] == 'running') then
    local tid = tonumber(meta[3] or '0') + 1
    redis.call('HSET', job, 'state', 'failed', 'error', ARGV[5], 'finished_at', finished,
               'n', tid - 1, 't', tid)
    local data = '{"job_id":"' .. id .. '","state":"failed","error":' .. ARGV[4] .. '}'
    redis.call('XADD', stream, string.format('%d-0', tid), 'e', 'error', 'd', data)
    redis.call('PEXPIRE', job, ttl)
    redis.call('PEXPIRE', stream, ttl)
    table.insert(reaped, id)
  end
end
return reaped
"""
)

# KEYS: job. ARGV: key prefix, job id. Asks the owner of a running job to cancel it, through
# its inbox list; returns 1 if asked, 0 if the job is unknown, finished or has no owner.
_REQUEST_CANCEL = """
local meta = redis.call('HMGET', KEYS[1], 'state', 'owner', 't')
if meta[3] or not meta[2] or (meta[1] ~= 'queued' and meta[1] ~= 'running') then return 0 end
local inbox = ARGV[1] .. 'cancel:' .. meta[2]
redis.call('RPUSH', inbox, ARGV[2])
redis.call('PEXPIRE', inbox, 60000)
return 1
"""

# KEYS: jobs index. ARGV: key prefix, how many of the oldest to check.
_PRUNE = """
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
local removed = 0
for _, id in ipairs(ids) do
  if redis.call('EXISTS', ARGV[1] .. 'job:' .. id) == 0 then
    redis.call('ZREM', KEYS[1], id)
    removed = removed + 1
  end
end
return removed
"""


@dataclass(frozen=True, slots=True)
class _Script:
    source: str
    sha: str

    @classmethod
    def of(cls, source: str) -> _Script:
        return cls(source, sha1(source.encode()).hexdigest())


_SCRIPTS = {
    name: _Script.of(source)
    for name, source in {
        "append": _APPEND,
        "create": _CREATE,
        "start": _START,
        "finish": _FINISH,
        "renew": _RENEW,
        "reap": _REAP,
        "prune": _PRUNE,
        "request_cancel": _REQUEST_CANCEL,
    }.items()
}


# --------------------------------------------------------------------------- options


@dataclass(frozen=True, slots=True)
class RedisOptions:
    """What a `RedisStore` can be told (URL query keys and env names in brackets).

    - `prefix` [`prefix`, `NARRATION_REDIS_PREFIX`]: key prefix, to share one Redis database.
    - `lease_ttl_s` [`lease_ttl`, `NARRATION_LEASE_TTL_S`]: a dead owner's jobs end within this.
    - `max_pending` [`max_pending`, `NARRATION_REDIS_MAX_PENDING`]: events buffered while
      Redis is unreachable, before the oldest are dropped (and reported as a gap).
    - `retention_s` [`retention`, `NARRATION_RETENTION_S`]: how long a finished job is kept
      when no `expire()` follows (owner lost, or Redis unreachable at that moment). A server
      passes its own `retention_s` setting, which the URL's `retention` still overrides.
    - `reaper`: look for jobs of dead owners (always on in servers; tests turn it off).
    """

    prefix: str = "narration:"
    lease_ttl_s: float = 10.0
    max_pending: int = 100_000
    retention_s: float = 600.0
    reaper: bool = True

    _QUERY: ClassVar[dict[str, str]] = {
        "prefix": "prefix",
        "lease_ttl": "lease_ttl_s",
        "max_pending": "max_pending",
        "retention": "retention_s",
    }
    _ENV: ClassVar[dict[str, str]] = {
        "NARRATION_REDIS_PREFIX": "prefix",
        "NARRATION_LEASE_TTL_S": "lease_ttl_s",
        "NARRATION_REDIS_MAX_PENDING": "max_pending",
        "NARRATION_RETENTION_S": "retention_s",
    }

    @classmethod
    def from_url(
        cls, url: str, environ: dict[str, str] | None = None, retention_s: float | None = None
    ) -> tuple[str, RedisOptions]:
        """(the URL without narration's query keys, the options: env, then `retention_s`
        when given, then the URL's query keys, each overriding the one before)."""
        env = os.environ if environ is None else environ
        values: dict[str, str] = {}
        for name, field in cls._ENV.items():
            if env.get(name):
                values[field] = env[name]
        if retention_s is not None:
            values["retention_s"] = repr(float(retention_s))
        parts = urlsplit(url)
        kept: list[tuple[str, str]] = []
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in cls._QUERY:
                values[cls._QUERY[key]] = value
            else:
                kept.append((key, value))
        clean = urlunsplit(parts._replace(query=urlencode(kept)))
        return clean, cls()._with(values)

    def _with(self, values: dict[str, str]) -> RedisOptions:
        typed: dict[str, Any] = {}
        for field, raw in values.items():
            try:
                if field == "prefix":
                    typed[field] = raw
                elif field == "max_pending":
                    typed[field] = max(1, int(raw))
                else:
                    typed[field] = float(raw)
            except ValueError:
                raise ValueError(f"Redis store option {field}={raw!r} is not a number") from None
        options = replace(self, **typed)
        if options.lease_ttl_s <= 0:
            raise ValueError("lease_ttl must be > 0 seconds")
        return options


# --------------------------------------------------------------------------- the log


class RedisEventLog(EventLog):
    """One job's log in a Redis stream.

    The replica that created the job holds the writable log (`owned`): `append()` numbers
    events and queues them for the store's writer. Other replicas get read-only views from
    `RedisStore.log()`; appending to those is counted as `late` and ignored.
    """

    __slots__ = (
        "_bytes",
        "_encoded",
        "_job_key",
        "_last_id",
        "_log_key",
        "_queued",
        "_sealed",
        "_store",
        "_terminal_id",
        "dropped",
        "job_id",
        "late",
        "lost",
        "owned",
    )

    def __init__(
        self,
        store: RedisStore,
        job_id: str,
        *,
        owned: bool,
        last_id: int = 0,
        terminal_id: int | None = None,
    ) -> None:
        self.job_id = job_id
        self.owned = owned
        self._store = store
        self._job_key = store._key("job:", job_id)
        self._log_key = store._key("log:", job_id)
        self._last_id = last_id  # ids handed out so far (owner) / last seen (view)
        self._terminal_id = terminal_id
        self._sealed = not owned or terminal_id is not None
        self._queued = 0  # events queued or being written
        self._encoded = 0  # events encoded so far (for the byte limit)
        self._bytes = 0  # their JSON size
        self.dropped = 0  # dropped while Redis was unreachable (readers get a gap)
        self.late = 0  # arrived after the terminal (counted, not written)
        self.lost = 0  # the job was gone from Redis when they were written

    def append(self, event: NarrationEvent) -> None:
        store = self._store
        with store._lock:
            if store._busy:  # this thread re-entered, mid-way through a section of the store
                store._set_aside((self, event), store._loop)
                return
            store._busy = True  # `with store:` inlined: this is the emit path
            try:
                if self._sealed or store._closed:
                    self.late += 1
                    return
                self._last_id += 1
                self._queued += 1
                pending = store._pending
                pending.append((self, self._last_id, event))
                if len(pending) > store.options.max_pending:
                    store._drop_oldest()
                if not store._idle:
                    return
                store._idle = False
            finally:
                store._busy = False
        store._kick()

    async def read(self, after: int, timeout: float) -> ReadResult:
        terminal = self._terminal_id
        if terminal is not None and after >= terminal:
            return ReadResult([], after, True)
        return await self._store._read(self, after, timeout)

    def terminal_id(self) -> int | None:
        return self._terminal_id

    def count(self) -> int:
        if self._terminal_id is not None:
            return self._terminal_id - 1
        return self._last_id

    async def flush(self) -> None:
        await self._store._flush(self, self._store.flush_timeout_s)

    def _maxlen(self, limits: LogLimits) -> int:
        """Entries to keep: the event cap, lowered to fit the byte cap at the mean event size."""
        if not self._encoded or not self._bytes:
            return limits.max_events
        by_bytes = limits.max_bytes * self._encoded // self._bytes
        return max(1, min(limits.max_events, by_bytes))


# --------------------------------------------------------------------------- the store

_Item = tuple[RedisEventLog, int, "NarrationEvent | bytes"]


class RedisStore(ReentrySafe, Store):
    """Jobs and their logs in Redis, shared by every replica pointed at the same database."""

    flush_timeout_s = 10.0  # how long finish() waits for queued events before the terminal
    commit_timeout_s = 30.0  # how long finish() retries while Redis is unreachable

    def __init__(
        self,
        url: str,
        limits: LogLimits | None = None,
        *,
        options: RedisOptions | None = None,
        replica: str | None = None,
        environ: dict[str, str] | None = None,
        retention_s: float | None = None,
    ) -> None:
        clean_url, from_url = RedisOptions.from_url(url, environ, retention_s)
        self.url = clean_url
        self.options = options or from_url
        self.limits = limits or LogLimits()
        self.replica = replica or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._prefix = self.options.prefix
        self._jobs_key = self._prefix + "jobs"
        self._leases_key = self._prefix + "leases"
        connection: dict[str, Any] = {
            "protocol": 2,
            "decode_responses": False,
            "socket_timeout": _BLOCK_CHUNK_S + 5.0,
            "socket_connect_timeout": 2.0,
            "retry": Retry(NoBackoff(), 1),
            "health_check_interval": 0,
        }
        # Bounded pools: a burst waits a moment for a connection rather than opening one each.
        # Stream reads have their own (the URL's `max_connections` sets its size), so a burst
        # of woken readers never delays a lease renewal, a write or an API call.
        control_url = _without_query_key(clean_url, "max_connections")  # it sizes reads only
        control_pool = aioredis.BlockingConnectionPool.from_url(
            control_url,
            max_connections=_CONTROL_CONNECTIONS,
            timeout=10.0,
            **connection,
        )
        read_pool = aioredis.BlockingConnectionPool.from_url(
            clean_url, max_connections=_READ_CONNECTIONS, timeout=10.0, **connection
        )
        self._client: aioredis.Redis = aioredis.Redis.from_pool(control_pool)
        self._reader: aioredis.Redis = aioredis.Redis.from_pool(read_pool)
        tail_client = aioredis.Redis.from_url(
            control_url, single_connection_client=True, **connection
        )
        # Readers in a short block of their own at once: each holds a pooled connection.
        self._max_short_blocks = max(1, min(32, read_pool.max_connections // 2))
        raw = _raw_reply
        for client in (self._client, self._reader, tail_client):
            for command in ("XREAD", "HMGET", "EVALSHA", "ZREVRANGE"):
                client.set_response_callback(command, raw)
        # Readers that caught up wait here, on one shared connection, not on one each.
        self._short_blocks = 0
        self._tail = StreamTail(
            tail_client,
            self._read_command,
            self._key("tail:", self.replica),
            _UNREACHABLE,
            batch=_READ_BATCH,
        )
        # Writer state, shared with emitting threads under _lock. The lock is re-entrant and
        # the sections that change counters mark the store busy: an `n()` re-entering from a
        # signal handler or finalizer mid-section is set aside (`ReentrySafe`), never awaited.
        self._lock = threading.RLock()
        self._busy = False
        self._aside: deque[tuple[RedisEventLog, NarrationEvent]] | None = None
        self._pending: deque[_Item] = deque()
        # Events the writer has taken out of _pending for the write in progress: still not
        # written, so /health counts them in `backlog` (a failed write puts them back).
        self._writing = 0
        self._idle = True  # the writer waits for a kick
        self._closed = False
        self.dropped = 0
        # Event-loop state.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._wake: asyncio.Event | None = None
        self._progress: asyncio.Future[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._owned: dict[str, RedisEventLog] = {}
        self._leased: set[str] = set()
        self._on_cancel: Callable[[str], Awaitable[Any]] | None = None
        self._cancelling: set[asyncio.Task[Any]] = set()
        self.reaped = 0
        self._down_since: float | None = None
        self._last_error: str | None = None

    # ---------------------------------------------------------------- keys and plumbing

    def _key(self, kind: str, job_id: str) -> str:
        return f"{self._prefix}{kind}{job_id}"

    def _start(self) -> None:
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._writer(), name="narration-redis-writer"))
        self._tasks.append(asyncio.create_task(self._maintain(), name="narration-redis-leases"))
        self._tasks.append(asyncio.create_task(self._inbox(), name="narration-redis-cancels"))

    async def _command(self, *args: Any) -> Any:
        """One Redis command, its reply as Redis sent it (bytes, lists, ints)."""
        return await self._client.execute_command(*args)  # type: ignore[no-untyped-call]

    async def _read_command(self, *args: Any) -> Any:
        """`_command` on the readers' own pool (stream reads, the tail's pokes)."""
        return await self._reader.execute_command(*args)  # type: ignore[no-untyped-call]

    async def _eval(self, name: str, keys: Sequence[str], args: Iterable[Any]) -> Any:
        """Run a script by its sha, loading it first if this Redis does not know it."""
        script = _SCRIPTS[name]
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return await self._command(*command)
        except NoScriptError:
            await self._load_scripts()
            return await self._command(*command)

    async def _load_scripts(self) -> None:
        for script in _SCRIPTS.values():
            await self._command("SCRIPT", "LOAD", script.source)

    def _note_failure(self, exc: BaseException) -> None:
        self._last_error = f"{type(exc).__name__}: {exc}"
        if self._down_since is None:
            self._down_since = time.time()
            logger.warning("narration: Redis unreachable (%s); buffering events", exc)

    def _note_ok(self) -> None:
        if self._down_since is not None:
            down_for = time.time() - self._down_since
            self._down_since = None
            logger.warning("narration: Redis reachable again after %.1f s", down_for)

    # ---------------------------------------------------------------- the writer

    def _kick(self) -> None:
        """Wake the writer (from any thread); never raises."""
        wake, loop = self._wake, self._loop
        if wake is None or loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            wake.set()
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing will be written
            loop.call_soon_threadsafe(wake.set)

    def _replay(self, item: tuple[RedisEventLog, NarrationEvent]) -> None:
        log, event = item
        log.append(event)

    def _drop_oldest(self) -> None:
        """Drop queued events beyond `max_pending`, oldest first (called with _lock held)."""
        pending, limit = self._pending, self.options.max_pending
        while len(pending) > limit:
            log, _, _ = pending.popleft()
            log._queued -= 1
            log.dropped += 1
            self.dropped += 1

    async def _writer(self) -> None:
        wake = self._wake
        assert wake is not None
        delay = 0.05
        while True:
            await wake.wait()
            wake.clear()
            while True:
                batch = self._take_batch()
                if not batch:
                    break
                try:
                    written = await self._write(batch)
                except Exception:  # a bug must not stop the writer: count and go on
                    logger.exception("narration: writing events to Redis failed")
                    written = True
                    with self:
                        for log, _, _ in batch:
                            log._queued -= 1
                            log.lost += 1
                if written:
                    self._writing = 0
                    self._signal_progress()
                    delay = 0.05
                    continue
                with self:  # put the batch back in front; keep the buffer bounded
                    self._writing = 0
                    self._pending.extendleft(reversed(batch))
                    self._drop_oldest()
                self._signal_progress()
                if self._closed:
                    self._drop_all()
                    continue
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _take_batch(self) -> list[_Item]:
        """The next batch to write, oldest first; empty (and the writer idle) when none."""
        with self:  # busy: an append re-entering here must see _idle and kick
            pending = self._pending
            if not pending:
                self._idle = True
                return []
            batch = [pending.popleft() for _ in range(min(len(pending), _WRITE_BATCH))]
            self._writing = len(batch)
            return batch

    def _drop_all(self) -> None:
        """Count every queued event as dropped (the store is closing)."""
        with self:
            while self._pending:
                log, _, _ = self._pending.popleft()
                log._queued -= 1
                log.dropped += 1
                self.dropped += 1

    async def _write(self, batch: list[_Item]) -> bool:
        """Write `batch` in one pipelined round trip; False when Redis is unreachable."""
        groups: dict[RedisEventLog, list[bytes]] = {}
        head = _HEAD.pack
        for index, (log, event_id, item) in enumerate(batch):
            if type(item) is not bytes:
                assert isinstance(item, NarrationEvent)
                item = encode_event(item, event_id)
                batch[index] = (log, event_id, item)
                log._encoded += 1
                log._bytes += len(item)
            args = groups.get(log)
            if args is None:
                args = groups[log] = []
            args.append(head(event_id, len(item)))
            args.append(item)
        sha = _SCRIPTS["append"].sha
        pipe = self._client.pipeline(transaction=False)
        logs = list(groups)
        for log in logs:
            args = groups[log]
            maxlen = log._maxlen(self.limits)
            blob = b"".join(args)
            pipe.execute_command("EVALSHA", sha, 2, log._job_key, log._log_key, maxlen, blob)
        try:
            results = await pipe.execute(raise_on_error=False)
        except _UNREACHABLE as exc:
            self._note_failure(exc)
            return False
        self._note_ok()
        if any(isinstance(result, NoScriptError) for result in results):
            try:
                await self._load_scripts()
            except _UNREACHABLE as exc:
                self._note_failure(exc)
            return False  # retried at once: the scripts skip what was written
        refused: list[tuple[str, Exception]] = []
        with self:
            for log, result in zip(logs, results, strict=True):
                count = len(groups[log]) // 2
                log._queued -= count
                if isinstance(result, Exception):
                    if not log.lost:  # once per job: the rest is counted
                        refused.append((log.job_id, result))
                    log.lost += count
                elif result == -1:
                    log.lost += count
                elif result == -2:
                    log.late += count
        for job_id, error in refused:  # logged outside the lock: a handler may narrate
            logger.error("narration: Redis refused events of %s: %s", job_id, error)
        return True

    def _signal_progress(self) -> None:
        progress = self._progress
        if progress is not None:
            self._progress = None
            if not progress.done():
                progress.set_result(None)

    async def _flush(self, log: RedisEventLog, timeout: float) -> None:
        """Wait (up to `timeout` s) until the events queued for `log` are written or dropped."""
        if log._queued <= 0 or self._loop is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while log._queued > 0 and not self._closed:
            remaining = deadline - loop.time()
            if remaining <= 0:
                logger.warning(
                    "narration: %d events of %s not written yet", log._queued, log.job_id
                )
                return
            if self._progress is None:
                self._progress = loop.create_future()
            await asyncio.wait((self._progress,), timeout=min(remaining, 0.25))

    # ---------------------------------------------------------------- reading

    async def _read(self, log: RedisEventLog, after: int, timeout: float) -> ReadResult:
        """Entries after `after`: a short blocking XREAD of its own (a busy stream's next events
        come within it), then, caught up, a wait on the shared tail, which holds no connection
        and hands over the entries it read."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        waited = False
        while True:
            remaining = deadline - loop.time()
            command: list[Any] = ["XREAD", "COUNT", _READ_BATCH]
            short_block = (
                remaining > 0 and not waited and self._short_blocks < self._max_short_blocks
            )
            if short_block:
                block = max(1, int(min(remaining, _SHORT_BLOCK_S) * 1000))
                command += ["BLOCK", block]
                self._short_blocks += 1
            command += ["STREAMS", log._log_key, b"%d-0" % after]
            try:
                reply = await self._read_command(*command)
            except _UNREACHABLE as exc:
                self._note_failure(exc)
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return ReadResult([], after, False)
                await asyncio.sleep(min(remaining, 0.5))
                continue
            finally:
                if short_block:
                    self._short_blocks -= 1
            if self._down_since is not None:
                self._note_ok()
            if reply:
                return self._frames(log, after, reply[0][1])
            left = deadline - loop.time()
            if left <= 0:
                if timeout > 0 and not await self._exists(log._job_key):
                    # Forgotten by Redis (flushed, restarted without persistence): end the
                    # stream instead of waiting forever; a resume then answers 404.
                    return ReadResult([], after, True)
                return ReadResult([], after, False)
            entries = await self._tail.wait(log._log_key, after, min(left, _BLOCK_CHUNK_S))
            if entries:
                result = self._frames(log, after, entries)
                if result.frames or result.done:
                    return result
            waited = entries is not None

    async def _exists(self, key: str) -> bool:
        try:
            return bool(await self._read_command("EXISTS", key))
        except _UNREACHABLE as exc:
            self._note_failure(exc)
            return True

    def _frames(self, log: RedisEventLog, after: int, entries: list[Any]) -> ReadResult:
        """SSE frames of stream entries read after `after` (a `gap` where ids jump)."""
        frames: list[bytes] = []
        cursor = after
        for entry_id, fields in entries:
            event_id = stream_entry_id(entry_id)
            if event_id <= cursor:
                continue
            if event_id > cursor + 1:
                frames.append(gap_frame(event_id - cursor - 1, event_id))
            cursor = event_id
            if fields[0] == b"d":
                frames.append(event_frame_from_json(event_id, fields[1]))
                continue
            values = dict(zip(fields[::2], fields[1::2], strict=True))
            frames.append(
                b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, values[b"e"], values[b"d"])
            )
            log._terminal_id = event_id
            return ReadResult(frames, cursor, True)
        if not log.owned and cursor > log._last_id:
            log._last_id = cursor
        return ReadResult(frames, cursor, False)

    # ---------------------------------------------------------------- Store

    @_unavailable_when_unreachable
    async def create(self, record: JobRecord) -> EventLog:
        self._start()
        record.owner = self.replica
        fields = _record_fields(record)
        fields += ["n", 0]
        lease_ms = int(self.options.lease_ttl_s * _LEASE_SPAN * 1000)
        job_key, log_key = self._key("job:", record.job_id), self._key("log:", record.job_id)
        keys = [job_key, self._jobs_key, self._leases_key, log_key]
        args = [record.job_id, repr(record.created_at), lease_ms, *fields]
        await self._eval("create", keys, args)
        log = RedisEventLog(self, record.job_id, owned=True)
        self._owned[record.job_id] = log
        self._leased.add(record.job_id)
        return log

    @_unavailable_when_unreachable
    async def get(self, job_id: str) -> JobRecord | None:
        self._start()
        raw = await self._client.hgetall(self._key("job:", job_id))
        return _record_from(job_id, raw) if raw else None

    @_unavailable_when_unreachable
    async def log(self, job_id: str) -> EventLog | None:
        self._start()
        owned = self._owned.get(job_id)
        if owned is not None:
            return owned
        state, last, terminal = await self._command(
            "HMGET", self._key("job:", job_id), "state", "n", "t"
        )
        if state is None:
            return None
        return RedisEventLog(
            self,
            job_id,
            owned=False,
            last_id=int(last or 0),
            terminal_id=int(terminal) if terminal is not None else None,
        )

    @_unavailable_when_unreachable
    async def list(self, state: str | None, limit: int) -> list[JobRecord]:
        self._start()
        result: list[JobRecord] = []
        chunk = limit if state is None else max(limit, 200)
        start = 0
        stale: list[bytes] = []
        while len(result) < limit:
            ids = await self._command("ZREVRANGE", self._jobs_key, start, start + chunk - 1)
            if not ids:
                break
            start += len(ids)
            pipe = self._client.pipeline(transaction=False)
            for job_id in ids:
                pipe.hgetall(self._key("job:", job_id.decode()))
            for job_id, raw in zip(ids, await pipe.execute(), strict=True):
                if not raw:
                    stale.append(job_id)
                    continue
                record = _record_from(job_id.decode(), raw)
                if state is None or record.state == state:
                    result.append(record)
                    if len(result) >= limit:
                        break
        if stale:
            await self._client.zrem(self._jobs_key, *stale)
        return result

    @_unavailable_when_unreachable
    async def start(self, record: JobRecord) -> None:
        self._start()
        fields: list[Any] = ["state", record.state]
        if record.started_at is not None:
            fields += ["started_at", repr(record.started_at)]
        await self._eval("start", [self._key("job:", record.job_id)], fields)

    async def finish(self, record: JobRecord, log: EventLog) -> None:
        """Seal `log`, wait for its queued events, then commit state + terminal in one call.

        While Redis is unreachable this retries for `commit_timeout_s`, then gives up on the
        job's lease so another replica ends it ("owner lost") once Redis answers again.
        """
        self._start()
        assert isinstance(log, RedisEventLog)
        with self._lock:
            log._sealed = True
        await self._flush(log, self.flush_timeout_s)
        terminal_id = log._last_id + 1
        name = TERMINAL_EVENTS[record.state]
        data = terminal_data(record.job_id, record.state, record.error)
        keys = [log._job_key, log._log_key, self._leases_key]
        args = [
            record.job_id,
            record.state,
            repr(record.finished_at or time.time()),
            record.error or "",
            "1" if record.error is not None else "0",
            terminal_id,
            name,
            data,
            int(self.options.retention_s * 1000),
        ]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.commit_timeout_s
        delay = 0.05
        while True:
            try:
                result = int(await self._eval("finish", keys, args))
                break
            except _UNREACHABLE as exc:
                self._note_failure(exc)
                if loop.time() >= deadline:
                    self._leased.discard(record.job_id)
                    logger.error(
                        "narration: could not end %s in Redis (%s); another replica will "
                        "end it once its lease expires",
                        record.job_id,
                        exc,
                    )
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
        self._note_ok()
        self._leased.discard(record.job_id)
        if result > 0:
            log._terminal_id = result
        elif result == -2:  # already ended elsewhere (its lease had expired): take that end
            stored = await self.get(record.job_id)
            if stored is not None:
                record.state, record.error = stored.state, stored.error
                record.finished_at = stored.finished_at
            _, _, terminal = await self._command("HMGET", log._job_key, "state", "n", "t")
            if terminal is not None:
                log._terminal_id = int(terminal)

    async def expire(self, job_id: str, after_s: float) -> None:
        self._owned.pop(job_id, None)
        job_key, log_key = self._key("job:", job_id), self._key("log:", job_id)
        ms = max(1, int(after_s * 1000))
        pipe = self._client.pipeline(transaction=True)
        pipe.pexpire(job_key, ms)  # then GET answers 404
        # Readers still streaming get a little longer to read the terminal.
        pipe.pexpire(log_key, max(ms, int(_READER_GRACE_S * 1000)))
        if after_s <= 0:
            pipe.zrem(self._jobs_key, job_id)
        try:
            await pipe.execute()
        except _UNREACHABLE as exc:  # the finish commit already set the default retention
            self._note_failure(exc)

    async def open(self) -> None:
        """Start the writer and the lease/reaper task, and check that Redis answers."""
        self._start()
        try:
            await self._client.ping()
            await self._load_scripts()
        except _UNREACHABLE as exc:  # start anyway: buffered, reported in /health, retried
            self._note_failure(exc)

    async def request_cancel(self, job_id: str) -> bool:
        """Ask the replica running `job_id` to cancel it (through its inbox list in Redis)."""
        self._start()
        args = [self._prefix, job_id]
        return bool(await self._eval("request_cancel", [self._key("job:", job_id)], args))

    def on_cancel_request(self, cancel: Callable[[str], Awaitable[Any]]) -> None:
        self._on_cancel = cancel

    async def _inbox(self) -> None:
        """Wait for cancel requests for this replica's jobs (BLPOP on its inbox) and act."""
        inbox = f"{self._prefix}cancel:{self.replica}"
        while not self._closed:
            try:
                reply = await self._command("BLPOP", inbox, int(_BLOCK_CHUNK_S))
            except _UNREACHABLE as exc:
                self._note_failure(exc)
                await asyncio.sleep(0.5)
                continue
            if not reply or self._on_cancel is None:
                continue
            job_id = reply[1].decode()
            task = asyncio.ensure_future(self._on_cancel(job_id))
            self._cancelling.add(task)
            task.add_done_callback(self._cancelling.discard)

    async def close(self) -> None:
        """Write what is queued (for up to 5 s), stop the background tasks, disconnect."""
        if self._loop is not None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5.0
            while (
                (self._pending or not self._idle)
                and loop.time() < deadline
                and self._down_since is None
            ):
                if self._progress is None:
                    self._progress = loop.create_future()
                await asyncio.wait((self._progress,), timeout=0.25)
        self._closed = True
        self._drop_all()
        pending = {*self._tasks, *self._cancelling}
        for _ in range(100):
            if not pending:
                break
            # Cancel again until done: on Python 3.11, asyncio.wait_for (used by redis-py to
            # send) can swallow a cancellation that lands as the send completes.
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.1)
        self._tasks.clear()
        await self._tail.close()
        await self._reader.aclose()
        await self._client.aclose()

    def health(self) -> dict[str, Any]:
        down_since = self._down_since
        return {
            "store": type(self).__name__,
            "redis": {
                "connected": down_since is None,
                "down_for_s": None if down_since is None else round(time.time() - down_since, 3),
                "error": self._last_error if down_since is not None else None,
                "backlog": len(self._pending) + self._writing,  # not written yet
                "dropped": self.dropped,
                "jobs_owned": len(self._leased),
                "jobs_reaped": self.reaped,
                "replica": self.replica,
                "lease_ttl_s": self.options.lease_ttl_s,
            },
        }

    # ---------------------------------------------------------------- leases

    async def _maintain(self) -> None:
        """Renew this replica's leases; end jobs whose owner's lease expired; prune the index."""
        ttl = self.options.lease_ttl_s
        loop = asyncio.get_running_loop()
        next_renew = loop.time() + ttl * _RENEW_EVERY
        next_prune = loop.time() + _PRUNE_EVERY_S
        while True:
            await asyncio.sleep(ttl * _REAP_EVERY * random.uniform(0.8, 1.2))
            try:
                now = loop.time()
                if now >= next_renew:
                    next_renew = now + ttl * _RENEW_EVERY
                    await self.renew_leases()
                if self.options.reaper:
                    await self.reap_orphans()
                else:
                    await self._command("PING")
                if now >= next_prune:
                    next_prune = now + _PRUNE_EVERY_S
                    await self._eval("prune", [self._jobs_key], [self._prefix, 200])
                self._note_ok()
            except _UNREACHABLE as exc:
                self._note_failure(exc)
            except Exception:
                logger.exception("narration: Redis lease maintenance failed")

    async def renew_leases(self) -> builtins.list[str]:
        """Extend this replica's leases; returns (and seals locally) the jobs it lost."""
        lease_ms = int(self.options.lease_ttl_s * _LEASE_SPAN * 1000)
        held = list(self._leased)
        lost: builtins.list[str] = []
        for index in range(0, len(held), 1000):
            chunk = held[index : index + 1000]
            reply = await self._eval("renew", [self._leases_key], [lease_ms, *chunk])
            lost.extend(job_id.decode() for job_id in reply)
        for job_id in lost:
            if job_id in self._leased:
                self._lost(job_id)
        return lost

    async def reap_orphans(self, limit: int = 100) -> builtins.list[str]:
        """End jobs whose owner's lease expired (failed, "owner lost"); returns their ids.

        Atomic in Redis: however many replicas call this at once, each job is ended once.
        """
        error = OWNER_LOST
        args: builtins.list[Any] = [self._prefix, int(self.options.retention_s * 1000), limit]
        reply = await self._eval(
            "reap", [self._leases_key], [*args, msgspec.json.encode(error), error]
        )
        reaped = [job_id.decode() for job_id in reply]
        for job_id in reaped:
            self.reaped += 1
            logger.warning("narration: job %s lost its owner; ended as failed", job_id)
            if job_id in self._leased:
                self._lost(job_id)
        return reaped

    def _lost(self, job_id: str) -> None:
        """This replica's lease on `job_id` ended elsewhere: stop writing its events."""
        self._leased.discard(job_id)
        log = self._owned.get(job_id)
        if log is not None:
            with self._lock:
                log._sealed = True
            logger.warning("narration: job %s was ended by another replica", job_id)


# --------------------------------------------------------------------------- records


def _raw_reply(response: Any, **_: Any) -> Any:
    return response


def _without_query_key(url: str, key: str) -> str:
    """`url` without the query parameter `key`."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != key]
    return urlunsplit(parts._replace(query=urlencode(query)))


_OPTIONAL = ("started_at", "finished_at", "error", "parent_job_id", "trace_id", "owner")


def _record_fields(record: JobRecord) -> list[Any]:
    fields: list[Any] = [
        "job_id",
        record.job_id,
        "operation",
        msgspec.json.encode(record.operation),
        "correlation_id",
        record.correlation_id,
        "state",
        record.state,
        "created_at",
        repr(record.created_at),
    ]
    for name in _OPTIONAL:
        value = getattr(record, name)
        if value is not None:
            fields += [name, repr(value) if isinstance(value, float) else value]
    return fields


def _record_from(job_id: str, raw: dict[Any, Any]) -> JobRecord:
    def text(name: str) -> str | None:
        value = raw.get(name.encode())
        return None if value is None else value.decode()

    def number(name: str) -> float | None:
        value = raw.get(name.encode())
        return None if value is None else float(value)

    operation_raw = raw.get(b"operation")
    operation = msgspec.json.decode(operation_raw) if operation_raw else {}
    return JobRecord(
        job_id=text("job_id") or job_id,
        operation=operation,
        correlation_id=text("correlation_id") or "",
        state=text("state") or "queued",
        created_at=number("created_at") or 0.0,
        started_at=number("started_at"),
        finished_at=number("finished_at"),
        error=text("error"),
        parent_job_id=text("parent_job_id"),
        trace_id=text("trace_id"),
        owner=text("owner"),
    )
