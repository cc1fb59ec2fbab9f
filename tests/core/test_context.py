"""`NarrationContext`, `narration_context` and `with_narration_context`: merge and restore rules."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from narration import (
    NarrationContext,
    current_context,
    n,
    narration_context,
    with_narration_context,
)
from narration.testing import capture

pytestmark = pytest.mark.unit


class Boom(Exception):
    """Raised inside a context block to check the context is restored."""


def test_context_is_frozen_and_builders_return_new_contexts() -> None:
    base = NarrationContext(job_id="job-1", correlation_id="corr-1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.job_id = "job-2"  # type: ignore[misc]
    assert base.with_job_id("job-2") == NarrationContext(job_id="job-2", correlation_id="corr-1")
    assert base.with_correlation_id("c") == NarrationContext(job_id="job-1", correlation_id="c")
    assert base.with_actor("queen").actor == "queen"
    assert base.with_fields(a=1).with_fields(b=2).fields == {"a": 1, "b": 2}
    assert base.with_fields(a=1).with_fields(a=3).fields == {"a": 3}
    assert base == NarrationContext(job_id="job-1", correlation_id="corr-1")  # unchanged


def test_no_job_outside_any_context() -> None:
    ctx = current_context()
    assert (ctx.job_id, ctx.correlation_id, ctx.actor, ctx.fields) == (None, None, None, None)


def test_nested_contexts_merge_inner_over_outer_and_restore_on_exit() -> None:
    with narration_context(
        job_id="job-outer", correlation_id="corr-outer", actor="queen", fields={"a": 1, "b": 1}
    ) as outer:
        assert current_context() is outer
        with narration_context(job_id="job-inner", fields={"b": 2, "c": 3}) as inner:
            assert inner.job_id == "job-inner"
            assert inner.correlation_id == "corr-outer"  # inherited
            assert inner.actor == "queen"  # inherited
            assert inner.fields == {"a": 1, "b": 2, "c": 3}  # merged key by key
            with narration_context(trace_id="t" * 32, span_id="s" * 16) as innermost:
                assert innermost.job_id == "job-inner"
                assert (innermost.trace_id, innermost.span_id) == ("t" * 32, "s" * 16)
            assert current_context() is inner
        assert current_context() is outer
    assert current_context().job_id is None


def test_none_values_inherit_rather_than_clear() -> None:
    with (
        narration_context(job_id="job-keep", correlation_id="corr-keep"),
        narration_context(job_id=None, correlation_id=None) as inner,
    ):
        assert (inner.job_id, inner.correlation_id) == ("job-keep", "corr-keep")


def test_a_given_context_merges_and_keywords_override_it() -> None:
    carried = NarrationContext(job_id="job-carried", correlation_id="corr-carried")
    with (
        narration_context(actor="hive", fields={"x": 1}),
        narration_context(carried, correlation_id="corr-kw") as ctx,
    ):
        assert ctx.job_id == "job-carried"
        assert ctx.correlation_id == "corr-kw"
        assert ctx.actor == "hive"  # the carried context had none: inherited
        assert ctx.fields == {"x": 1}


def _fail_inside(job_id: str) -> None:
    with narration_context(job_id=job_id):
        assert current_context().job_id == job_id
        raise Boom


def test_context_is_restored_when_the_block_raises() -> None:
    with narration_context(job_id="job-outer") as outer:
        with pytest.raises(Boom):
            _fail_inside("job-failing")
        assert current_context() is outer
    assert current_context().job_id is None


async def test_context_is_restored_when_an_async_block_raises() -> None:
    async def fail() -> None:
        with narration_context(job_id="job-async-fail"):
            await asyncio.sleep(0)
            raise Boom

    with narration_context(job_id="job-async-outer"):
        with pytest.raises(Boom):
            await fail()
        assert current_context().job_id == "job-async-outer"


async def test_with_narration_context_runs_exactly_that_context_and_returns() -> None:
    ctx = NarrationContext(job_id="job-w", correlation_id="corr-w")

    async def work(x: int) -> tuple[str | None, str | None, str | None, int]:
        await asyncio.sleep(0)
        now = current_context()
        n("work", "working on {}", x)
        return now.job_id, now.correlation_id, now.actor, x * 2

    with capture() as cap, narration_context(job_id="job-caller", actor="caller"):
        result = await with_narration_context(ctx, work(21))
        assert current_context().job_id == "job-caller"
    # Exactly `ctx`: its values, not merged with the caller's (the caller's actor is gone).
    assert result == ("job-w", "corr-w", None, 42)
    event = cap.assert_includes("working on 21")  # the caller's capture still sees inside
    assert (event.job_id, event.correlation_id) == ("job-w", "corr-w")


async def test_with_narration_context_restores_on_exception_and_tasks_inherit() -> None:
    ctx = NarrationContext(job_id="job-wx", correlation_id="corr-wx")

    async def spawn_then_fail() -> None:
        child = asyncio.create_task(asyncio.sleep(0, result=current_context().job_id))
        assert await child == "job-wx"
        async with asyncio.TaskGroup() as group:
            task = group.create_task(_job_id_later())
        assert task.result() == "job-wx"
        raise Boom

    with pytest.raises(Boom):
        await with_narration_context(ctx, spawn_then_fail())
    assert current_context().job_id is None


async def _job_id_later() -> str | None:
    await asyncio.sleep(0)
    return current_context().job_id


def test_with_trace_replaces_both_ids_and_keeps_the_rest() -> None:
    base = NarrationContext(
        job_id="job-1", correlation_id="c-1", trace_id="a" * 32, span_id="b" * 16
    )
    traced = base.with_trace("c" * 32, "d" * 16)
    assert (traced.trace_id, traced.span_id) == ("c" * 32, "d" * 16)
    assert (traced.job_id, traced.correlation_id) == ("job-1", "c-1")
    assert (base.trace_id, base.span_id) == ("a" * 32, "b" * 16)  # the original is untouched
