"""The hive: runs workers on one machine, as child processes whose narration joins its jobs.

    app = create_hive_app("gpu-box")          # a FastAPI app; `narration hive` serves it

`hive_check` narrates the machine and runs the worker's self-test; `worker_spawn` and `infer`
start the stand-in worker (`python -m narration.services.worker`) under `ProcessCapture`, so
every JSONL line the worker narrates lands in the hive job's stream with the worker's actor and
the job's ids; a worker that exits non-zero fails the job with its exit code. `worker_list`
lists the workers spawned so far. Events of this service have the actor `hive`.

The worker inherits the hive's environment (plus the ids of `child_env()`), so the worker test
knobs `NARRATION_WORKER_FAIL` and `NARRATION_WORKER_TOKEN_DELAY` set on a hive reach every worker
it starts (see `narration.services.worker`).
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from fastapi import FastAPI

from ..emit import n
from ..jobs import Handler, Job, JobRegistry
from ..propagation import ProcessCapture, ProcessFailedError, child_env
from ..server import create_app
from .errors import ServiceError
from .operations import HiveCheck, Infer, WorkerList, WorkerSpawn

__all__ = ["HiveState", "WorkerFailedError", "WorkerInfo", "create_hive_app", "hive_jobs"]

WORKER_MODULE = "narration.services.worker"
_ARGV_PROMPT_LIMIT = 8192
"""Prompts longer than this reach the worker through a temporary file, not its argv."""


class WorkerFailedError(ServiceError):
    """The worker child exited non-zero (or could not be started)."""

    def __init__(self, exit_code: int | None, detail: str) -> None:
        self.exit_code = exit_code
        self.detail = detail
        if exit_code is None:
            super().__init__(f"worker could not start: {detail}")
        else:
            suffix = f": {detail}" if detail else ""
            super().__init__(f"worker exited with code {exit_code}{suffix}")


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker this hive spawned."""

    worker_id: str
    model: str
    kind: str
    device: int
    spawned_at: float
    job_id: str | None


@dataclass(slots=True)
class HiveState:
    """What a hive knows: its id and the workers it spawned (`app.state.hive`)."""

    hive_id: str
    workers: list[WorkerInfo] = field(default_factory=list)


def create_hive_app(hive_id: str = "localhost", **server_options: Any) -> FastAPI:
    """The hive service: `hive_check`, `worker_spawn`, `worker_list`, `infer` (and `status`).

    `server_options` go to `create_app` (`ServerSettings` fields, `store=...`). By default the
    hive's actor is `hive` and its streams send a keepalive after 1 s of silence, so a queen
    reading them notices a silent hive within seconds.
    """
    state = HiveState(hive_id)
    options: dict[str, Any] = {"actor": "hive", "keepalive_s": 1.0, **server_options}
    app = create_app(hive_jobs(state), **options)
    app.state.hive = state
    return app


def hive_jobs(state: HiveState) -> JobRegistry:
    """The hive's operations, each model with its handler (the same registry API as yours)."""
    jobs = JobRegistry()
    jobs.add("hive_check", _hive_check(state))
    jobs.add("worker_spawn", _worker_spawn(state))
    jobs.add("worker_list", _worker_list(state))
    jobs.add("infer", _infer(state))
    return jobs


def _hive_check(state: HiveState) -> Handler:
    async def hive_check(operation: HiveCheck, job: Job) -> None:
        n(
            "hive_check",
            "Checking hive {}: {} {} with {} CPU(s), Python {}",
            state.hive_id,
            platform.system(),
            platform.machine(),
            os.cpu_count() or 1,
            platform.python_version(),
            hive_id=state.hive_id,
        )
        if operation.alias != state.hive_id:
            n("hive_alias", "Known to the caller as {!r}", operation.alias, alias=operation.alias)
        n("worker_check", "Running the worker's self-test")
        await run_worker(["--check"])
        n(
            "hive_ready",
            "Hive {} is healthy; {} worker(s) spawned so far",
            state.hive_id,
            len(state.workers),
            workers=len(state.workers),
        )

    return hive_check


def _worker_spawn(state: HiveState) -> Handler:
    async def worker_spawn(operation: WorkerSpawn, job: Job) -> None:
        worker_id = f"worker-{len(state.workers) + 1}"
        n(
            "worker_spawn",
            "Spawning {}: a {} worker for {} on device {}",
            worker_id,
            operation.worker,
            operation.model,
            operation.device,
            worker_id=worker_id,
        )
        await run_worker(_engine_args(operation.model, operation.worker, operation.device))
        info = WorkerInfo(
            worker_id,
            operation.model,
            operation.worker,
            operation.device,
            time.time(),
            job.job_id,
        )
        state.workers.append(info)
        n("worker_ready", "Worker {} is ready with {}", worker_id, operation.model, **asdict(info))

    return worker_spawn


def _worker_list(state: HiveState) -> Handler:
    async def worker_list(operation: WorkerList, job: Job) -> None:
        count = len(state.workers)
        n("worker_list", "Hive {} has {} worker(s)", state.hive_id, count, workers=count)
        for info in state.workers:
            n(
                "worker",
                "{}: {} on {} device {}",
                info.worker_id,
                info.model,
                info.kind,
                info.device,
                **asdict(info),
            )

    return worker_list


def _infer(state: HiveState) -> Handler:
    async def infer(operation: Infer, job: Job) -> None:
        n(
            "infer",
            "Starting a worker for {} to answer a {}-character prompt (up to {} tokens)",
            operation.model,
            len(operation.prompt),
            operation.max_tokens,
            model=operation.model,
        )
        args = [*_engine_args(operation.model, "cpu", 0), "--max-tokens", str(operation.max_tokens)]
        if len(operation.prompt) <= _ARGV_PROMPT_LIMIT:
            await run_worker([*args, "--prompt", operation.prompt])
        else:
            await _run_with_prompt_file(args, operation.prompt)
        n("infer_done", "Inference with {} finished", operation.model, model=operation.model)

    return infer


def _engine_args(model: str, kind: str, device: int) -> list[str]:
    return ["--model", model, "--kind", kind, "--device", str(device)]


async def _run_with_prompt_file(args: list[str], prompt: str) -> None:
    handle, path = tempfile.mkstemp(prefix="narration-prompt-", suffix=".txt")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(prompt)
        await run_worker([*args, "--prompt-file", path])
    finally:
        os.unlink(path)


async def run_worker(args: Sequence[str]) -> int:
    """Run the stand-in worker with `args` in the current job; its narration joins the job.

    Raises `WorkerFailedError` (exit code and last stderr line) when it exits non-zero.
    """
    argv = [sys.executable, "-m", WORKER_MODULE, *args]
    capture = ProcessCapture(argv, env=child_env(), origin_prefix="worker")
    try:
        return await capture.run()
    except ProcessFailedError as exc:
        raise WorkerFailedError(exc.exit_code, _last_line(exc.stderr_tail)) from None
    except OSError as exc:
        raise WorkerFailedError(None, str(exc)) from None


def _last_line(lines: Sequence[str]) -> str:
    """The last non-empty line of a stderr tail."""
    for line in reversed(lines):
        if line.strip():
            return line.strip()
    return ""
