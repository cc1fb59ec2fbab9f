"""A W3C Trace Context test service built from narration's public pieces only.

The shape the W3C trace-context test harness expects: `POST /test` with a JSON list of
`{"url": ..., "arguments": [...]}`; for each item the service POSTs `arguments` to `url`, one
after the other, then answers 200. Incoming ids are read by `NarrationMiddleware`, outgoing
ones written by `narration.propagation.async_client()`; nothing else touches the headers.

Run it by hand for the official suite: `python tests/tracecontext_service.py 5000`.
"""

from __future__ import annotations

import sys
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from narration.propagation import NarrationMiddleware, async_client

__all__ = ["create_service"]


async def _test(request: Request) -> JSONResponse:
    calls: Any = await request.json()
    async with async_client(timeout=10) as http:
        for call in calls if isinstance(calls, list) else [calls]:
            await http.post(call["url"], json=call.get("arguments") or [])
    return JSONResponse({})


def create_service() -> Starlette:
    """The test service: one route, one narration middleware."""
    app = Starlette(routes=[Route("/test", _test, methods=["POST"])])
    app.add_middleware(NarrationMiddleware)
    return app


if __name__ == "__main__":
    import uvicorn

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    uvicorn.run(create_service(), host="127.0.0.1", port=port, log_level="warning")
