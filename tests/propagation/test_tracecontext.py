"""W3C traceparent rules, the child environment, and reading it back in the child."""

from __future__ import annotations

import contextvars
import re

import pytest

from narration import NarrationContext, init_from_env, narration_context
from narration.propagation import (
    child_env,
    format_traceparent,
    new_span_id,
    new_trace_id,
    parse_traceparent,
)
from narration.propagation.http import extract_trace
from narration.propagation.tracecontext import (
    TraceParent,
    bind_trace,
    bind_tracestate,
    parse_traceparent_flags,
    trace_flags_for,
    tracestate_for,
    unbind_trace,
    unbind_tracestate,
)

pytestmark = pytest.mark.unit

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
JOB = "job-11111111-2222-4333-8444-555555555555"

VALID = {
    "sampled": (f"00-{TRACE}-{SPAN}-01", (TRACE, SPAN)),
    "not-sampled": (f"00-{TRACE}-{SPAN}-00", (TRACE, SPAN)),
    "any-flags": (f"00-{TRACE}-{SPAN}-ff", (TRACE, SPAN)),
    "future-version": (f"cc-{TRACE}-{SPAN}-01", (TRACE, SPAN)),
    "future-version-extra": (f"cc-{TRACE}-{SPAN}-01-anything-goes", (TRACE, SPAN)),
    "surrounding-ows": (f" \t00-{TRACE}-{SPAN}-01 \t", (TRACE, SPAN)),
}
INVALID = {
    "none": None,
    "empty": "",
    "garbage": "garbage",
    "version-ff": f"ff-{TRACE}-{SPAN}-01",
    "zero-trace-id": f"00-{'0' * 32}-{SPAN}-01",
    "zero-span-id": f"00-{TRACE}-{'0' * 16}-01",
    "uppercase-trace-id": f"00-{TRACE.upper()}-{SPAN}-01",
    "uppercase-version": f"0A-{TRACE}-{SPAN}-01",
    "short-trace-id": f"00-{TRACE[:31]}-{SPAN}-01",
    "long-trace-id": f"00-{TRACE}0-{SPAN}-01",
    "short-span-id": f"00-{TRACE}-{SPAN[:15]}-01",
    "long-span-id": f"00-{TRACE}-{SPAN}0-01",
    "short-version": f"0-{TRACE}-{SPAN}-01",
    "one-digit-flags": f"00-{TRACE}-{SPAN}-1",
    "non-hex-flags": f"00-{TRACE}-{SPAN}-0g",
    "missing-flags": f"00-{TRACE}-{SPAN}",
    "version-00-extra": f"00-{TRACE}-{SPAN}-01-extra",
    "future-version-no-dash": f"cc-{TRACE}-{SPAN}-01extra",
    "bad-delimiter": f"00_{TRACE}_{SPAN}_01",
    "repeated-header": f"00-{TRACE}-{SPAN}-01,00-{TRACE}-{SPAN}-01",
    "newline": f"00-{TRACE}-{SPAN}-01\n",
    "over-512": f"cc-{TRACE}-{SPAN}-01-{'a' * 512}",
}


@pytest.mark.parametrize(("value", "expected"), VALID.values(), ids=VALID.keys())
def test_valid_traceparents_parse(value: str, expected: tuple[str, str]) -> None:
    assert parse_traceparent(value) == expected


@pytest.mark.parametrize("value", INVALID.values(), ids=INVALID.keys())
def test_invalid_traceparents_are_rejected(value: str | None) -> None:
    assert parse_traceparent(value) is None


