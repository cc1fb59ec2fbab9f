"""The bridge to stdlib logging, both ways: records become events, events become records."""

from __future__ import annotations

import logging
from _thread import get_ident
from collections.abc import Sequence
from typing import Any

from .. import lost_context
from ..context import EMPTY, current_context
from ..dispatch import dispatcher
from ..events import LEVEL_RANK, Level, NarrationEvent, timestamp
from ..sanitize import clean_action, clean_text
from ._writer import QueuedSink

__all__ = ["LoggingSink", "NarrationHandler"]

_TO_LOGGING = {
    Level.TRACE: 5,
    Level.DEBUG: logging.DEBUG,
    Level.INFO: logging.INFO,
    Level.WARN: logging.WARNING,
    Level.ERROR: logging.ERROR,
    Level.FATAL: logging.CRITICAL,
}


def _from_logging(levelno: int) -> Level:
    if levelno >= logging.CRITICAL:
        return Level.FATAL
    if levelno >= logging.ERROR:
        return Level.ERROR
    if levelno >= logging.WARNING:
        return Level.WARN
    if levelno >= logging.INFO:
        return Level.INFO
    return Level.DEBUG if levelno >= logging.DEBUG else Level.TRACE


class NarrationHandler(logging.Handler):
    """A logging handler that turns records into narration events with the current context.

    The action is the record's `narration_action` extra, else its function name; the actor is
    the logger's top-level name. Records of `narration.*` loggers are skipped (no loops).
    """

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "narration" or record.name.startswith("narration."):
            return
        level = _from_logging(record.levelno)
        if LEVEL_RANK[level] < dispatcher.min_rank:  # the narration threshold applies here too
            return
        try:
            ctx = current_context()
            if ctx is EMPTY and dispatcher.routes and get_ident() != lost_context.main_ident:
                lost_context.note()  # maybe a plain thread inside a job
            message = clean_text(record.getMessage())
            action, invalid = clean_action(
                str(getattr(record, "narration_action", record.funcName))
            )
            fields: dict[str, Any] = {"logger": record.name}
            if invalid:
                fields["invalid_action"] = True
            if record.exc_info and record.exc_info[1] is not None:
                fields["exception"] = repr(record.exc_info[1])
            if ctx.fields:
                fields = {**ctx.fields, **fields}
            event = NarrationEvent(
                ts=timestamp(record.created),
                level=level,
                actor=ctx.actor or record.name.partition(".")[0] or "root",
                action=action,
                human=message,
                job_id=ctx.job_id,
                correlation_id=ctx.correlation_id,
                trace_id=ctx.trace_id,
                span_id=ctx.span_id,
                fn_name=f"{record.module}.{record.funcName}",
                fields=fields,
            )
            dispatcher.deliver(event)
        except Exception:
            self.handleError(record)


class LoggingSink(QueuedSink):
    """Sends events to `logging.getLogger("narration.<actor>")`, ids and fields in `extra`.

    Handlers may do I/O, so records are made on a background thread, never on the emit path.
    """

    thread_name = "narration-logging"

    def __init__(self, prefix: str = "narration") -> None:
        self.prefix = prefix
        super().__init__()

    def _write(self, batch: Sequence[NarrationEvent]) -> None:
        for event in batch:
            logger = logging.getLogger(f"{self.prefix}.{event.actor}")
            levelno = _TO_LOGGING[event.level]
            if not logger.isEnabledFor(levelno):
                continue
            extra = {
                "narration_action": event.action,
                "job_id": event.job_id,
                "correlation_id": event.correlation_id,
                "trace_id": event.trace_id,
                "span_id": event.span_id,
                "narration_fields": dict(event.fields or {}),
            }
            logger.log(levelno, "%s", event.human, extra=extra)

    def _report_drop(self, count: int) -> None:
        logging.getLogger(self.prefix).warning(
            "narration: logging fell behind, %d events not logged", count
        )
