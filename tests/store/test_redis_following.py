"""Caught-up readers of the Redis store, followed instead of woken per event: the owner's
writer hands them what Redis acknowledged (nothing read back), the shared tail hands the
other replicas' theirs (frames built once per batch), a refusal or the terminal wakes them,
and a job that ends elsewhere or a Redis that lost it makes them read again by themselves."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from narration.store.redis import LOST_BY_STORE, RedisEventLog, RedisStore
from narration.testing import NarrationTestHarness
from narration.testing.sse import SSEParser
from redis_stores import event, running_job, store_for
from stream_helpers import emit

pytestmark = [pytest.mark.e2e, pytest.mark.redis]


class Recorder:
    """A follower that keeps what it is handed and how it was let go."""

    def __init__(self, refuse_after: int | None = None) -> None:
        self.batches: list[list[bytes]] = []
        self.cursor = 0
        self.woken = 0
        self.rechecked = 0
        self.finished = False
        self.refuse_after = refuse_after  # refuse batches once it has this many events
        self.changed = asyncio.Event()

    def deliver(self, frames: list[bytes], cursor: int) -> bool:
        if self.refuse_after is not None and self.cursor >= self.refuse_after:
            return False
        self.batches.append(frames)
        self.cursor = cursor
        self.changed.set()
        return True

    def wake(self) -> None:
        self.woken += 1
        self.changed.set()

    def finish(self, frames: list[bytes], cursor: int) -> None:
        self.batches.append(frames)
        self.cursor, self.finished = cursor, True
        self.changed.set()

    def recheck(self) -> None:
        self.rechecked += 1
        self.changed.set()

    def ids(self) -> list[int]:
        parser = SSEParser()
        return [int(f.id or 0) for batch in self.batches for f in parser.feed(b"".join(batch))]

    async def until(self, done: object, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not done():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()


async def _xreads(raw: aioredis.Redis) -> int:
    stats = await raw.info("commandstats")
    return int(stats.get("cmdstat_xread", {}).get("calls", 0))


async def test_the_owner_hands_what_redis_acknowledged_to_its_followers(
    redis_url: str, raw: aioredis.Redis
) -> None:
    """Two followers of an owned log get every event once, in order, as the same frames, and
    nothing is read back from Redis; one behind what Redis has is told to read first."""
    store = store_for(redis_url)
    rec, log = await running_job(store)
    try:
        log.append(event(0, rec.job_id))
        await log.flush()
        a, b = Recorder(), Recorder()
        assert not log.follow(0, a)  # event 1 is in Redis: read it first
        a.cursor = b.cursor = 1
        assert log.follow(1, a) and log.follow(1, b)
        await raw.config_resetstat()
        for i in range(1, 21):
            log.append(event(i, rec.job_id))
            await log.flush()
        assert await _xreads(raw) == 0
        assert a.ids() == b.ids() == list(range(2, 22))
        behind = await log.read(10, 0)  # just written: read from what the writer kept
        assert await _xreads(raw) == 0
        assert (behind.cursor, behind.frames) == (21, [f for batch in a.batches[9:] for f in batch])
        assert a.batches[0][0] is b.batches[0][0]  # built once, for both
        assert (a.woken, b.woken, a.rechecked) == (0, 0, 0)
        rec.state, rec.finished_at = "completed", time.time()
        await store.finish(rec, log)
        assert a.finished and b.finished  # handed the terminal: no read of their own
        assert a.ids() == b.ids() == list(range(2, 23))
        assert a.batches[-1] == [
            b'id: 22\nevent: done\ndata: {"job_id":"%s","state":'
            b'"completed","error":null}\n\n' % rec.job_id.encode()
        ]
        assert (a.woken, b.woken, a.cursor) == (0, 0, 22)
        result = await log.read(21, 0)
        assert result.done and result.cursor == 22 and result.frames == a.batches[-1]
        late = Recorder()  # behind an ended log: the tail reads the rest, the terminal last
        assert log.follow(19, late)
        await late.until(lambda: late.finished)
        assert (late.ids(), late.woken) == ([20, 21, 22], 0)
    finally:
        await store.close()


async def test_a_follower_that_refuses_a_batch_is_woken_once_and_let_go(redis_url: str) -> None:
    store = store_for(redis_url)
    rec, log = await running_job(store)
    try:
        slow = Recorder(refuse_after=2)
        assert log.follow(0, slow)
        for i in range(5):
            log.append(event(i, rec.job_id))
            await log.flush()
        assert (slow.ids(), slow.woken) == ([1, 2], 1)
        result = await log.read(slow.cursor, 0)  # what it refused is all still there
        assert result.cursor == 5 and len(result.frames) == 3
    finally:
        await store.close()


async def test_another_replicas_followers_get_each_batch_from_one_shared_xread(
    redis_url: str, raw: aioredis.Redis
) -> None:
    """Three followers of a job on a replica that does not run it: every event once, in
    order, the same frames for all, at most one XREAD per batch for all three."""
    owner, other = store_for(redis_url), store_for(redis_url)
    rec, log = await running_job(owner)
    try:
        view = await other.log(rec.job_id)
        assert isinstance(view, RedisEventLog) and not view.owned
        followers = [Recorder() for _ in range(3)]
        for follower in followers:
            assert view.follow(0, follower)
        await raw.config_resetstat()
        for i in range(20):
            log.append(event(i, rec.job_id))
            await log.flush()
            for follower in followers:
                await follower.until(lambda f=follower, i=i: f.cursor == i + 1)
        assert [f.ids() for f in followers] == [list(range(1, 21))] * 3
        assert followers[0].batches[-1][0] is followers[2].batches[-1][0]
        assert await _xreads(raw) <= 20 + 2  # one per batch (and the tail's first)
        rec.state, rec.finished_at = "completed", time.time()
        await owner.finish(rec, log)
        for follower in followers:  # the terminal, from the same one XREAD for all
            await follower.until(lambda f=follower: f.finished)
            assert (follower.cursor, follower.woken, follower.ids()[-1]) == (21, 0, 21)
        result = await view.read(20, 0)
        assert result.done and result.cursor == 21
    finally:
        await owner.close()
        await other.close()


async def test_a_job_ended_elsewhere_hands_the_owners_followers_to_the_tail(
    redis_url: str,
) -> None:
    """The owner stalled and another replica ended its job: the owner's next write is refused,
    its follower is told to read again (and check), and following again, it is handed the
    other replica's terminal by the tail."""
    owner = store_for(redis_url, lease_ttl_s=0.4)
    rec, log = await running_job(owner)
    reaper = store_for(redis_url, reaper=False)
    try:
        follower = Recorder()
        assert log.follow(0, follower)
        owner._tasks[1].cancel()  # renewals stop, as if the owner's loop was stuck
        async with asyncio.timeout(5):
            while not await reaper.reap_orphans():  # noqa: ASYNC110 - polling Redis, bounded
                await asyncio.sleep(0.02)
        log.append(event(0, rec.job_id))  # refused: the job ended elsewhere
        await log.flush()
        assert (log.late, follower.rechecked, follower.batches) == (1, 1, [])
        again = Recorder()
        assert log.follow(0, again)  # by the tail now, which finds the terminal at once
        await again.until(lambda: again.finished)
        assert again.ids() == [1]
        result = await log.read(0, 0)
        assert result.done and result.cursor == 1
    finally:
        await owner.close()
        await reaper.close()


async def test_a_quiet_followed_stream_of_a_job_redis_forgot_ends_at_its_keepalive(
    redis_url: str, raw: aioredis.Redis
) -> None:
    """Nothing is appended when Redis forgets a job (flushed, expired), so a followed stream
    reads again at each keepalive deadline, which finds out: one `error` terminal."""
    async with NarrationTestHarness(store=redis_url, keepalive_s=0.2) as harness:
        job_id = await harness.submit_job("held")
        stream = harness.get_sse_stream(job_id)
        emit(harness, job_id, 2)
        for i in range(2):
            await stream.assert_next("step", f"step {i}")
        store = harness.state.store
        assert isinstance(store, RedisStore)
        assert await raw.delete(store._key("job:", job_id)) == 1
        assert await stream.collect_until_done(timeout=5) == []
        terminal = stream.terminal
        assert terminal is not None
        assert (terminal.id, terminal.state, terminal.error) == (3, "failed", LOST_BY_STORE)
        await stream.close()
