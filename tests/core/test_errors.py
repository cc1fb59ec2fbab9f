"""Every exception narration raises on purpose descends from `NarrationError`, named `...Error`."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import narration
from narration.errors import JobError, NarrationError

pytestmark = pytest.mark.unit


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(narration.__path__, "narration."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                not name.startswith("_")  # private control-flow signals never reach callers
                and inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__.startswith("narration")
            ):
                found[f"{value.__module__}.{name}"] = value
    return found


def test_every_exception_class_is_a_narration_error_named_error() -> None:
    classes = _exception_classes()
    assert len(classes) >= 15
    for where, cls in classes.items():
        assert issubclass(cls, NarrationError), where
        assert cls.__name__.endswith("Error"), where


def test_the_tree_keeps_the_builtin_bases_callers_rely_on() -> None:
    from narration.jobs import (
        IllegalTransitionError,
        JobFinishedError,
        NotAcceptingError,
        OperationError,
        RegistryError,
        UnknownJobError,
    )

    assert issubclass(UnknownJobError, LookupError) and issubclass(UnknownJobError, JobError)
    assert issubclass(OperationError, ValueError) and issubclass(RegistryError, TypeError)
    for cls in (JobFinishedError, NotAcceptingError, IllegalTransitionError):
        assert issubclass(cls, JobError)
