"""Where events go besides their job's log: the terminal, JSONL, and stdlib logging."""

from .console import ConsoleSink
from .jsonl import JsonlSink
from .logging import LoggingSink, NarrationHandler

__all__ = ["ConsoleSink", "JsonlSink", "LoggingSink", "NarrationHandler"]
