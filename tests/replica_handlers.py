"""Handlers for server child processes in tests: `--handlers replica_handlers:HANDLERS`.

`infer` drips events: its prompt is "<count> <interval_ms>", e.g. "300 5" narrates `drip`
events with fields {"i": 1..300}, one every 5 ms, then completes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from narration import n


async def drip(operation: Any, job: Any) -> None:
    count, every_ms = (int(part) for part in operation.prompt.split())
    for i in range(1, count + 1):
        n("drip", "drop {} of {}", i, count, i=i)
        await asyncio.sleep(every_ms / 1000)


HANDLERS = {"infer": drip}


def drip_operation(count: int, every_ms: int) -> dict[str, Any]:
    """The operation body that makes a replica drip `count` events every `every_ms` ms."""
    return {"operation": "infer", "hive_id": "h", "model": "m", "prompt": f"{count} {every_ms}"}
