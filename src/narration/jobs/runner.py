"""The job runner: starts an operation's handler inside the job's context (again, per its retry
policy, when it fails), and ends every job with exactly one terminal event, appended only after
its final state is committed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..context import NarrationContext, attach, detach
from ..dispatch import dispatcher
from ..emit import n
from ..errors import JobError
from ..events import Level
from ..ids import new_job_id
from ..otel.job_spans import end_job_span, enter_job_span, exit_job_span, start_job_span
from ..redact import drop_job_secrets, hold_job_secrets, redact_text, redact_value, secret_values
from ..store.base import EventLog, JobRecord, Store
from .registry import JobRegistry, OperationSpec
from .states import FINAL_STATES, JobState, check_transition

__all__ = ["Job", "JobFinishedError", "JobManager", "NotAcceptingError", "UnknownJobError"]


class UnknownJobError(JobError, LookupError):
    """No job with this id lives here (never existed, or expired)."""


class JobFinishedError(JobError):
    """The job already reached a final state."""


class NotAcceptingError(JobError):
    """The server is at capacity or shutting down."""


@dataclass(slots=True, eq=False)
class Job:
    """A live job as its handler sees it: its record, its log and its narration context.

    A sync handler (run in a worker thread, which cannot be interrupted) should look at
    `stop_requested` now and then: it turns True when the job is cancelled or the server stops.
    """

    record: JobRecord
    log: EventLog
    context: NarrationContext
    operation: Any = None
    task: asyncio.Task[None] | None = None
    cancel_requested: bool = False
    stop_requested: bool = False
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    span: Any = None  # the job's OpenTelemetry span (narration.otel.job_spans), if any

    @property
    def job_id(self) -> str:
        return self.record.job_id

    @property
    def correlation_id(self) -> str:
        return self.record.correlation_id

    @property
    def name(self) -> str:
        """The operation's name, e.g. `"build_report"`."""
        return str(self.record.operation.get("operation", ""))


