"""The stand-in worker as a child process: its JSONL narration, its exit codes, its help."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from narration.services.worker import fake_tokens

pytestmark = pytest.mark.unit

ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith(("NARRATION_", "TRACE"))},
    "NARRATION_OUTPUT": "jsonl",
    "NARRATION_JOB_ID": "job-0b6f1c1e-8f6e-4f6a-9c37-2f1e8a4b5c6d",
    "NARRATION_CORRELATION_ID": "w-1",
    "TRACEPARENT": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
}


def worker(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "narration.services.worker", *args],
        capture_output=True,
        text=True,
        timeout=20,
        env={**ENV, **env},
        check=False,
    )


def test_fake_tokens_are_prompt_driven_and_bounded() -> None:
    assert fake_tokens("Why is the sky blue?", 6) == [
        "A",
        "simulated",
        "answer",
        "about",
        "Why",
        "is",
    ]
    assert len(fake_tokens("x", 10_000)) == 26  # it ends by itself
    assert fake_tokens("", 3) == ["A", "simulated", "answer"]


def test_worker_narrates_start_up_load_and_tokens_as_jsonl_with_the_env_ids() -> None:
    result = worker("--model", "m", "--prompt", "Hello there", "--max-tokens", "3")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["action"] for e in events] == [
        "startup",
        *["model_load"] * 4,
        "model_ready",
        "generate",
        "token",
        "token",
        "token",
        "generated",
    ]
    assert {e["actor"] for e in events} == {"worker"}
    assert {e["job_id"] for e in events} == {ENV["NARRATION_JOB_ID"]}
    assert {e["correlation_id"] for e in events} == {"w-1"}
    assert {e["trace_id"] for e in events} == {"4bf92f3577b34da6a3ce929d0e0e4736"}
    assert {e["span_id"] for e in events} == {"00f067aa0ba902b7"}
    assert [e["human"] for e in events if e["action"] == "token"] == ["A", "simulated", "answer"]
    assert re.fullmatch(
        r"Generated 3 tokens in \d+ ms \(\d+ tokens/s\): A simulated answer", events[-1]["human"]
    )


def test_fail_with_exits_with_that_code_and_says_so_on_stderr() -> None:
    result = worker("--prompt", "x", "--fail-with", "3")
    assert result.returncode == 3
    assert result.stderr == "worker: simulated failure, exiting with code 3\n"
    actions = [json.loads(line)["action"] for line in result.stdout.splitlines()]
    assert actions[-1] == "crash"
    assert "token" not in actions


def test_fail_knob_comes_from_the_environment_too() -> None:
    result = worker("--check", NARRATION_WORKER_FAIL="1")
    assert result.returncode == 1
    assert result.stderr == "worker: simulated failure, exiting with code 1\n"
    bad = worker("--check", NARRATION_WORKER_FAIL="soon")
    assert bad.returncode == 2
    assert "NARRATION_WORKER_FAIL='soon' is not a valid int" in bad.stderr


def test_help_says_it_is_a_stand_in() -> None:
    result = worker("--help")
    assert result.returncode == 0
    assert "A STAND-IN for an inference engine, not a real model" in " ".join(result.stdout.split())
