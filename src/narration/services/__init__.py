"""Reference services: the queen -> hive -> worker topology, narrated end to end.

- `create_queen_app(hives)`: the entry point; forwards work to hives and relays their streams.
- `create_hive_app(hive_id)`: runs the stand-in worker as a child process under capture.
- `python -m narration.services.worker`: the stand-in inference engine (no real model).
- `ServiceProcess`, `free_port`: start a service as its own OS process and wait for it (they
  live in `narration._process`, shared with the tests and benchmarks).

Imports are lazy, so running the worker does not load the HTTP stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ServiceProcess", "create_hive_app", "create_queen_app", "free_port"]

if TYPE_CHECKING:
    from .._process import ServiceProcess, free_port
    from .hive import create_hive_app
    from .queen import create_queen_app

_WHERE = {
    "create_queen_app": ".queen",
    "create_hive_app": ".hive",
    "ServiceProcess": ".._process",
    "free_port": ".._process",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module, __name__), name)
