"""The Lua scripts: every write that must be atomic in Redis, and the sha each one runs by.

Each script touches only the keys it is given, all in one Redis Cluster slot (a job's keys
share its hash tag; the lease keys share theirs; see `keys.py`), except `append_many`, which
writes several jobs at once and is used with one Redis only.
Each script's comment says its KEYS, its ARGV and what it returns. The terminal entry a script
writes (stream fields `e` = event name, `d` = JSON) is built in Python by `narration.wire` and
passed in ARGV: its format exists only there.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from hashlib import sha1

__all__ = ["EVENT_HEAD", "SCRIPTS", "Script"]

EVENT_HEAD = struct.Struct(">II")  # an event in an append blob: its id, its JSON's length

# Sets `now`: the Redis server's clock in ms (every replica's leases use this one clock).
_NOW = """
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

# KEYS: job, stream. ARGV: maxlen, then the events in id order packed in one string: for each,
# a big-endian u32 id, a u32 length and that many bytes of event JSON (one argument, so the
# client packs one blob, not two arguments per event), then the last id this writer had
# acknowledged. Ids already written are skipped (a retried batch), so nothing is ever written
# twice. Returns the last id written, -1 if the job is gone, -2 if it is already sealed, or
# {-3, last id stored} when Redis has fewer ids than it acknowledged (a failover or restart
# lost them): nothing is written then, the writer sends the lost ones again first.
_APPEND_JOB = """
local function append(job, stream, maxlen, blob, acked)
  local meta = redis.call('HMGET', job, 'state', 't', 'n')
  if not meta[1] then return -1 end
  if meta[2] then return -2 end
  local last = tonumber(meta[3] or '0')
  if last < tonumber(acked or '0') then return {-3, last} end
  local first = last
  local pos, size = 1, #blob
  while pos <= size do
    local id, length
    id, length, pos = struct.unpack('>I4I4', blob, pos)
    if id > last then
      local data = string.sub(blob, pos, pos + length - 1)
      redis.call('XADD', stream, string.format('%d-0', id), 'd', data)
      last = id
    end
    pos = pos + length
  end
  if last ~= first then
    redis.call('HSET', job, 'n', last)
    redis.call('XTRIM', stream, 'MAXLEN', '~', maxlen)
  end
  return last
end
"""
_APPEND = _APPEND_JOB + "return append(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])\n"

# KEYS: job, stream of each job in turn. ARGV: maxlen, events, acknowledged id of each job in
# turn (as `append`). One call for a batch's jobs (one Redis only: a cluster's jobs are in
# different slots). Returns what `append` returns, per job, or {-4, message} for a job whose
# write Redis refused (the other jobs are written all the same).
_APPEND_MANY = (
    _APPEND_JOB
    + """
local results = {}
for i = 1, #KEYS / 2 do
  local ok, result = pcall(append, KEYS[2 * i - 1], KEYS[2 * i], ARGV[3 * i - 2],
                           ARGV[3 * i - 1], ARGV[3 * i])
  if ok then
    results[i] = result
  else
    results[i] = {-4, type(result) == 'table' and result.err or tostring(result)}
  end
end
return results
"""
)

# KEYS: job, stream. ARGV: field, value, ... A new job's record (its stream starts empty).
_CREATE = """
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""

# KEYS: leases. ARGV: lease ms, job id. The first lease of a new job (Redis clock).
_LEASE = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
return now
"""
)

# KEYS: job. ARGV: field, value, ... Applied only while the job is queued (queued -> running).
_START = """
if redis.call('HGET', KEYS[1], 'state') ~= 'queued' then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""

# KEYS: job, stream. ARGV: job id, state, finished_at, error, has_error (1|0),
# terminal id, terminal event name, terminal JSON, retention ms.
# The final state and the terminal entry are written together; returns the terminal id,
# -1 if the job is gone, -2 if it was already final (e.g. reaped after its lease expired).
# (The lease is removed afterwards, in its own slot: a lease outliving its job is harmless.)
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

# KEYS: leases, reaping, alive. ARGV: max jobs, claim ms, gap ms, grace ms, reap (1|0).
# Every replica calls this every 0.08 lease TTL: `alive.seen` is when one last did. A longer
# silence than `gap ms` means Redis (or every replica) was away, and leases could not be
# renewed meanwhile: then nothing is reaped for `grace ms`, time for live owners to renew.
# Otherwise (and when `reap` is 1) claims up to `max jobs` expired leases, moving them to
# `reaping` (so their owners' renewals fail from now on), plus claims that lapsed there (a
# reaper that died before ending them). Returns the claimed ids, for `end`, then `unclaim`.
_CLAIM = (
    _NOW
    + """
local seen = tonumber(redis.call('HGET', KEYS[3], 'seen') or now)
local grace = tonumber(redis.call('HGET', KEYS[3], 'grace') or '0')
if now - seen > tonumber(ARGV[3]) then
  grace = now + tonumber(ARGV[4])
  redis.call('HSET', KEYS[3], 'grace', grace)
end
redis.call('HSET', KEYS[3], 'seen', now)
if ARGV[5] ~= '1' or now < grace then return {} end
local limit = tonumber(ARGV[1])
local until_ms = now + tonumber(ARGV[2])
local claimed = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(claimed) do redis.call('ZADD', KEYS[2], until_ms, id) end
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], until_ms, id)
  table.insert(claimed, id)
end
return claimed
"""
)

# KEYS: job, stream. ARGV: retention ms, state, error, terminal event name, terminal JSON.
# Ends a claimed job that is still unfinished: that state and error + the terminal entry,
# atomically. Returns the terminal id, or 0 when the job is gone or already final.
_END = (
    _NOW
    + """
local meta = redis.call('HMGET', KEYS[1], 'state', 't', 'n')
if not meta[1] or meta[2] or (meta[1] ~= 'queued' and meta[1] ~= 'running') then return 0 end
local ttl = math.max(tonumber(ARGV[1]), 1)
local finished = string.format('%d.%06d', tonumber(clock[1]), tonumber(clock[2]))
local tid = tonumber(meta[3] or '0') + 1
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'error', ARGV[3], 'finished_at', finished,
           'n', tid - 1, 't', tid)
redis.call('XADD', KEYS[2], string.format('%d-0', tid), 'e', ARGV[4], 'd', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return tid
"""
)


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script and its sha1, by which `EVALSHA` runs it."""

    source: str
    sha: str

    @classmethod
    def of(cls, source: str) -> Script:
        """The script of `source`, with its sha computed."""
        return cls(source, sha1(source.encode()).hexdigest())


SCRIPTS = {
    name: Script.of(source)
    for name, source in {
        "append": _APPEND,
        "append_many": _APPEND_MANY,
        "create": _CREATE,
        "lease": _LEASE,
        "start": _START,
        "finish": _FINISH,
        "renew": _RENEW,
        "claim": _CLAIM,
        "end": _END,
    }.items()
}
