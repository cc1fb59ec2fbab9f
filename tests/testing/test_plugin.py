"""The pytest plugin's fixtures work in a user's project as pytest-asyncio and anyio run it.

Each case is a real pytest run in a fresh directory (pytester, in a subprocess), with the
project's pytest configuration left behind: pytest-asyncio's default strict mode, its auto
mode, and anyio's plugin alone.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

USER_TESTS = """
import pytest
from narration import n, narration_context

@pytest.mark.asyncio
async def test_with_pytest_asyncio(narration_harness):
    job_id = await narration_harness.submit_job("anything", {"x": 1})
    stream = narration_harness.get_sse_stream(job_id)
    with narration_context(narration_harness.job_context(job_id)):
        n("step", "Hello")
    await narration_harness.complete_job(job_id)
    await stream.assert_next("step", "Hello")
    assert await stream.collect_until_done() == []

@pytest.mark.anyio
async def test_with_anyio(narration_harness):
    job_id = await narration_harness.submit_job("anything")
    await narration_harness.fail_job(job_id, "nope")
    stream = narration_harness.get_sse_stream(job_id)
    assert await stream.collect_until_done() == []
    assert (stream.terminal.state, stream.terminal.error) == ("failed", "nope")

def test_capture(narration_capture):
    n("sync", "Captured")
    narration_capture.assert_includes("Captured")

@pytest.fixture
def anyio_backend():
    return "asyncio"
"""


@pytest.mark.parametrize(
    ("options", "outcome"),
    [
        (["-o", "asyncio_mode=strict"], {"passed": 3}),
        (["-o", "asyncio_mode=auto", "-k", "not anyio"], {"passed": 2, "deselected": 1}),
        (["-p", "no:asyncio", "-k", "not pytest_asyncio"], {"passed": 2, "deselected": 1}),
    ],
    ids=["pytest-asyncio-strict", "pytest-asyncio-auto", "anyio-alone"],
)
def test_fixtures_in_a_user_project(
    pytester: pytest.Pytester, options: list[str], outcome: dict[str, int]
) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *options, timeout=120)
    result.assert_outcomes(**outcome)
