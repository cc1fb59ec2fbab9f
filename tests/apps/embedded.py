"""A host FastAPI app with its own routes and narration mounted under `/narration`.

Two operations of its own: `build_report` (async) and `resize_images` (a plain `def`, run in a
worker thread inside the job's context). `wait_for_stop` runs until cancelled or stopped, to
test shutdown. Run it as `uvicorn tests.apps.embedded:app` (the tests do, in a child process).
"""

from __future__ import annotations

import asyncio
import time

from fastapi import FastAPI
from pydantic import BaseModel, Field

from narration import n
from narration.jobs import Job, JobRegistry
from narration.propagation import NarrationMiddleware
from narration.server import mount_narration

jobs = JobRegistry()


class BuildReport(BaseModel):
    """Render a report of `pages` pages."""

    report_id: str
    pages: int = Field(default=3, ge=1, le=1000)


class ResizeImages(BaseModel):
    """Resize `count` images to `width` pixels (in a worker thread)."""

    count: int = Field(ge=1, le=100)
    width: int = 640


class WaitForStop(BaseModel):
    """Narrate a heartbeat every 50 ms until the job is cancelled or the server stops."""


@jobs.operation("build_report", examples=[{"report_id": "r-42", "pages": 2}])
async def build_report(op: BuildReport, job: Job) -> None:
    n("start", "Building report {}", op.report_id, report_id=op.report_id)
    for page in range(1, op.pages + 1):
        n("render", "Rendering page {} of {}", page, op.pages, page=page)
        await asyncio.sleep(0)
    n("built", "Report {} is ready", op.report_id)


@jobs.operation("resize_images")
def resize_images(op: ResizeImages, job: Job) -> None:
    for index in range(1, op.count + 1):
        n("resize", "Resized image {} of {} to {} px", index, op.count, op.width, image=index)
    n("resized", "Resized {} images", op.count)


@jobs.operation("wait_for_stop")
async def wait_for_stop(op: WaitForStop, job: Job) -> None:
    beat = 0
    while True:
        beat += 1
        n("heartbeat", "Still here ({})", beat, beat=beat)
        await asyncio.sleep(0.05)


app = FastAPI(title="reports service")
app.add_middleware(NarrationMiddleware)  # the host's own layer: one correlation id per request
narration = mount_narration(app, jobs, prefix="/narration", shutdown_grace_s=1.0)


@app.get("/hello")
async def hello() -> dict[str, object]:
    """A route of the host's own."""
    return {"hello": "world", "at": time.time()}
