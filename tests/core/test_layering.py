"""The layering a newcomer can rely on: no import cycle between modules (imports run at import
time; those under `if TYPE_CHECKING:` and inside functions do not count), `testing/` uses
nothing of `services/`, the core reaches neither the server, the stores nor testing, and no
module grows past 450 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "narration"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The narration modules `path` imports when it is imported."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:  # top level only
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("narration")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.startswith("narration"):
                found.add(target)
                found |= {f"{target}.{alias.name}" for alias in node.names}
    return found


MODULES = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
GRAPH = {
    name: {target for target in _imports(path) if target in MODULES and target != name}
    for name, path in MODULES.items()
}


def test_no_import_cycle() -> None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for target in sorted(GRAPH[name]):
            # A package's __init__ importing its own submodules is how packages are made.
            if name == target.rpartition(".")[0] or target.startswith(name + "."):
                continue
            if state.get(target) == 1:
                cycle = [*stack[stack.index(target) :], target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)


def _reaches(prefix: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        if name.startswith(prefix)
        for target in targets
        if target.startswith(forbidden)
    )


def test_testing_uses_nothing_of_the_services() -> None:
    assert _reaches("narration.testing", ("narration.services",)) == []


def test_the_core_reaches_neither_server_stores_nor_testing() -> None:
    core = ("narration.emit", "narration.context", "narration.events", "narration.dispatch")
    offenders = [
        line
        for module in core
        for line in _reaches(module, ("narration.server", "narration.store", "narration.testing"))
    ]
    assert offenders == []


def test_no_module_over_450_lines() -> None:
    long = {
        name: lines
        for name, path in MODULES.items()
        if (lines := len(path.read_text().splitlines())) > 450
    }
    assert long == {}
