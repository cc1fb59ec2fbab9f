"""`JobClient`: submit operations to a narration server and watch their jobs live over SSE.

    async with JobClient("http://127.0.0.1:7833", correlation_id="req-42") as client:
        submitted = await client.submit(Operation.hive_list())
        async for item in client.stream(submitted.job_id):
            match item:
                case NarrationEvent():
                    print(item.id, item.human)
                case Gap(missed=missed):
                    print(f"({missed} events were dropped by the server)")
                case Terminal(state=state, error=error):
                    print("finished:", state, error)

`stream()` survives dropped connections: it reconnects with `Last-Event-ID` (bounded retries,
exponential backoff), skips anything it has already yielded and stops after exactly one
`Terminal`. With several base URLs, a URL that refuses connections is skipped for the next.
Every failure surfaces as `JobClientError` (HTTP errors carry the server's `code`/`message`).
Wire formats and endpoints: docs/ARCHITECTURE.md sections 3 and 4.

Inside: `job_client.py` (the API), `stream.py` (the reconnect loop), `failover.py` (base
URLs), `decode.py` (event payloads), `models.py` (results), `errors.py`, `body.py`.
"""

from __future__ import annotations

from .._backoff import backoff_delay
from .body import operation_body
from .errors import JobClientError
from .job_client import JobClient
from .models import Gap, StreamItem, Submitted, Terminal

__all__ = [
    "Gap",
    "JobClient",
    "JobClientError",
    "StreamItem",
    "Submitted",
    "Terminal",
    "backoff_delay",
    "operation_body",
]
