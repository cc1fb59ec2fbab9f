"""Where events go besides their job's log: the terminal, JSONL, stdlib logging, callables.

Every sink here writes on a background thread of its own (`QueuedSink`), never on `n()`'s.
"""

from ._writer import QueuedSink
from .background import BackgroundSink
from .console import ConsoleSink
from .jsonl import JsonlSink
from .logging import LoggingSink, NarrationHandler

__all__ = [
    "BackgroundSink",
    "ConsoleSink",
    "JsonlSink",
    "LoggingSink",
    "NarrationHandler",
    "QueuedSink",
]
