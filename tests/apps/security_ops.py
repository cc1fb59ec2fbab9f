"""Operations for the security and limits tests, served by real child processes.

`blob` narrates `count` events each carrying a fresh `size`-character field; `slow_repr`
narrates one event whose field takes `seconds` to repr, then one more; `hold` runs until
cancelled. Serve them with `narration serve --jobs tests.apps.security_ops:jobs`.
"""

from __future__ import annotations

import asyncio
import time

from pydantic import BaseModel, Field

from narration import n
from narration.jobs import JobRegistry

jobs = JobRegistry()


class Blob(BaseModel):
    """Narrate `count` events, each with a new `size`-character field `data`."""

    count: int = Field(ge=1, le=10_000)
    size: int = Field(ge=1, le=4_000_000)


class SlowRepr(BaseModel):
    """Narrate an event whose field takes `seconds` to repr, then one plain event."""

    seconds: float = Field(ge=0, le=10)


class Hold(BaseModel):
    """Run until cancelled (or the server stops)."""


class Sluggish:
    """A value whose repr takes a while (what a careless __repr__ does)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __repr__(self) -> str:
        time.sleep(self.seconds)
        return "Sluggish()"


@jobs.operation()
async def blob(operation: Blob) -> None:
    for i in range(operation.count):
        n("blob", "blob {}", i, data="x" * operation.size)


@jobs.operation()
async def slow_repr(operation: SlowRepr) -> None:
    n("slow", "a field with a slow repr", value=Sluggish(operation.seconds))
    n("after", "the event after it")


@jobs.operation()
async def hold(operation: Hold) -> None:
    n("holding", "holding until cancelled")
    await asyncio.Event().wait()
