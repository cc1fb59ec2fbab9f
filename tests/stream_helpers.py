"""Helpers for tests that read whole SSE responses and narrate into a harness job."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from narration import n, narration_context
from narration.testing import NarrationTestHarness

Frame = dict[str, Any]


def parse_frames(body: str) -> list[Frame]:
    """SSE frames of a whole response body: {"id", "event", "data"} (comments dropped)."""
    frames: list[Frame] = []
    for block in body.split("\n\n"):
        frame: Frame = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            key, _, value = line.partition(": ")
            frame[key] = value
        if "event" in frame:
            frame["data"] = json.loads(frame["data"])
            frames.append(frame)
    return frames


async def read_stream(
    http: httpx.AsyncClient, job_id: str, headers: dict[str, str] | None = None, **params: Any
) -> tuple[int, list[Frame]]:
    """(status, frames) of one whole stream response, bounded by a 10 s timeout."""
    async with asyncio.timeout(10):
        response = await http.get(f"/v1/jobs/{job_id}/stream", headers=headers, params=params)
    return response.status_code, parse_frames(response.text)


def emit(harness: NarrationTestHarness, job_id: str, count: int, start: int = 0) -> None:
    with narration_context(harness.job_context(job_id)):
        for i in range(start, start + count):
            n("step", "step {}", i, i=i)
