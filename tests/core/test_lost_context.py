"""Events narrated in a plain thread while jobs run here lost their job: counted, warned once."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from narration import NarrationEvent, lost_context, n, narration_context
from narration.dispatch import dispatcher
from narration.propagation import ContextExecutor, Thread, wrap
from narration.sinks import NarrationHandler

pytestmark = pytest.mark.unit

JOB = "job-00000000-0000-4000-8000-00000000105e"


@pytest.fixture
def job_running() -> Iterator[list[NarrationEvent]]:
    """A job routed in this process (its events kept), and a fresh warning state."""
    events: list[NarrationEvent] = []
    dispatcher.add_route(JOB, events.append)
    lost_context.reset()
    try:
        yield events
    finally:
        dispatcher.remove_route(JOB)
        lost_context.reset()


def in_plain_thread(fn: Callable[[], object]) -> None:
    thread = threading.Thread(target=fn, name="plain-worker")
    thread.start()
    thread.join(10)
    assert not thread.is_alive()


def test_a_plain_thread_in_a_job_is_counted_and_warned_about_once(
    job_running: list[NarrationEvent], capsys: pytest.CaptureFixture[str]
) -> None:
    with narration_context(job_id=JOB):
        n("start", "in the job")
        in_plain_thread(lambda: n("work", "lost in a plain thread"))
        in_plain_thread(lambda: n("work", "lost again"))
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(n, "work", "lost in a plain pool").result(10)
    assert [e.human for e in job_running] == ["in the job"]
    assert lost_context.stats() == {"events": 3, "warned": True}
    err = capsys.readouterr().err
    assert err.count("narration: an event without a job id was narrated") == 1
    assert "in thread 'plain-worker' while jobs run in this process" in err
    for helper in (
        "narration.propagation.Thread",
        "narration.propagation.wrap(fn)",
        "narration.propagation.ContextExecutor",
    ):
        assert helper in err


def test_the_propagation_helpers_keep_the_job_and_warn_nothing(
    job_running: list[NarrationEvent], capsys: pytest.CaptureFixture[str]
) -> None:
    with narration_context(job_id=JOB):
        thread = Thread(target=n, args=("work", "in a narration Thread"))
        thread.start()
        thread.join(10)
        in_plain_thread(wrap(lambda: n("work", "in a wrapped target")))
        with ContextExecutor(max_workers=1) as pool:
            pool.submit(n, "work", "in a ContextExecutor").result(10)
    assert [e.human for e in job_running] == [
        "in a narration Thread",
        "in a wrapped target",
        "in a ContextExecutor",
    ]
    assert lost_context.stats() == {"events": 0, "warned": False}
    assert "narration:" not in capsys.readouterr().err


@pytest.mark.usefixtures("job_running")
def test_job_less_events_on_purpose_are_not_counted(capsys: pytest.CaptureFixture[str]) -> None:
    n("main", "the main thread narrates outside jobs")  # not a worker thread

    async def serve() -> None:
        n("loop", "an event loop thread narrates outside jobs")

    in_plain_thread(lambda: asyncio.run(serve()))

    def deliberate() -> None:
        with narration_context(actor="janitor"):  # any context: job-less on purpose
            n("sweep", "sweeping")

    in_plain_thread(deliberate)
    assert lost_context.stats() == {"events": 0, "warned": False}
    assert "narration:" not in capsys.readouterr().err


def test_nothing_is_counted_when_no_job_runs_here(capsys: pytest.CaptureFixture[str]) -> None:
    lost_context.reset()
    saved = dict(dispatcher.routes)  # routes another test may have left: none for this one
    dispatcher.routes.clear()
    try:
        in_plain_thread(lambda: n("work", "no jobs anywhere"))
    finally:
        dispatcher.routes.update(saved)
    assert lost_context.stats() == {"events": 0, "warned": False}
    assert "narration:" not in capsys.readouterr().err


def test_log_records_from_a_plain_thread_in_a_job_are_counted_too(
    job_running: list[NarrationEvent], capsys: pytest.CaptureFixture[str]
) -> None:
    logger = logging.getLogger(f"billing.{uuid.uuid4().hex}")
    handler = NarrationHandler()
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with narration_context(job_id=JOB):
            logger.warning("in the job")
            in_plain_thread(lambda: logger.warning("lost in a plain thread"))
    finally:
        logger.removeHandler(handler)
    assert [e.human for e in job_running] == ["in the job"]
    assert lost_context.stats() == {"events": 1, "warned": True}
    assert "in thread 'plain-worker'" in capsys.readouterr().err
