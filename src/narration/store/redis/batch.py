"""One write batch's Redis call: one script call on a single Redis, one per job on a cluster.

The writer (`writer.py`) groups a batch's events per job; `write_batch` sends them and gives
each job's result as the `append` script answers (`scripts.py`): the last id written, -1 (the
job is gone), -2 (already ended), {-3, stored id} (Redis lost acknowledged events), or an
exception for a write Redis refused. Redis being unreachable raises.
"""

from __future__ import annotations

from typing import Any, Protocol

from redis.exceptions import ResponseError

from .connection import Connections
from .scripts import EVENT_HEAD, SCRIPTS

__all__ = ["write_batch"]


class _JobKeys(Protocol):
    job_key: str
    log_key: str


async def write_batch(
    redis: Connections,
    logs: list[Any],
    groups: dict[Any, list[bytes]],
    per_job: dict[Any, tuple[int, bytes, int]],
) -> list[Any]:
    """Write each of `logs` (`_JobKeys`): `groups[log]` its events as [head, JSON, ...],
    `per_job[log]` what `append` takes after the keys. A result per log, in order."""
    if redis.cluster:
        return await _pipelined(redis, logs, groups, per_job)
    return await _one_call(redis, logs, per_job)


async def _one_call(
    redis: Connections, logs: list[_JobKeys], per_job: dict[Any, tuple[int, bytes, int]]
) -> list[Any]:
    """One Redis: the batch in one script call, whatever its jobs (a command's client-side work
    per batch, not per job), as one command on the writer's own connection."""
    try:
        if len(logs) == 1:
            log = logs[0]
            sha = SCRIPTS["append"].sha
            keys = [log.job_key, log.log_key]
            return [await redis.write_command("EVALSHA", sha, 2, *keys, *per_job[log])]
        keys = [key for log in logs for key in (log.job_key, log.log_key)]
        argv = [arg for log in logs for arg in per_job[log]]
        sha = SCRIPTS["append_many"].sha
        reply = await redis.write_command("EVALSHA", sha, len(keys), *keys, *argv)
    except ResponseError as exc:  # NoScriptError among them: the writer loads the scripts
        return [exc] * len(logs)
    if not isinstance(reply, list):
        return [reply] * len(logs)
    # A job's {-4, message}: the error Redis raised for that job alone.
    return [
        ResponseError(_text(r[1])) if type(r) is list and r and r[0] == -4 else r for r in reply
    ]


async def _pipelined(
    redis: Connections,
    logs: list[_JobKeys],
    groups: dict[Any, list[bytes]],
    per_job: dict[Any, tuple[int, bytes, int]],
) -> list[Any]:
    """A cluster, whose jobs sit in different slots: one pipelined `append` per job, each
    followed by the notification its node's tails wait for."""
    pipe = redis.control.pipeline(transaction=False)
    sha = SCRIPTS["append"].sha
    notifies = 0
    for log in logs:
        pipe.execute_command("EVALSHA", sha, 2, log.job_key, log.log_key, *per_job[log])
        newest = EVENT_HEAD.unpack(groups[log][-2])[0]  # the batch's last id of this job
        notify = redis.notify_args(log.log_key, newest)
        if notify is not None:
            pipe.execute_command(*notify)
            notifies += 1
    replies = await redis.execute(pipe)
    return replies[:: 2 if notifies else 1]


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
