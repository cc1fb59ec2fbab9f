"""`GET /v1/jobs`: the query a request asks for, and one page of live and archived jobs.

Pages are newest first; a page that may be followed by more carries the next page's cursor
(`X-Next-Cursor`, and a `Link: <…>; rel="next"` header). A selective filter over a big archive
may answer a short (even empty) page with a cursor: follow it until there is none.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..ids import valid_correlation_id
from ..jobs import JobState
from ..store.base import StoreUnavailableError
from ..store.query import JobPage, JobQuery, decode_cursor, encode_cursor, merge_pages
from .errors import ApiError

if TYPE_CHECKING:
    from .app import ServerState

__all__ = ["list_page", "parse_query", "parse_time"]

MAX_LIMIT = 1000


def parse_query(
    state: str | None,
    limit: int,
    correlation_id: str | None,
    operation: str | None,
    since: str | None,
    until: str | None,
    cursor: str | None,
) -> JobQuery:
    """The listing's query; a 422 `ApiError` naming the parameter for a bad value."""
    if state is not None and state not in JobState.__members__.values():
        valid = ", ".join(s.value for s in JobState)
        raise ApiError(422, "invalid_state", f"unknown state {state!r}; valid: {valid}")
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(422, "invalid_limit", f"limit must be between 1 and {MAX_LIMIT}")
    if correlation_id is not None and valid_correlation_id(correlation_id) is None:
        raise ApiError(
            422, "invalid_correlation_id", "a correlation id is 1-128 of [A-Za-z0-9._:-]"
        )
    operation = operation or None  # an empty query value means "not given", as for the rest
    if operation is not None and len(operation) > 64:
        raise ApiError(422, "invalid_operation", "an operation name is 1-64 characters")
    try:
        before = decode_cursor(cursor) if cursor else None
    except ValueError as exc:
        raise ApiError(422, "invalid_cursor", str(exc)) from None
    return JobQuery(
        state=state,
        correlation_id=correlation_id,
        operation=operation,
        since=_time("since", since),
        until=_time("until", until),
        before=before,
        limit=limit,
    )


def parse_time(text: str) -> float:
    """Unix seconds from a number, or an ISO 8601 date or time (UTC unless it says)."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _time(name: str, text: str | None) -> float | None:
    if text is None or text == "":
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise ApiError(
            422, f"invalid_{name}", f"{name} must be Unix seconds or an ISO 8601 time"
        ) from None


async def list_page(state: ServerState, query: JobQuery) -> tuple[list[dict[str, Any]], str | None]:
    """(job summaries, the next page's cursor or None): live jobs and archived ones merged."""
    pages = [await state.store.query(query)]
    live = {record.job_id for record in pages[0].records}
    if state.archive is not None:
        try:
            pages.append(await asyncio.to_thread(state.archive.query, query))
        except OSError as exc:
            raise StoreUnavailableError(f"the archive cannot be read: {exc}") from exc
    page: JobPage = merge_pages(pages, query.limit)
    summaries: list[dict[str, Any]] = []
    for record in page.records:
        if record.job_id in live:
            log = await state.store.log(record.job_id)
            summaries.append(record.summary(log.count() if log else 0))
        else:
            events = page.events.get(record.job_id, 0)
            summaries.append({**record.summary(events), "archived": True})
    return summaries, encode_cursor(page.stop) if page.stop is not None else None
