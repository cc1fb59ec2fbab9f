"""`RedisStore`: the `Store` API over Redis, assembled from the parts of this package."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from ..._backoff import Backoff
from ...wire import TERMINAL_EVENTS, terminal_data, terminal_frame
from ..base import EventLog, JobRecord, LogLimits, Store
from ..query import JobPage, JobQuery
from .cancels import CancelInbox
from .connection import UNREACHABLE, Connections, Reachability, unavailable_when_unreachable
from .keys import Keys
from .leases import Leases
from .log import RedisEventLog
from .options import RedisOptions
from .query import query_jobs
from .reader import StreamReader
from .records import record_fields, record_from
from .writer import EventWriter

__all__ = ["RedisStore"]

logger = logging.getLogger("narration.store.redis")

_READER_GRACE_S = 5.0  # a finished job's stream outlives its record by at least this


class RedisStore(Store):
    """Jobs and their logs in Redis, shared by every replica pointed at the same database.

    The parts: `Connections` + `Reachability` (connection.py), `EventWriter` (writer.py),
    `StreamReader` (reader.py), `Leases` (leases.py), `CancelInbox` (cancels.py); this class
    holds the job records (records.py) and hands each job's `RedisEventLog` (log.py) the
    writer and the reader.
    """

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
        self._keys = Keys(self.options.prefix)
        self._health = Reachability()
        self._redis = Connections(clean_url, self._keys.notify)
        self._writer = EventWriter(
            self._redis,
            self._health,
            self.limits,
            self.options.max_pending,
            self.flush_timeout_s,
        )
        # Readers that caught up wait on one shared connection (the tail), not on one each.
        self._reader = StreamReader(self._redis, self._health, self._keys, self.replica)
        self._leases = Leases(self._redis, self._health, self._keys, self.options, self._lost)
        self._cancels = CancelInbox(self._redis, self._health, self._keys, self.replica)
        self._owned: dict[str, RedisEventLog] = {}  # this replica's logs, until expire()
        # Ends committed lately, committed again if Redis lost them (`_confirm_ends`).
        self._ends: dict[str, tuple[RedisEventLog, list[str], list[Any], int, float]] = {}
        self._leases.after_round = self._confirm_ends
        self._tasks: list[asyncio.Task[None]] = []  # writer, leases, cancel inbox
        self._started = False

    # ---------------------------------------------------------------- counters (metrics)

    @property
    def errors(self) -> int:
        """Failed Redis calls (metrics: narration_store_errors_total)."""
        return self._health.errors

    @property
    def dropped(self) -> int:
        """Events dropped because the buffer was full while Redis was unreachable."""
        return self._writer.dropped

    @property
    def reaped(self) -> int:
        """Jobs of dead owners this replica ended."""
        return self._leases.reaped

    @property
    def lease_renewals(self) -> int:
        """Completed lease renewal rounds."""
        return self._leases.renewals

    @property
    def _pending(self) -> deque[Any]:
        """The writer's queue (tests look at it, and swap it)."""
        return self._writer.pending

    @_pending.setter
    def _pending(self, queue: deque[Any]) -> None:
        self._writer.pending = queue

    # ---------------------------------------------------------------- plumbing

    def _key(self, kind: str, job_id: str) -> str:
        return self._keys.of(kind, job_id)

    def _start(self) -> None:
        """Start the background tasks, once, in the first caller's loop."""
        if self._started:
            return
        self._started = True
        self._tasks += [self._writer.start(), self._leases.start(), self._cancels.start()]
        self._reader.start()

    def _log(
        self, job_id: str, *, owned: bool, last_id: int = 0, terminal_id: int | None = None
    ) -> RedisEventLog:
        """A log of `job_id` wired to this store's writer and reader."""
        return RedisEventLog(
            job_id,
            self._writer,
            self._reader,
            self._keys,
            owned=owned,
            last_id=last_id,
            terminal_id=terminal_id,
        )

    def _lost(self, job_id: str) -> None:
        """This replica's lease on `job_id` is gone: stop writing its events."""
        log = self._owned.get(job_id)
        if log is not None:
            self._writer.seal(log)
            log.hand_off()  # the replica that ended it writes its terminal
            logger.warning(
                "narration: the lease of job %s is gone (its lease expired and a replica "
                "ended it, or Redis lost it); no more of its events are written",
                job_id,
            )

    # ---------------------------------------------------------------- Store

    @unavailable_when_unreachable
    async def create(self, record: JobRecord) -> EventLog:
        self._start()
        record.owner = self.replica
        fields = record_fields(record)
        fields += ["n", 0]
        keys = self._keys
        job_id = record.job_id
        await self._redis.eval("create", [keys.job(job_id), keys.log(job_id)], fields)
        # The index and the lease are in slots of their own (Redis Cluster): separate calls.
        await self._redis.command("ZADD", keys.jobs, repr(record.created_at), job_id)
        await self._redis.eval("lease", [keys.leases], [self._leases.lease_ms, job_id])
        log = self._log(job_id, owned=True)
        self._owned[job_id] = log
        self._leases.held.add(job_id)
        return log

    @unavailable_when_unreachable
    async def get(self, job_id: str) -> JobRecord | None:
        self._start()
        raw = await self._redis.control.hgetall(self._keys.job(job_id))
        return record_from(job_id, raw) if raw else None

    @unavailable_when_unreachable
    async def log(self, job_id: str) -> EventLog | None:
        self._start()
        owned = self._owned.get(job_id)
        if owned is not None:
            return owned
        state, last, terminal = await self._redis.command(
            "HMGET", self._keys.job(job_id), "state", "n", "t"
        )
        if state is None:
            return None
        return self._log(
            job_id,
            owned=False,
            last_id=int(last or 0),
            terminal_id=int(terminal) if terminal is not None else None,
        )

    @unavailable_when_unreachable
    async def list(
        self,
        state: str | None,
        limit: int,
        correlation_id: str | None = None,
        tenant: str | None = None,
    ) -> list[JobRecord]:
        self._start()
        result: list[JobRecord] = []
        filtered = state is not None or correlation_id is not None or tenant is not None
        chunk = max(limit, 200) if filtered else limit
        start = 0
        stale: list[bytes] = []
        jobs_key = self._keys.jobs
        while len(result) < limit:
            ids = await self._redis.command("ZREVRANGE", jobs_key, start, start + chunk - 1)
            if not ids:
                break
            start += len(ids)
            pipe = self._redis.control.pipeline(transaction=False)
            for job_id in ids:
                pipe.hgetall(self._keys.job(job_id.decode()))
            for job_id, raw in zip(ids, await pipe.execute(), strict=True):
                if not raw:
                    stale.append(job_id)
                    continue
                record = record_from(job_id.decode(), raw)
                if record.matches(state, correlation_id, tenant):
                    result.append(record)
                    if len(result) >= limit:
                        break
        if stale:
            await self._redis.control.zrem(jobs_key, *stale)
        return result

    @unavailable_when_unreachable
    async def query(self, query: JobQuery) -> JobPage:
        self._start()
        return await query_jobs(self._redis, self._keys, query)

    async def save_attempts(self, record: JobRecord) -> None:
        attempts = msgspec.json.encode(record.attempts)
        with contextlib.suppress(*UNREACHABLE):  # shown late at worst; the state is not at stake
            await self._redis.control.hset(self._keys.job(record.job_id), "attempts", attempts)

    @unavailable_when_unreachable
    async def start(self, record: JobRecord) -> None:
        self._start()
        fields: list[Any] = ["state", record.state]
        if record.started_at is not None:
            fields += ["started_at", repr(record.started_at)]
        await self._redis.eval("start", [self._keys.job(record.job_id)], fields)

    async def finish(self, record: JobRecord, log: EventLog) -> None:
        """Seal `log`, wait for its queued events, then commit state + terminal in one call.

        While Redis is unreachable this retries for `commit_timeout_s`, then gives up on the
        job's lease so another replica ends it ("owner lost") once Redis answers again.
        """
        self._start()
        assert isinstance(log, RedisEventLog)
        self._writer.seal(log)
        await self._writer.flush(log, self.flush_timeout_s)
        keys = [log.job_key, log.log_key]
        args = [
            record.job_id,
            record.state,
            repr(record.finished_at or time.time()),
            record.error or "",
            "1" if record.error is not None else "0",
            log.last_id + 1,  # the terminal's id (Redis takes a later one if it has one)
            TERMINAL_EVENTS[record.state],
            terminal_data(record.job_id, record.state, record.error),
            int(self.options.retention_s * 1000),
        ]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.commit_timeout_s
        backoff = Backoff(initial=0.05, cap=1.0)
        held = self._leases.held
        while True:
            try:
                result = int(await self._redis.eval("finish", keys, args))
                break
            except UNREACHABLE as exc:
                self._health.failed(exc)
                if loop.time() >= deadline:
                    held.discard(record.job_id)
                    log.hand_off()  # another replica writes its terminal
                    logger.error(
                        "narration: could not end %s in Redis (%s); another replica will "
                        "end it once its lease expires",
                        record.job_id,
                        exc,
                    )
                    return
                await asyncio.sleep(backoff.next_delay())
        self._health.ok()
        held.discard(record.job_id)
        with contextlib.suppress(*UNREACHABLE):  # else it expires; the reaper finds it final
            await self._redis.command("ZREM", self._keys.leases, record.job_id)
        if result > 0:
            log.ended(result, terminal_frame(result, record.job_id, record.state, record.error))
            await self._redis.notify(log.log_key, result)
            until = time.monotonic() + 2 * self.options.lease_ttl_s
            self._ends[record.job_id] = (log, keys, args, self._health.recoveries, until)
        elif result == -2:  # already ended elsewhere (its lease had expired): take that end
            stored = await self.get(record.job_id)
            if stored is not None:
                record.state, record.error = stored.state, stored.error
                record.finished_at = stored.finished_at
            _, _, terminal = await self._redis.command("HMGET", log.job_key, "state", "n", "t")
            if terminal is not None:
                log.ended(int(terminal))

    async def _confirm_ends(self) -> None:
        """After an outage (a failover of the primary that had them, a restart that lost
        the last writes), commit again the ends committed just before it, with the events
        Redis lost: the end script skips one that is still there. An end older than two lease
        TTLs without an outage is safe and forgotten."""
        if not self._ends or self._health.down_since is not None:
            return
        now = time.monotonic()
        for job_id, (log, keys, args, recoveries, until) in list(self._ends.items()):
            if recoveries != self._health.recoveries:
                await self._writer.repair(log)
                if int(await self._redis.eval("finish", keys, args)) > 0:
                    logger.warning("narration: Redis lost the end of job %s; written again", job_id)
                    await self._redis.notify(log.log_key, int(args[5]))
            elif now < until:
                continue
            del self._ends[job_id]

    async def expire(self, job_id: str, after_s: float) -> None:
        self._owned.pop(job_id, None)
        ms = max(1, int(after_s * 1000))
        pipe = self._redis.control.pipeline(transaction=False)  # keys of several slots
        pipe.pexpire(self._keys.job(job_id), ms)  # then GET answers 404
        # Readers still streaming get a little longer to read the terminal.
        pipe.pexpire(self._keys.log(job_id), max(ms, int(_READER_GRACE_S * 1000)))
        if after_s <= 0:
            pipe.zrem(self._keys.jobs, job_id)
        try:
            await pipe.execute()
        except UNREACHABLE as exc:  # the finish commit already set the default retention
            self._health.failed(exc)

    async def open(self) -> None:
        """Start the writer and the lease/reaper task, and check that Redis answers."""
        self._start()
        try:
            await self._redis.control.ping()
            await self._redis.load_scripts()
        except UNREACHABLE as exc:  # start anyway: buffered, reported in /health, retried
            self._health.failed(exc)

    async def request_cancel(self, job_id: str) -> bool:
        """Ask the replica running `job_id` to cancel it (through its inbox list in Redis)."""
        self._start()
        return await self._cancels.request(job_id)

    def on_cancel_request(self, cancel: Callable[[str], Awaitable[Any]]) -> None:
        self._cancels.on_cancel = cancel

    async def renew_leases(self) -> builtins.list[str]:
        """Extend this replica's leases; returns (and seals locally) the jobs it lost."""
        return await self._leases.renew()

    async def reap_orphans(self, limit: int = 100) -> builtins.list[str]:
        """End jobs whose owner's lease expired (failed, "owner lost"); returns their ids.

        Atomic in Redis: however many replicas call this at once, each job is ended once.
        """
        return await self._leases.reap(limit)

    async def close(self) -> None:
        """Write what is queued (for up to 5 s), stop the background tasks, disconnect."""
        await self._writer.drain(5.0)
        self._cancels.closed = True
        self._writer.close()
        pending = {*self._tasks, *self._cancels.cancelling}
        for _ in range(100):
            if not pending:
                break
            # Cancel again until done: on Python 3.11, asyncio.wait_for (used by redis-py to
            # send) can swallow a cancellation that lands as the send completes.
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.1)
        self._tasks.clear()
        await self._reader.close()
        await self._redis.aclose()

    def health(self) -> dict[str, Any]:
        down_since = self._health.down_since
        return {
            "store": type(self).__name__,
            "redis": {
                "connected": down_since is None,
                "down_for_s": None if down_since is None else round(time.time() - down_since, 3),
                "error": self._health.last_error if down_since is not None else None,
                "backlog": self._writer.backlog,  # not written yet
                "dropped": self.dropped,
                "lost": self._writer.lost,  # refused, or of jobs Redis no longer had
                "resent": self._writer.resent,  # acknowledged, lost by Redis, written again
                "jobs_owned": len(self._leases.held),
                "jobs_reaped": self.reaped,
                "replica": self.replica,
                "lease_ttl_s": self.options.lease_ttl_s,
            },
        }

    def trouble(self) -> str | None:
        """Why `/health` says `degraded`: Redis unreachable, or recovering from an outage
        (buffered events still being written, or reaping paused), with the counts."""
        counts = (
            f"{self._writer.backlog} events buffered, {self.dropped} dropped, "
            f"{self._writer.lost} lost"
        )
        down = self._health.trouble()
        if down is not None:
            return f"{down}; {counts}"
        up_since = self._health.up_since
        if up_since is None or not self._started:
            return None
        recent = time.time() - up_since < self.options.lease_ttl_s
        if self._leases.in_grace or (recent and self._writer.backlog):
            return f"Redis recovering from an outage; {counts}"
        return None