@pytest.mark.parametrize(
    "value",
    [*(v for v, _ in VALID.values()), *(v for v in INVALID.values() if v and "\n" not in v)],
)
def test_the_opentelemetry_propagator_agrees(value: str) -> None:
    """On `traceparent`, our parser and opentelemetry-api's propagator accept the same values.

    (Not compared: a trailing newline, which opentelemetry's regex lets through and which an
    HTTP header cannot hold anyway.)
    """
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    span = trace.get_current_span(TraceContextTextMapPropagator().extract({"traceparent": value}))
    theirs = span.get_span_context()
    expected = (f"{theirs.trace_id:032x}", f"{theirs.span_id:016x}") if theirs.is_valid else None
    assert parse_traceparent(value) == expected
    extracted = extract_trace(value)
    assert (extracted[:2] if extracted else None) == expected


def test_extract_keeps_a_valid_tracestate_only_with_a_valid_traceparent() -> None:
    good = f"00-{TRACE}-{SPAN}-01"
    assert extract_trace(good, ["congo=t61rcWkgMzE", "rojo=00f0"]) == (
        TRACE,
        SPAN,
        "congo=t61rcWkgMzE,rojo=00f0",
    )
    assert extract_trace(good, ["not a list member"]) == (TRACE, SPAN, None)
    # The current key grammar (which opentelemetry-api's parser refuses) and duplicates.
    assert extract_trace(good, ["foo@=1,bar=2", "bar=3"]) == (TRACE, SPAN, "foo@=1,bar=2")
    assert extract_trace(f"ff-{TRACE}-{SPAN}-01", ["congo=t61rcWkgMzE"]) is None


@pytest.mark.parametrize(
    ("flags", "kept"), [("00", 0), ("01", 1), ("02", 2), ("03", 3), ("ff", 3), ("04", 0)]
)
def test_the_sampled_and_random_flags_are_kept_and_the_others_zeroed(flags: str, kept: int) -> None:
    parsed = parse_traceparent_flags(f"00-{TRACE}-{SPAN}-{flags}")
    assert parsed == TraceParent(TRACE, SPAN, kept)
    assert format_traceparent(TRACE, SPAN, flags=int(flags, 16)) == f"00-{TRACE}-{SPAN}-{kept:02x}"


def test_flags_and_tracestate_are_only_given_for_their_own_trace() -> None:
    token = bind_trace(TRACE, 0x02, "congo=t61rcWkgMzE")
    try:
        ctx = NarrationContext(trace_id=TRACE)
        assert (trace_flags_for(ctx), tracestate_for(ctx)) == (0x02, "congo=t61rcWkgMzE")
        other = NarrationContext(trace_id=new_trace_id())
        assert (trace_flags_for(other), tracestate_for(other)) == (0x01, None)
        with narration_context(job_id=JOB, trace_id=TRACE, span_id=SPAN):
            env = child_env({})
        assert env["TRACEPARENT"].endswith("-02") and env["TRACESTATE"] == "congo=t61rcWkgMzE"
        assert env["TRACEPARENT"].split("-")[2] != SPAN
    finally:
        unbind_trace(token)
    # The child binds them back for its own outgoing calls.
    child = contextvars.copy_context().run(
        lambda: (lambda c: (trace_flags_for(c), tracestate_for(c)))(init_from_env(env))
    )
    assert child == (0x02, "congo=t61rcWkgMzE")


def test_new_ids_are_valid_and_distinct() -> None:
    traces = {new_trace_id() for _ in range(1000)}
    spans = {new_span_id() for _ in range(1000)}
    assert len(traces) == 1000 and len(spans) == 1000
    assert all(re.fullmatch("[0-9a-f]{32}", t) and t != "0" * 32 for t in traces)
    assert all(re.fullmatch("[0-9a-f]{16}", s) and s != "0" * 16 for s in spans)
    assert parse_traceparent(format_traceparent(TRACE, SPAN)) == (TRACE, SPAN)
    assert format_traceparent(TRACE, SPAN, sampled=False) == f"00-{TRACE}-{SPAN}-00"


