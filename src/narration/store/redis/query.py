"""Job listings on the Redis store: the job index (a sorted set by creation time) read newest
first from the query's cursor and time range, a chunk of records at a time."""

from __future__ import annotations

from ..query import JobPage, JobQuery, record_key
from .connection import Connections
from .keys import Keys
from .records import record_from

__all__ = ["SCAN_LIMIT", "query_jobs"]

SCAN_LIMIT = 5000
"""Most jobs one page looks at: a selective filter returns a short page and a cursor."""
_CHUNK = 200


async def query_jobs(
    redis: Connections, keys: Keys, query: JobQuery, scan_limit: int = SCAN_LIMIT
) -> JobPage:
    """The page of `query`: ZREVRANGEBYSCORE over the index, records fetched in pipelines."""
    top = query.until if query.until is not None else float("inf")
    high = f"({top!r}" if query.until is not None else "+inf"
    if query.before is not None and query.before[0] <= top:
        high = repr(query.before[0])  # inclusive: jobs of the same instant are split by id
    low = repr(query.since) if query.since is not None else "-inf"
    page = JobPage()
    seen: set[bytes] = set()  # jobs created meanwhile shift the offsets: never list one twice
    offset = scanned = 0
    while scanned < scan_limit:
        ids = await redis.command("ZREVRANGEBYSCORE", keys.jobs, high, low, "LIMIT", offset, _CHUNK)
        if not ids:
            return page
        offset += len(ids)
        pipe = redis.control.pipeline(transaction=False)
        for job_id in ids:
            pipe.hgetall(keys.job(job_id.decode()))
        for job_id, raw in zip(ids, await pipe.execute(), strict=True):
            scanned += 1
            if not raw or job_id in seen:
                continue  # expired; the listing index is pruned elsewhere
            seen.add(job_id)
            record = record_from(job_id.decode(), raw)
            if query.matches(record):
                page.records.append(record)
                if len(page.records) >= query.limit:
                    page.stop = record_key(record)
                    return page
            if scanned >= scan_limit:
                page.stop = record_key(record)
                return page
    return page
