"""Shared fixtures. Each group lives in its own module; import its fixtures here."""

from redis_server import redis_server, redis_url, store_url  # noqa: F401 - pytest fixtures
