"""Shared fixtures. Each group lives in its own module; import its fixtures here."""

from collections.abc import Iterator

import pytest

from narration.dispatch import dispatcher
from otel_helpers import otel  # noqa: F401 - pytest fixture
from redis_server import redis_cluster, redis_server, redis_url, store_url  # noqa: F401
from redis_stores import raw  # noqa: F401


@pytest.fixture
def restore_level() -> Iterator[None]:
    """Put the global level threshold back as it was, whatever the test configured."""
    saved = dispatcher.min_rank
    try:
        yield
    finally:
        dispatcher.min_rank = saved


pytest_plugins = ["pytester"]