class JobManager:
    """Creates, runs, cancels and ends jobs; the only writer of job state.

    `registry` holds the operations and their handlers. An operation it does not know fails at
    once, unless `hold_unhandled` (test harness): then the job stays running until
    `complete()`, `fail()` or `cancel()`. At most `max_finished` finished jobs are kept for
    their retention: past that, the oldest finished one is forgotten at once (`evicted`).
    """

    def __init__(
        self,
        store: Store,
        registry: JobRegistry | None = None,
        *,
        retention_s: float = 600.0,
        timeout_s: float | None = None,
        max_running: int = 10_000,
        hold_unhandled: bool = False,
        actor: str | None = None,
        max_finished: int | None = None,
    ) -> None:
        self.store = store
        self.registry = registry if registry is not None else JobRegistry()
        self.retention_s = retention_s
        self.timeout_s = timeout_s
        self.max_running = max_running
        self.hold_unhandled = hold_unhandled
        self.actor = actor
        self.accepting = True
        self.live: dict[str, Job] = {}
        self.max_finished = max_finished
        self._retained: deque[tuple[float, str]] = deque()  # (finished at, id), oldest first
        self.evicted = 0  # finished jobs forgotten before their retention ended
        self.observer: Any = None  # told of each job's start and end (server/metrics.py)
        self.archiver: Any = None  # archives each ended job, then expires it (archive/writer.py)
        store.on_cancel_request(self._cancel_requested)

    @property
    def running(self) -> int:
        """How many jobs are running in this process."""
        return len(self.live)

    async def submit(
        self,
        operation: Any,
        *,
        correlation_id: str,
        owner: str | None = None,
        tenant: str | None = None,
        parent_job_id: str | None = None,
        trace_id: str | None = None,
        span_id: str | None = None,
    ) -> Job:
        """Create the job and start its handler now (not on the first stream request)."""
        if not self.accepting:
            raise NotAcceptingError("the server is shutting down")
        if len(self.live) >= self.max_running:
            raise NotAcceptingError(f"the server is at capacity ({self.max_running} running jobs)")
        name = str(getattr(operation, "operation", ""))
        job_id = new_job_id()
        hold_job_secrets(job_id, secret_values(operation))  # masked in its events from now on
        record = JobRecord(
            job_id=job_id,
            operation=redact_value(operation.model_dump(mode="json"), job_id),
            correlation_id=correlation_id,
            created_at=time.time(),
            parent_job_id=parent_job_id,
            trace_id=trace_id,
            owner=owner,
            tenant=tenant,
        )
        try:
            log = await self.store.create(record)
        except BaseException:
            drop_job_secrets(job_id)  # no job was made
            raise
        context = NarrationContext(
            job_id=record.job_id,
            correlation_id=correlation_id,
            actor=self.actor,
            trace_id=trace_id,
            span_id=span_id,
        )
        context, span = start_job_span(context, record.job_id, name)
        job = Job(record, log, context, operation, span=span)
        self.live[record.job_id] = job
        dispatcher.add_route(record.job_id, log.append)
        check_transition(record.state, JobState.RUNNING)
        record.state, record.started_at = JobState.RUNNING, time.time()
        await self.store.start(record)
        if self.observer is not None:
            self.observer.submitted(job)
        spec = self.registry.get(name)
        if spec is not None and spec.handler is not None:
            job.task = asyncio.create_task(self._run(job, spec), name=f"narration-{record.job_id}")
        elif not self.hold_unhandled:
            await self.finish(job, JobState.FAILED, f"no handler for {name!r} here")
        return job

    async def _run(self, job: Job, spec: OperationSpec) -> None:
        token = attach(job.context)
        span_token = enter_job_span(job.span)
        try:
            state, error = await self._call(job, spec)
        finally:
            exit_job_span(span_token)
            detach(token)
        await self.finish(job, state, error)

    async def _call(self, job: Job, spec: OperationSpec) -> tuple[JobState, str | None]:
        args = (job.operation, job) if spec.takes_job else (job.operation,)
        scope = asyncio.timeout(self.timeout_s)
        try:
            async with scope:
                if spec.retry is None:
                    await _call_handler(spec, args)
                else:
                    await self._attempts(job, spec, args)
        except asyncio.CancelledError:
            return JobState.CANCELLED, ("cancelled" if job.cancel_requested else "server stopped")
        except Exception as exc:
            if isinstance(exc, TimeoutError) and scope.expired():
                error = f"timed out after {self.timeout_s:g} s"
                n("job_timeout", "Job timed out after {:g} s", self.timeout_s, level=Level.ERROR)
                return JobState.FAILED, error
            error = _describe(exc)
            tries = len(job.record.attempts or ())
            after = f" after {tries} attempts" if tries > 1 else ""
            n("job_failed", "Job failed{}: {}", after, error, level=Level.ERROR)
            return JobState.FAILED, error
        return JobState.COMPLETED, None

    async def _attempts(self, job: Job, spec: OperationSpec, args: tuple[Any, ...]) -> None:
        """Call the handler until it succeeds, raises an error its policy does not retry, or the
        policy's attempts are spent (then its last error is raised). Each attempt runs with
        `attempt=k` in its context's fields, so every event it narrates carries it; between two,
        a `retry` event says why and when the next one starts."""
        retry = spec.retry
        assert retry is not None
        record = job.record
        record.attempts = attempts = []
        for number in range(1, retry.attempts + 1):
            entry: dict[str, Any] = {"attempt": number, "started_at": time.time()}
            attempts.append(entry)
            await self.store.save_attempts(record)
            token = attach(job.context.with_fields(attempt=number))
            try:
                await _call_handler(spec, args)
            except Exception as exc:
                entry["finished_at"] = time.time()
                entry["error"] = redact_text(_describe(exc), record.job_id)
                if number == retry.attempts or not retry.retries(exc):
                    raise
                delay = retry.delay(number)
                entry["retry_at"] = entry["finished_at"] + delay
                n(
                    "retry",
                    "Attempt {} of {} failed ({}); attempt {} starts in {:g} s",
                    number,
                    retry.attempts,
                    entry["error"],
                    number + 1,
                    delay,
                    level=Level.WARN,
                    error=entry["error"],
                    next_attempt=number + 1,
                    delay_s=delay,
                    retry_at=entry["retry_at"],
                )
                await self.store.save_attempts(record)
                await asyncio.sleep(delay)
            else:
                entry["finished_at"] = time.time()
                entry["error"] = None
                return
            finally:
                detach(token)

    async def finish(self, job: Job, state: JobState, error: str | None = None) -> None:
        """Commit the final state, then seal the log with the one terminal event."""
        record = job.record
        if record.state in FINAL_STATES:
            return
        check_transition(record.state, state)
        if error is not None:
            error = redact_text(error, record.job_id)  # shown by status, listings, the terminal
        record.state, record.error, record.finished_at = state, error, time.time()
        await job.log.flush()
        if record.attempts:
            await self.store.save_attempts(record)
        await self.store.finish(record, job.log)
        dispatcher.remove_route(record.job_id)
        self.live.pop(record.job_id, None)
        end_job_span(job.span, state, error)
        if self.observer is not None:
            self.observer.finished(job)
        job.finished.set()
        if self.archiver is not None:  # it expires the live copy once the job is archived
            self.archiver.archive_job(record, job.log)
        else:
            await self.store.expire(record.job_id, self.retention_s)
            # Its log may still encode (readers) and sinks still write its last events.
            drop_job_secrets(record.job_id, after_s=max(self.retention_s, 60.0))
        await self._keep_finished(record.job_id)

    @property
    def retained_finished(self) -> int:
        """Finished jobs of this process still within their retention."""
        horizon = time.monotonic() - self.retention_s
        retained = self._retained
        while retained and retained[0][0] <= horizon:
            retained.popleft()
        return len(retained)

    async def _keep_finished(self, job_id: str) -> None:
        """Count `job_id` among the retained finished jobs; forget the oldest past the cap."""
        if self.max_finished is None or self.retention_s <= 0:
            return
        retained = self._retained
        retained.append((time.monotonic(), job_id))
        while self.retained_finished > self.max_finished:
            _, oldest = retained.popleft()
            self.evicted += 1
            await self.store.expire(oldest, 0)

    async def _final_or_unknown(self, job_id: str) -> JobFinishedError | UnknownJobError:
        record = await self.store.get(job_id)
        if record is not None and record.state in FINAL_STATES:
            return JobFinishedError(f"job {job_id} already {record.state}")
        return UnknownJobError(job_id)

    async def complete(self, job_id: str) -> JobRecord:
        """End a held job as completed (`done`)."""
        return await self._end(job_id, JobState.COMPLETED, None)

    async def fail(self, job_id: str, error: str) -> JobRecord:
        """End a held job as failed (`error`)."""
        return await self._end(job_id, JobState.FAILED, error)

    async def _end(self, job_id: str, state: JobState, error: str | None) -> JobRecord:
        job = self.live.get(job_id)
        if job is None:
            raise await self._final_or_unknown(job_id)
        if job.task is not None:
            raise RuntimeError(f"job {job_id} is run by its handler; cancel it instead")
        await self.finish(job, state, error)
        return job.record

    async def cancel(self, job_id: str) -> JobRecord:
        """Cancel a running job: its handler task is cancelled and the stream ends `cancelled`."""
        job = self.live.get(job_id)
        if job is None:
            if await self.store.request_cancel(job_id):  # it runs on another replica
                return await self._await_end(job_id)
            raise await self._final_or_unknown(job_id)
        job.cancel_requested = job.stop_requested = True
        if job.task is not None and not job.task.done():
            job.task.cancel()
            try:
                await asyncio.wait_for(job.finished.wait(), timeout=10.0)
            except TimeoutError:  # the handler swallowed the cancellation: end it anyway
                await self.finish(job, JobState.CANCELLED, "cancelled (handler did not stop)")
        else:
            await self.finish(job, JobState.CANCELLED, "cancelled")
        return job.record

    async def _await_end(self, job_id: str, timeout: float = 15.0) -> JobRecord:
        """The record of a job another replica was asked to end, once final (or at `timeout`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            record = await self.store.get(job_id)
            if record is None:
                raise UnknownJobError(job_id)
            if record.state in FINAL_STATES or loop.time() >= deadline:
                return record
            await asyncio.sleep(0.02)

    async def _cancel_requested(self, job_id: str) -> None:
        """Another replica asked for `job_id` to be cancelled (it runs here)."""
        with contextlib.suppress(UnknownJobError, JobFinishedError):
            await self.cancel(job_id)

    async def shutdown(self, grace_s: float = 5.0) -> None:
        """Stop accepting jobs; cancel what still runs after `grace_s` so every stream ends."""
        self.accepting = False
        for job in self.live.values():
            job.stop_requested = True
        tasks = [job.task for job in self.live.values() if job.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)
        for job in list(self.live.values()):
            if job.task is not None and not job.task.done():
                job.task.cancel()
            else:
                await self.finish(job, JobState.CANCELLED, "server stopped")
        remaining = [job.task for job in self.live.values() if job.task is not None]
        if remaining:
            await asyncio.wait(remaining, timeout=grace_s)


async def _call_handler(spec: OperationSpec, args: tuple[Any, ...]) -> None:
    """One call of the operation's handler (a plain def runs in a worker thread, inside the
    job's context)."""
    handler: Any = spec.handler
    if spec.is_async:
        await handler(*args)
    else:
        await asyncio.to_thread(handler, *args)


def _describe(exc: BaseException) -> str:
    """`Type: message` (or the type alone) of an error, as jobs report it."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