def test_tracestate_is_only_given_for_its_own_trace() -> None:
    token = bind_tracestate(TRACE, "congo=t61rcWkgMzE")
    try:
        assert tracestate_for(NarrationContext(trace_id=TRACE)) == "congo=t61rcWkgMzE"
        assert tracestate_for(NarrationContext(trace_id=new_trace_id())) is None
        assert tracestate_for(NarrationContext()) is None
    finally:
        unbind_tracestate(token)
    assert tracestate_for(NarrationContext(trace_id=TRACE)) is None


# --- child_env ---------------------------------------------------------------------------------


def test_child_env_carries_the_context() -> None:
    ctx = NarrationContext(job_id=JOB, correlation_id="corr-7", trace_id=TRACE, span_id=SPAN)
    env = child_env({"PATH": "/bin", "KEEP": "1"}, ctx)
    parsed = parse_traceparent(env.pop("TRACEPARENT"))
    assert parsed is not None
    trace_id, child_span = parsed
    assert trace_id == TRACE and child_span != SPAN  # a new span: the child's
    assert env == {
        "PATH": "/bin",
        "KEEP": "1",
        "NARRATION_JOB_ID": JOB,
        "NARRATION_CORRELATION_ID": "corr-7",
        "NARRATION_OUTPUT": "jsonl",
    }


def test_child_env_defaults_to_the_current_context_and_os_environ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOME_SETTING", "x")
    token = bind_tracestate(TRACE, "congo=t61rcWkgMzE")
    try:
        with narration_context(job_id=JOB, correlation_id="c-1", trace_id=TRACE, span_id=SPAN):
            env = child_env()
    finally:
        unbind_tracestate(token)
    assert env["SOME_SETTING"] == "x"
    assert (env["NARRATION_JOB_ID"], env["NARRATION_CORRELATION_ID"]) == (JOB, "c-1")
    assert env["TRACESTATE"] == "congo=t61rcWkgMzE"
    assert env["TRACEPARENT"].startswith(f"00-{TRACE}-")


def test_child_env_never_passes_stale_ids_on() -> None:
    stale = {
        "NARRATION_JOB_ID": "job-stale",
        "NARRATION_CORRELATION_ID": "stale",
        "TRACEPARENT": f"00-{TRACE}-{SPAN}-01",
        "TRACESTATE": "old=1",
        "NARRATION_CONSOLE": "1",
        "NARRATION_LEVEL": "debug",
    }
    assert child_env(stale, NarrationContext()) == {
        "NARRATION_LEVEL": "debug",
        "NARRATION_OUTPUT": "jsonl",
    }


# --- init_from_env (in a copied context: it sets the calling thread's context) ---------------


def test_init_from_env_sets_the_process_context() -> None:
    env = {
        "NARRATION_JOB_ID": JOB,
        "NARRATION_CORRELATION_ID": "corr-9",
        "TRACEPARENT": f"00-{TRACE}-{SPAN}-01",
        "TRACESTATE": "congo=t61rcWkgMzE",
    }

    def child() -> tuple[NarrationContext, NarrationContext, str | None]:
        returned = init_from_env(env)
        from narration import current_context

        now = current_context()
        return returned, now, tracestate_for(now)

    returned, now, state = contextvars.copy_context().run(child)
    assert returned == now
    assert (now.job_id, now.correlation_id, now.trace_id, now.span_id) == (
        JOB,
        "corr-9",
        TRACE,
        SPAN,
    )
    assert state == "congo=t61rcWkgMzE"


def test_init_from_env_ignores_malformed_ids() -> None:
    env = {
        "NARRATION_JOB_ID": "bad job id",
        "NARRATION_CORRELATION_ID": "x" * 129,
        "TRACEPARENT": f"ff-{TRACE}-{SPAN}-01",
        "TRACESTATE": "congo=t61rcWkgMzE",
    }
    ctx = contextvars.copy_context().run(init_from_env, env)
    assert (ctx.job_id, ctx.correlation_id, ctx.trace_id, ctx.span_id) == (None,) * 4
