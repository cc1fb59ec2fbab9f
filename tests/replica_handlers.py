"""The operations of server child processes in tests: `--jobs replica_handlers:jobs`.

`drip` narrates `count` numbered `drip` events (fields {"i": 1..count}), one every `every_ms`
milliseconds, then completes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, Field

from narration import n
from narration.jobs import Job, JobRegistry

jobs = JobRegistry()


class Drip(BaseModel):
    """Drip `count` events, one every `every_ms` milliseconds."""

    count: int = Field(ge=1)
    every_ms: int = Field(ge=0)


@jobs.operation("drip")
async def drip(op: Drip, job: Job) -> None:
    for i in range(1, op.count + 1):
        n("drip", "drop {} of {}", i, op.count, i=i)
        await asyncio.sleep(op.every_ms / 1000)


def drip_operation(count: int, every_ms: int) -> dict[str, Any]:
    """The request body that makes a replica drip `count` events every `every_ms` ms."""
    return {"operation": "drip", "count": count, "every_ms": every_ms}
