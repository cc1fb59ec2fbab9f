"""The core needs msgspec only: in a fresh virtual environment holding nothing else, `narration`
imports, narrates, captures its own events and prints them as JSONL.

(The server, client, Redis store and CLI are extras: `narration-core[server|redis|cli|all]`.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

pytestmark = pytest.mark.packaging

SRC = Path(__file__).resolve().parents[2] / "src"

SCRIPT = """
import json, sys
import narration
from narration import n, narration_context, configure, flush
from narration.testing import capture

with capture() as seen, narration_context(job_id="job-1", correlation_id="c-1"):
    n("start", "Core alone, GPU {}", 0, gpu=0)
assert [(e.action, e.human, e.job_id, e.fields) for e in seen.events] == [
    ("start", "Core alone, GPU 0", "job-1", {"gpu": 0})
], seen.events
configure(output="jsonl")
n("jsonl", "One line")
flush()
loaded = {name for name in sys.modules if name.split(".")[0] in
          ("fastapi", "starlette", "pydantic", "httpx", "uvicorn", "redis", "typer", "rich")}
print("LOADED", sorted(loaded))
"""


def _uv() -> str:
    found = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    if not Path(found).exists():
        pytest.fail("uv is not installed: `make env` installs it")
    return found


def test_the_core_imports_emits_and_captures_with_msgspec_alone(tmp_path: Path) -> None:
    venv = tmp_path / "core"
    uv = _uv()
    env = {**os.environ, "VIRTUAL_ENV": str(venv)}
    env.pop("PYTHONPATH", None)
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True, env=env)
    python = venv / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(python), f"msgspec=={msgspec.__version__}"],
        check=True,
        env=env,
        timeout=120,
    )
    result = subprocess.run(
        [str(python), "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "PYTHONPATH": str(SRC)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    event = msgspec.json.decode(lines[0])
    assert (event["action"], event["human"]) == ("jsonl", "One line")
    assert lines[1] == "LOADED []"  # no web, Redis or CLI library was imported
    installed = subprocess.run(
        [uv, "pip", "list", "--python", str(python), "--format", "freeze"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.split()
    assert [line.split("==")[0] for line in installed] == ["msgspec"]
