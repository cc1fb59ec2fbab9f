"""What only the Redis store does: outages, leases and reaping, replicas sharing one Redis."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from narration import n, narration_context
from narration.dispatch import dispatcher
from narration.events import NarrationEvent
from narration.operations import Operation
from narration.server.app import server_state
from narration.store import ReadResult, open_store
from narration.store.redis import (
    LOST_BY_STORE,
    OWNER_LOST,
    RedisOptions,
    RedisStore,
)
from narration.store.redis.resend import ResendWindow
from narration.testing import NarrationTestHarness
from narration.testing.redis_server import RedisServer, blocked_xreads, client_list
from narration.wire import terminal_frame
from redis_server import TcpProxy
from redis_stores import event, running_job, store_for
from stream_helpers import emit, parse_frames, read_stream

pytestmark = [pytest.mark.e2e, pytest.mark.redis]


async def test_open_store_picks_redis_and_url_options_win_over_env() -> None:
    store = open_store("redis://127.0.0.1:1/3?prefix=app:&lease_ttl=2.5&max_pending=7&x=1")
    assert isinstance(store, RedisStore)
    assert (store.options.prefix, store.options.lease_ttl_s) == ("app:", 2.5)
    assert store.options.max_pending == 7
    assert store.url == "redis://127.0.0.1:1/3?x=1"
    env = {
        "NARRATION_LEASE_TTL_S": "4",
        "NARRATION_RETENTION_S": "9",
        "NARRATION_REDIS_PREFIX": "e:",
    }
    _, options = RedisOptions.from_url("redis://h/0?prefix=u:", environ=env)
    assert (options.prefix, options.lease_ttl_s, options.retention_s) == ("u:", 4.0, 9.0)
    with pytest.raises(ValueError, match="lease_ttl"):
        RedisOptions.from_url("redis://h/0?lease_ttl=abc", environ={})


async def test_a_servers_retention_reaches_the_redis_store_unless_the_url_says_otherwise() -> None:
    from narration.server import create_app

    env = {"NARRATION_RETENTION_S": "9"}
    assert RedisOptions.from_url("redis://h/0", env, retention_s=30)[1].retention_s == 30.0
    assert RedisOptions.from_url("redis://h/0?retention=5", env, 30)[1].retention_s == 5.0
    app = create_app(store="redis://127.0.0.1:1/0", retention_s=42)
    backend = server_state(app).store
    assert isinstance(backend, RedisStore)
    assert backend.options.retention_s == 42.0  # also what an "owner lost" job is kept for
    await backend.close()


async def test_outage_buffers_then_drops_with_an_exact_gap(redis_server: RedisServer) -> None:
    proxy = await TcpProxy.start(redis_server.port)
    harness = await NarrationTestHarness.start(store=proxy.url(max_pending=50))
    try:
        job_id = await harness.submit_job(Operation.hive_list())
        reader = asyncio.create_task(read_stream(harness.http, job_id))  # stays open throughout
        emit(harness, job_id, 10)
        log = harness.state.jobs.live[job_id].log
        await log.flush()

        await proxy.cut()
        started = time.perf_counter()
        emit(harness, job_id, 200, start=10)  # never blocks, never raises
        assert time.perf_counter() - started < 0.5
        health = await wait_health(harness, lambda redis: not redis["connected"])
        assert health["backlog"] == 50 and health["dropped"] == 150
        assert "error" not in health  # the error names the address: logged, not served
        assert harness.state.store.health()["redis"]["error"]
        public = (await harness.http.get("/health")).text
        assert str(proxy.port) not in public and "127.0.0.1" not in public
        refused = await harness.http.post("/v1/jobs", json={"operation": "hive_list"})
        assert refused.status_code == 503
        assert refused.json()["error"] == {
            "code": "store_unavailable",
            "message": "the job store is unavailable right now; retry shortly",
        }
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["x-correlation-id"]
        assert str(proxy.port) not in refused.text and "127.0.0.1" not in refused.text

        proxy.restore()
        await wait_health(harness, lambda redis: redis["connected"] and redis["backlog"] == 0)
        await harness.complete_job(job_id)
        status, frames = await reader
    finally:
        await harness.stop()
        await proxy.close()
    assert status == 200
    names = [frame["event"] for frame in frames]
    assert names == ["narration"] * 10 + ["gap"] + ["narration"] * 50 + ["done"]
    assert frames[10]["data"] == {"missed": 150, "next_id": 161}
    ids = [int(frame["id"]) for frame in frames if "id" in frame]
    assert ids == [*range(1, 11), *range(161, 212)]


async def test_backlog_counts_the_events_of_a_write_still_unanswered(
    redis_server: RedisServer,
) -> None:
    proxy = await TcpProxy.start(redis_server.port)
    harness = await NarrationTestHarness.start(store=proxy.url())
    try:
        job_id = await harness.submit_job(Operation.hive_list())
        emit(harness, job_id, 10)
        await harness.state.jobs.live[job_id].log.flush()

        proxy.stall()  # Redis stops answering: the writer's next write hangs on the wire
        emit(harness, job_id, 20, start=10)
        await proxy.wait_held(b"EVALSHA")
        health = (await harness.http.get("/health")).json()["redis"]
        assert (health["backlog"], health["dropped"]) == (20, 0)  # taken out, not yet written

        proxy.resume()
        await wait_health(harness, lambda redis: redis["connected"] and redis["backlog"] == 0)
        await harness.complete_job(job_id)
        status, frames = await read_stream(harness.http, job_id)
    finally:
        proxy.resume()  # also when an assertion failed: a stalled Redis would hang the stop
        await harness.stop()
        await proxy.close()
    assert status == 200
    assert [int(frame["id"]) for frame in frames] == list(range(1, 32))
    assert [frame["event"] for frame in frames] == ["narration"] * 30 + ["done"]


async def wait_health(harness: NarrationTestHarness, ok: object, timeout: float = 10) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            body = (await harness.http.get("/health")).json()
            if ok(body["redis"]):  # type: ignore[operator]
                return dict(body["redis"])
            await asyncio.sleep(0.02)


async def test_one_replica_ends_an_orphaned_job_exactly_once(
    redis_url: str, raw: aioredis.Redis
) -> None:
    owner = store_for(redis_url, lease_ttl_s=0.4)
    rec, log = await running_job(owner)
    for i in range(3):
        log.append(event(i, rec.job_id))
    await log.flush()
    await owner.close()  # the owner dies: its lease is no longer renewed

    replicas = [store_for(redis_url, reaper=False) for _ in range(3)]
    reaped: list[str] = []
    async with asyncio.timeout(5):
        while not reaped:
            rounds = await asyncio.gather(*(r.reap_orphans() for r in replicas for _ in range(4)))
            reaped = [job_id for found in rounds for job_id in found]
            await asyncio.sleep(0.02)
    assert reaped == [rec.job_id]

    entries = await raw.xrange(owner._key("log:", rec.job_id))
    assert [entry_id for entry_id, _ in entries] == [b"1-0", b"2-0", b"3-0", b"4-0"]
    assert entries[-1][1] == {
        b"e": b"error",
        b"d": b'{"job_id":"%s","state":"failed","error":"owner lost"}' % rec.job_id.encode(),
    }
    stored = await replicas[0].get(rec.job_id)
    assert stored is not None and (stored.state, stored.error) == ("failed", OWNER_LOST)
    view = await replicas[1].log(rec.job_id)
    assert view is not None and view.terminal_id() == 4
    result = await view.read(0, 1.0)
    assert result.done and result.cursor == 4 and len(result.frames) == 4
    assert await ttl_of(raw, owner._key("job:", rec.job_id)) > 0  # retention applies
    for replica in replicas:
        await replica.close()


async def ttl_of(raw: aioredis.Redis, key: str) -> int:
    return int(await raw.pttl(key))


async def test_a_renewed_lease_is_never_reaped(redis_url: str) -> None:
    owner = store_for(redis_url, lease_ttl_s=0.4)
    rec, _ = await running_job(owner)
    other = store_for(redis_url, reaper=False)
    loop = asyncio.get_running_loop()
    end = loop.time() + 1.2  # three lease spans
    while loop.time() < end:
        assert await other.reap_orphans() == []
        await asyncio.sleep(0.05)
    stored = await other.get(rec.job_id)
    assert stored is not None and stored.state == "running"
    for store in (owner, other):
        await store.close()


async def test_an_owner_that_stalled_takes_the_reaped_end(redis_url: str) -> None:
    owner = store_for(redis_url, lease_ttl_s=0.4)
    rec, log = await running_job(owner)
    log.append(event(0, rec.job_id))
    await log.flush()
    owner._tasks[1].cancel()  # renewals stop, as if the owner's loop was stuck
    reaper = store_for(redis_url, reaper=False)
    async with asyncio.timeout(5):
        while not await reaper.reap_orphans():  # noqa: ASYNC110 - polling Redis, bounded
            await asyncio.sleep(0.02)
    log.append(event(1, rec.job_id))  # too late: the job ended elsewhere
    await log.flush()
    assert log.late == 1
    rec.state, rec.finished_at = "completed", time.time()
    await owner.finish(rec, log)
    assert (rec.state, rec.error) == ("failed", OWNER_LOST)
    assert log.terminal_id() == 2
    result = await log.read(0, 1.0)
    assert [frame.split(b"\n")[1] for frame in result.frames] == [
        b"event: narration",
        b"event: error",
    ]
    for store in (owner, reaper):
        await store.close()


async def test_two_servers_share_jobs_through_one_redis(redis_url: str) -> None:
    async with (
        NarrationTestHarness(store=redis_url) as a,
        NarrationTestHarness(store=redis_url) as b,
    ):
        job_id = await a.submit_job(Operation.hive_list())
        stream = b.get_sse_stream(job_id)
        with narration_context(a.job_context(job_id)):
            n("hello", "hello from A")
        got = await stream.assert_next("hello", "hello from A")
        assert got.id == 1
        emit(a, job_id, 20)
        await a.complete_job(job_id)
        events = await stream.collect_until_done()
        assert [e.id for e in events] == list(range(2, 22))
        assert stream.terminal is not None and stream.terminal.state == "completed"
        status = (await b.http.get(f"/v1/jobs/{job_id}")).json()
        assert (status["state"], status["events"]) == ("completed", 21)
        listed = (await b.http.get("/v1/jobs")).json()
        assert [job["job_id"] for job in listed] == [job_id]
        code, frames = await read_stream(b.http, job_id, {"Last-Event-ID": "22"})
        assert (code, frames) == (204, [])
        health = (await b.http.get("/health")).json()
        assert health["store"] == "RedisStore" and health["redis"]["connected"] is True


async def test_events_after_the_terminal_are_counted_not_streamed(redis_url: str) -> None:
    store = store_for(redis_url)
    rec, log = await running_job(store)
    log.append(event(0, rec.job_id))
    rec.state, rec.finished_at = "completed", time.time()
    await store.finish(rec, log)
    log.append(event(1, rec.job_id))
    assert log.late == 1 and log.count() == 1 and log.terminal_id() == 2
    result = await log.read(0, 0.5)
    frames = parse_frames(b"".join(result.frames).decode())
    assert [frame["event"] for frame in frames] == ["narration", "done"] and result.done
    await store.close()


async def test_a_stream_of_a_job_redis_forgot_ends_instead_of_hanging(
    redis_url: str, raw: aioredis.Redis
) -> None:
    owner, other = store_for(redis_url), store_for(redis_url)
    rec, _ = await running_job(owner)
    view = await other.log(rec.job_id)
    assert view is not None
    assert await view.read(0, 0.1) == ReadResult([], 0, False)  # running, nothing yet
    await raw.delete(owner._key("job:", rec.job_id))  # e.g. Redis restarted without persistence
    lost = terminal_frame(1, rec.job_id, "failed", LOST_BY_STORE)
    assert await view.read(0, 0.1) == ReadResult([lost], 1, True)  # one `error` terminal
    assert await other.log(rec.job_id) is None
    for store in (owner, other):
        await store.close()


async def test_cancel_on_a_replica_that_does_not_run_the_job(redis_url: str) -> None:
    async with (
        NarrationTestHarness(store=redis_url) as a,
        NarrationTestHarness(store=redis_url) as b,
    ):
        job_id = await a.submit_job(Operation.hive_list())
        reader = asyncio.create_task(read_stream(b.http, job_id))
        emit(a, job_id, 3)
        response = await b.http.delete(f"/v1/jobs/{job_id}")  # B asks A, A cancels it
        assert response.status_code == 200
        assert response.json() == {"job_id": job_id, "state": "cancelled"}
        status, frames = await reader
        assert status == 200
        assert [frame["event"] for frame in frames] == ["narration"] * 3 + ["cancelled"]
        assert job_id not in a.state.jobs.live
        assert (await b.http.delete(f"/v1/jobs/{job_id}")).status_code == 409
        unknown = "job-00000000-0000-4000-8000-00000000dead"
        assert (await b.http.delete(f"/v1/jobs/{unknown}")).status_code == 404


async def test_an_append_that_re_enters_the_store_is_set_aside_not_awaited(
    redis_url: str,
) -> None:
    """`n()` re-entering the store's append on its own thread (as a signal handler may) waits
    for nothing: its event is set aside and appended by a loop callback right after."""
    store = store_for(redis_url)
    rec, log = await running_job(store)

    class NarratingQueue(deque[Any]):
        def append(self, item: Any) -> None:  # runs inside RedisEventLog.append's section
            super().append(item)
            if isinstance(item[2], NarrationEvent) and item[2].action == "outer":
                n("inner", "Narrated from inside append")

    store._pending = NarratingQueue(store._pending)
    dispatcher.add_route(rec.job_id, log.append)
    try:
        with narration_context(job_id=rec.job_id):
            n("outer", "Narrated first")
            assert log.count() == 1
            await asyncio.sleep(0)  # the loop's callback appends the one set aside
            assert log.count() == 2
            n("last", "Narrated last")
    finally:
        dispatcher.remove_route(rec.job_id)
    rec.state, rec.finished_at = "completed", time.time()
    await store.finish(rec, log)
    result = await log.read(0, 0.5)
    frames = parse_frames(b"".join(result.frames).decode())
    assert [(frame["event"], frame["id"]) for frame in frames] == [
        ("narration", "1"),
        ("narration", "2"),
        ("narration", "3"),
        ("done", "4"),
    ]
    assert [frame["data"].get("action") for frame in frames[:3]] == ["outer", "inner", "last"]
    assert (log.late, log.dropped, log.lost) == (0, 0, 0)
    await store.close()


async def _until(check: Any, what: str, timeout: float = 10.0) -> None:
    """Poll `check()` (Redis's client list has no event to wait on), bounded by `timeout`."""
    for _ in range(int(timeout / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    assert await check(), what


async def test_caught_up_readers_share_one_blocked_redis_connection(
    redis_url: str, raw: aioredis.Redis
) -> None:
    """64 streams of 4 quiet jobs, half on the replica running them, half on another: the
    owner's writer follows its own (no XREAD for them), one XREAD blocks for all of the
    other's, and every event still arrives."""
    # Read pools of 12 (the default is 48), to show the bound with few streams.
    url = f"{redis_url}&max_connections=12"
    owner = await NarrationTestHarness.start(store=url)
    other = await NarrationTestHarness.start(store=url)
    try:
        jobs = [await owner.submit_job(Operation.hive_list()) for _ in range(4)]
        streams = [
            harness.get_sse_stream(job_id)
            for job_id in jobs
            for harness in (owner, other)
            for _ in range(8)
        ]
        for stream in streams:
            stream.open()

        async def all_open() -> bool:
            opened = 0
            for harness in (owner, other):
                opened += (await harness.http.get("/health")).json()["streams_open"]
            return opened == 64

        async def parked() -> bool:
            return blocked_xreads(await client_list(raw)) == 1  # the other's shared tail

        await _until(all_open, "64 streams open")
        await _until(parked, "only the other replica's shared tail blocked in XREAD")
        # Per replica the read pool's 12, the control pool's 16 and the tail's, and this
        # test's own: before the tail and the bounded pools, one per waiting reader.
        assert len(await client_list(raw)) <= 2 * (12 + 16 + 1) + 1
        store = other.state.store
        assert isinstance(store, RedisStore)
        poke_key = store._key("tail:", store.replica)
        assert 0 < await raw.pttl(poke_key) <= 600_000  # a dead replica's poke stream expires
        for job_id in jobs:
            emit(owner, job_id, 3)
            await owner.complete_job(job_id)
        for index, stream in enumerate(streams):
            events = await stream.collect_until_done(timeout=10)
            assert [event.id for event in events] == [1, 2, 3], index
            assert stream.terminal is not None and stream.terminal.state == "completed"
        for stream in streams:
            await stream.close()
    finally:
        await owner.stop()
        await other.stop()
    assert await raw.exists(poke_key) == 0  # removed on close


async def test_caught_up_readers_go_back_to_the_tail_without_a_read_of_their_own(
    redis_url: str, raw: aioredis.Redis
) -> None:
    """Four readers of four jobs (read pool of 2: one may short-block on its own), events one
    round at a time, each read before the next: per round at most one XREAD per reader and
    no pokes (a reader the tail woke used to read on its own, then poke the tail: two more
    round trips per event)."""
    store = RedisStore(f"{redis_url}&max_connections=2")
    jobs = [await running_job(store, f"job-00000000-0000-4000-8000-00000000000{k}") for k in "1234"]
    cursors = [0] * len(jobs)
    progress = asyncio.Event()

    async def reader(k: int) -> None:
        log = jobs[k][1]
        while cursors[k] < 21:
            cursors[k] = (await log.read(cursors[k], 10.0)).cursor
            progress.set()

    async def round_read(i: int) -> None:
        for rec, log in jobs:
            log.append(event(i, rec.job_id))
        async with asyncio.timeout(10):
            while min(cursors) < i:
                progress.clear()
                await progress.wait()

    tasks = [asyncio.create_task(reader(k)) for k in range(len(jobs))]
    try:
        await round_read(1)  # first reads are the readers' own, then the tail's
        await raw.config_resetstat()
        for i in range(2, 22):
            await round_read(i)
        stats = await raw.info("commandstats")
    finally:
        for task in tasks:
            task.cancel()
        await store.close()
    assert cursors == [21] * 4
    events = 20 * 4
    xreads = stats["cmdstat_xread"]["calls"]
    xadds = stats["cmdstat_xadd"]["calls"]  # the events' own (from the append script), pokes
    assert xreads <= events + 3, xreads
    assert xadds <= events + 3, xadds


async def test_one_write_for_several_jobs_keeps_each_jobs_outcome_its_own(
    redis_url: str, raw: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """Three jobs written in one batch (one script call): the healthy two get every event; the
    one whose stream Redis refuses (the key holds a string) loses its own, counted and
    logged; a sealed job's are late."""
    store = store_for(redis_url)
    ok_a, ok_b, broken, sealed = [
        await running_job(store, f"job-00000000-0000-4000-8000-00000000010{k}") for k in "1234"
    ]
    await raw.delete(broken[1].log_key)
    await raw.set(broken[1].log_key, "not a stream")  # XADD answers WRONGTYPE for this job
    sealed[0].state, sealed[0].finished_at = "completed", time.time()
    await store.finish(*sealed)
    await raw.config_resetstat()
    for i in range(1, 4):
        for rec, log in (ok_a, ok_b, broken, sealed):
            log.append(event(i, rec.job_id))
    for _, log in (ok_a, ok_b, broken, sealed):
        await log.flush()
    stats = await raw.info("commandstats")
    for rec, log in (ok_a, ok_b):
        frames = parse_frames(b"".join((await log.read(0, 0.5)).frames).decode())
        assert [int(frame["id"]) for frame in frames] == [1, 2, 3], rec.job_id
    assert (ok_a[1].lost, ok_b[1].lost, broken[1].lost, sealed[1].late) == (0, 0, 3, 3)
    assert "Redis refused events of job-00000000-0000-4000-8000-000000000103" in caplog.text
    assert "WRONGTYPE" in caplog.text
    assert stats["cmdstat_evalsha"]["calls"] == 1  # one for the batch, not one per job
    await store.close()


async def test_an_event_needing_its_repr_keeps_its_place_in_its_batch(
    redis_url: str, raw: aioredis.Redis
) -> None:
    """A field only its repr can show is encoded off the loop; the batch it came in (two jobs)
    is still written in one script call, each job's events in id order."""

    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    store = store_for(redis_url)
    (rec_a, log_a), (rec_b, log_b) = [
        await running_job(store, f"job-00000000-0000-4000-8000-00000000020{k}") for k in "12"
    ]
    await raw.config_resetstat()
    for i in range(3):
        first = event(i, rec_a.job_id)
        if i == 1:
            first = msgspec.structs.replace(first, fields={"i": i, "thing": Opaque()})
        log_a.append(first)
        log_b.append(event(i, rec_b.job_id))
    await log_a.flush()
    await log_b.flush()
    stats = await raw.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 1
    for log in (log_a, log_b):
        entries = await raw.xrange(log.log_key)  # what Redis holds, not the writer's window
        assert [entry_id for entry_id, _ in entries] == [b"1-0", b"2-0", b"3-0"]
        bodies = [msgspec.json.decode(fields[b"d"]) for _, fields in entries]
        assert [body["fields"]["i"] for body in bodies] == [0, 1, 2]
    assert msgspec.json.decode((await raw.xrange(log_a.log_key))[1][1][b"d"])["fields"] == {
        "i": 1,
        "thing": "<opaque>",
    }
    await store.close()


async def test_a_claimed_lease_is_lost_to_its_owner_and_a_dead_reapers_claim_lapses(
    redis_url: str,
) -> None:
    """Reaping claims expired leases atomically in the leases' slot, then ends each job in the
    job's own slot (two slots in a cluster). An owner renewing after the claim learns it lost
    the job; a reaper that died between the two leaves a claim that lapses after one lease
    TTL and is claimed again, and the job is ended once, with the wire's terminal."""
    owner = store_for(redis_url, lease_ttl_s=0.4)
    rec, log = await running_job(owner)
    owner._tasks[1].cancel()  # no renewals (and no reaping) but those this test asks for
    reaper = store_for(redis_url, reaper=False, lease_ttl_s=0.4)
    real_eval = reaper._redis.eval

    async def die_before_ending(name: str, keys: Any, args: Any) -> Any:
        if name == "end":
            raise RedisConnectionError("the reaper lost Redis after claiming")
        return await real_eval(name, keys, args)

    reaper._redis.eval = die_before_ending  # type: ignore[method-assign]
    async with asyncio.timeout(5):
        while True:
            try:
                assert await reaper.reap_orphans() == []
            except RedisConnectionError:
                break
            await asyncio.sleep(0.02)
    assert await owner.renew_leases() == [rec.job_id]  # claimed: the owner stops writing
    assert log.sealed
    stored = await reaper.get(rec.job_id)
    assert stored is not None and stored.state == "running"  # not ended yet

    reaper._redis.eval = real_eval  # type: ignore[method-assign]
    async with asyncio.timeout(5):
        while not (reaped := await reaper.reap_orphans()):  # noqa: ASYNC110 - polling Redis
            await asyncio.sleep(0.02)
    assert reaped == [rec.job_id]
    assert await reaper.reap_orphans() == []
    view = await reaper.log(rec.job_id)
    assert view is not None
    result = await view.read(0, 1.0)
    assert result.frames == [terminal_frame(1, rec.job_id, "failed", OWNER_LOST)]
    assert (result.done, result.cursor, view.terminal_id()) == (True, 1, 1)
    for store in (owner, reaper):
        await store.close()


async def test_events_redis_lost_after_acknowledging_them_are_written_again(
    redis_url: str, raw: aioredis.Redis
) -> None:
    """A failover (or a restart with `appendfsync everysec`) can lose writes Redis had
    acknowledged. The next append finds the job's stored last id below the writer's and the
    writer sends the lost events again first, from what it kept: readers get every id once,
    in order. What it no longer keeps is counted lost and read as one exact gap."""
    store = store_for(redis_url)
    store._writer._window = ResendWindow(size=2)  # keeps the last two writes (of one event)
    rec, log = await running_job(store)
    for i in range(10):
        log.append(event(i, rec.job_id))
        await log.flush()  # one write each
    job_key, log_key = store._key("job:", rec.job_id), store._key("log:", rec.job_id)
    kept = await raw.xrange(log_key, max="6-0")  # as a promoted replica without ids 7..10
    await raw.delete(log_key)
    for entry_id, fields in kept:
        await raw.xadd(log_key, fields, id=entry_id)
    await raw.hset(job_key, "n", 6)
    for i in range(10, 13):
        log.append(event(i, rec.job_id))
    await log.flush()
    assert (store._writer.resent, store._writer.lost, log.lost) == (2, 2, 2)
    rec.state, rec.finished_at = "completed", time.time()
    await store.finish(rec, log)
    result = await log.read(0, 1.0)
    frames = parse_frames(b"".join(result.frames).decode())
    assert [frame["event"] for frame in frames] == ["narration"] * 6 + ["gap"] + [
        "narration"
    ] * 5 + ["done"]
    assert frames[6]["data"] == {"missed": 2, "next_id": 9}
    assert [int(frame["id"]) for frame in frames if "id" in frame] == [*range(1, 7), *range(9, 15)]
    assert [frame["data"]["fields"]["i"] for frame in frames if frame["event"] == "narration"] == [
        *range(6),
        *range(8, 13),
    ]
    await store.close()


async def test_an_end_redis_lost_in_a_failover_is_committed_again_with_its_events(
    redis_url: str, raw: aioredis.Redis
) -> None:
    """A failover can also lose a job's end (state + terminal) and the events just before
    it. Once the owner sees Redis back after an outage, it writes the lost events again and
    commits the end again, with its terminal id: readers get every id once, then `done`."""
    store = store_for(redis_url, lease_ttl_s=0.5)
    rec, log = await running_job(store)
    for i in range(5):
        log.append(event(i, rec.job_id))
    await log.flush()
    rec.state, rec.finished_at = "completed", time.time()
    await store.finish(rec, log)
    assert log.terminal_id() == 6
    job_key, log_key = store._key("job:", rec.job_id), store._key("log:", rec.job_id)
    kept = await raw.xrange(log_key, max="3-0")  # as a promoted replica without 4, 5, the end
    await raw.delete(log_key)
    for entry_id, fields in kept:
        await raw.xadd(log_key, fields, id=entry_id)
    await raw.hset(job_key, mapping={"n": 3, "state": "running"})
    await raw.hdel(job_key, "t", "finished_at")
    store._health.failed(RedisConnectionError("the primary died"))  # the outage the owner saw
    store._health.ok()

    async with asyncio.timeout(5):
        while await raw.hget(job_key, "state") != b"completed":  # noqa: ASYNC110 - polling Redis
            await asyncio.sleep(0.02)
    other = store_for(redis_url)
    view = await other.log(rec.job_id)
    assert view is not None
    result = await view.read(0, 1.0)
    frames = parse_frames(b"".join(result.frames).decode())
    assert [(frame["event"], int(frame["id"])) for frame in frames] == [
        *(("narration", i) for i in range(1, 6)),
        ("done", 6),
    ]
    assert (store._writer.resent, store._writer.lost) == (2, 0)
    for replica in (store, other):
        await replica.close()
