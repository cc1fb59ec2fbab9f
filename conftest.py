"""Pytest set-up shared by the tests and the documentation's code blocks (README.md, docs/).

The code blocks run in the test process (pytest-markdown-docs); whatever output they configure
is put back afterwards, so one example's console or level cannot leak into the next test.
"""

from collections.abc import Iterator

import pytest

from narration import configure, redact
from narration.dispatch import dispatcher


@pytest.fixture(autouse=True)
def _narration_output_restored() -> Iterator[None]:
    level, sinks, redactor = dispatcher.min_rank, dispatcher.sinks, redact._redactor
    try:
        yield
    finally:
        if dispatcher.min_rank != level or dispatcher.sinks != sinks:
            configure(level="info", console=False, output="none", sinks=[])
            dispatcher.min_rank = level
        redact._redactor = redactor  # redaction rules changed by an example or a test
