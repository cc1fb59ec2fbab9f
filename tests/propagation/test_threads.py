"""`narration.propagation`: what `wrap`, `Thread` and `ContextExecutor` promise beyond the ids."""

from __future__ import annotations

import contextvars
import threading

import pytest

import narration.propagation as propagation
from narration import current_context, narration_context
from narration.propagation import ContextExecutor, Thread, wrap

pytestmark = pytest.mark.unit

_probe: contextvars.ContextVar[str] = contextvars.ContextVar("probe", default="unset")


def current_job() -> str | None:
    """The job id in force in the calling thread."""
    return current_context().job_id


def test_the_package_re_exports_the_thread_helpers() -> None:
    assert set(propagation.__all__) >= {"wrap", "Thread", "ContextExecutor"}
    assert propagation.__doc__


def test_wrap_snapshots_the_context_when_called_not_later() -> None:
    with narration_context(job_id="job-early"):
        wrapped = wrap(current_job)
    with narration_context(job_id="job-late"):
        assert wrapped() == "job-early"


def test_wrap_keeps_name_arguments_result_and_exceptions() -> None:
    def add(a: int, b: int = 0) -> int:
        """Add two numbers."""
        if a < 0:
            raise ValueError("negative")
        return a + b

    wrapped = wrap(add)
    assert wrapped.__name__ == "add"
    assert wrapped.__doc__ == "Add two numbers."
    assert wrapped(2, b=3) == 5
    with pytest.raises(ValueError, match="negative"):
        wrapped(-1)


def test_wrap_calls_do_not_leak_into_each_other_or_the_caller() -> None:
    def set_and_read(value: str) -> str:
        before = _probe.get()
        _probe.set(value)
        return before

    wrapped = wrap(set_and_read)
    assert wrapped("first") == "unset"
    assert wrapped("second") == "unset"  # each call runs in a fresh copy of the snapshot
    assert _probe.get() == "unset"


def test_wrap_can_run_in_several_threads_at_once() -> None:
    """One snapshot, many threads entering it together: each call gets its own copy."""
    barrier = threading.Barrier(4)
    results: list[str | None] = []

    def meet() -> str | None:
        barrier.wait(timeout=10)  # all four threads are inside the wrapped call together
        return current_job()

    with narration_context(job_id="job-shared"):
        wrapped = wrap(meet)
    threads = [threading.Thread(target=lambda: results.append(wrapped())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["job-shared"] * 4


def test_thread_passes_args_kwargs_name_and_daemon() -> None:
    seen: dict[str, object] = {}

    def record(a: int, *, b: int) -> None:
        seen.update(a=a, b=b, job=current_job(), name=threading.current_thread().name)

    with narration_context(job_id="job-args"):
        thread = Thread(target=record, args=(1,), kwargs={"b": 2}, name="worker-1", daemon=True)
    assert thread.daemon is True
    assert isinstance(thread, threading.Thread)
    thread.start()
    thread.join()
    assert seen == {"a": 1, "b": 2, "job": "job-args", "name": "worker-1"}


def test_thread_changes_inside_do_not_reach_the_creator() -> None:
    def change() -> None:
        _probe.set("from thread")

    with narration_context(job_id="job-iso"):
        thread = Thread(target=change)
        thread.start()
        thread.join()
        assert _probe.get() == "unset"
        assert current_job() == "job-iso"


def test_executor_uses_the_context_of_each_submit_call() -> None:
    with ContextExecutor(max_workers=1) as pool:
        with narration_context(job_id="job-a"):
            first = pool.submit(current_job)
        with narration_context(job_id="job-b"):
            second = pool.submit(current_job)
        outside = pool.submit(current_job)
        assert [first.result(), second.result(), outside.result()] == ["job-a", "job-b", None]


def test_executor_submit_passes_arguments_and_exceptions() -> None:
    def divide(a: int, b: int) -> float:
        return a / b

    with ContextExecutor(max_workers=1) as pool:
        assert pool.submit(divide, 6, b=3).result() == 2
        with pytest.raises(ZeroDivisionError):
            pool.submit(divide, 1, 0).result()
