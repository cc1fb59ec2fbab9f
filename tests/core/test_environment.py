"""One list of environment variables: complete, read only through it, documented from it."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from narration import environment
from narration.server.settings import ServerSettings

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def test_every_server_setting_has_its_variable() -> None:
    names = {variable.name for variable in environment.VARIABLES}
    for spec in fields(ServerSettings):
        assert f"NARRATION_{spec.name.upper()}" in names


def test_a_name_not_listed_is_refused() -> None:
    with pytest.raises(KeyError, match="NARRATION_NOPE is not a narration environment"):
        environment.get("NARRATION_NOPE", {})
    assert environment.get("NARRATION_LEVEL", {"NARRATION_LEVEL": ""}) is None
    assert environment.get("NARRATION_LEVEL", {"NARRATION_LEVEL": "warn"}) == "warn"


def test_src_reads_narration_variables_only_through_the_list() -> None:
    """No module but environment.py reads `os.environ` for a NARRATION_* name by itself."""
    offenders = []
    for path in (REPO / "src" / "narration").rglob("*.py"):
        if path.name == "environment.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"environ(\.get)?\(?\[?[\"']NARRATION_", line):
                offenders.append(f"{path.relative_to(REPO)}:{number}")
    assert offenders == []


def test_the_readme_shows_exactly_the_list() -> None:
    readme = (REPO / "README.md").read_text()
    assert environment.markdown_table() in readme


def test_importing_narration_configures_nothing() -> None:
    script = (
        "import narration\n"
        "from narration.dispatch import dispatcher\n"
        "from narration.events import LEVEL_RANK, Level\n"
        "assert dispatcher.sinks == (), dispatcher.sinks\n"
        "assert dispatcher.min_rank == LEVEL_RANK[Level.INFO]\n"
        "narration.configure_from_env()\n"
        "assert len(dispatcher.sinks) == 1 and dispatcher.min_rank == LEVEL_RANK[Level.WARN]\n"
    )
    env = {"NARRATION_CONSOLE": "1", "NARRATION_LEVEL": "warn", "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
