"""The supported Python versions are stated once each in pyproject.toml and the Makefile, and
agree: requires-python's floor, the classifiers, the versions `make test-matrix` runs, and the
version mypy and ruff check against (the oldest, so nothing newer slips in)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _matrix() -> list[str]:
    """3.11 (`make test`'s interpreter) plus the Makefile's MATRIX."""
    found = re.search(r"^MATRIX := (.+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert found, "the Makefile defines MATRIX"
    return ["3.11", *found.group(1).split()]


def test_classifiers_list_exactly_the_versions_the_matrix_runs() -> None:
    classifiers = _pyproject()["project"]["classifiers"]
    prefix = "Programming Language :: Python :: 3."
    listed = ["3." + c.removeprefix(prefix) for c in classifiers if c.startswith(prefix)]
    assert listed == _matrix()
    assert "Programming Language :: Python :: 3 :: Only" in classifiers


def test_the_floor_is_checked_by_mypy_and_ruff() -> None:
    project = _pyproject()
    assert project["project"]["requires-python"] == ">=3.11"
    assert project["tool"]["mypy"]["python_version"] == "3.11"
    assert project["tool"]["ruff"]["target-version"] == "py311"
