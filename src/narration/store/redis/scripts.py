"""The Lua scripts: every write that must be atomic in Redis, and the sha each one runs by.

Each script's comment says its KEYS, its ARGV and what it returns. The terminal entry a script
writes (stream fields `e` = event name, `d` = JSON) is built in Python by `narration.wire` and
passed in ARGV: its format exists only there.
"""

from __future__ import annotations

from dataclasses import dataclass
from hashlib import sha1

__all__ = ["SCRIPTS", "Script"]

# Sets `now`: the Redis server's clock in ms (every replica's leases use this one clock).
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
# terminal id, terminal event name, terminal JSON, retention ms.
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

# KEYS: leases. ARGV: max jobs. Returns the ids of (at most that many) expired leases, for
# `reap` to end: their terminal JSON is built in Python, so it takes two calls.
_EXPIRED = (
    _NOW
    + """
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
"""
)

# KEYS: leases. ARGV: key prefix, retention ms, state, error, terminal event name, then
# job id, terminal JSON, job id, terminal JSON, ... (the ids `expired` returned).
# Ends each job whose lease is still expired (a renewal or a finish in between keeps it):
# that state and error + the terminal entry, atomically, so exactly one replica reaps each
# job. Returns the reaped job ids.
_REAP = (
    _NOW
    + """
local reaped = {}
local ttl = math.max(tonumber(ARGV[2]), 1)
local finished = string.format('%d.%06d', tonumber(clock[1]), tonumber(clock[2]))
for i = 6, #ARGV, 2 do
  local id = ARGV[i]
  local deadline = redis.call('ZSCORE', KEYS[1], id)
  if deadline and tonumber(deadline) <= now then
    redis.call('ZREM', KEYS[1], id)
    local job = ARGV[1] .. 'job:' .. id
    local stream = ARGV[1] .. 'log:' .. id
    local meta = redis.call('HMGET', job, 'state', 't', 'n')
    if meta[1] and not meta[2] and (meta[1] == 'queued' or meta[1] == 'running') then
      local tid = tonumber(meta[3] or '0') + 1
      redis.call('HSET', job, 'state', ARGV[3], 'error', ARGV[4], 'finished_at', finished,
                 'n', tid - 1, 't', tid)
      redis.call('XADD', stream, string.format('%d-0', tid), 'e', ARGV[5], 'd', ARGV[i + 1])
      redis.call('PEXPIRE', job, ttl)
      redis.call('PEXPIRE', stream, ttl)
      table.insert(reaped, id)
    end
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
        "create": _CREATE,
        "start": _START,
        "finish": _FINISH,
        "renew": _RENEW,
        "expired": _EXPIRED,
        "reap": _REAP,
        "prune": _PRUNE,
        "request_cancel": _REQUEST_CANCEL,
    }.items()
}
