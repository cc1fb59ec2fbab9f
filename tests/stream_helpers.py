"""Helpers for tests that read whole SSE responses and narrate into a harness job."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from narration import n, narration_context
from narration.testing import NarrationTestHarness
from narration.testing.sse import parse_sse

Frame = dict[str, Any]


def parse_frames(body: str) -> list[Frame]:
    """The named SSE frames of a whole response body: {"event", "data" (decoded JSON), and "id"
    when the frame has one}; comments and the `retry:` preamble are left out."""
    frames: list[Frame] = []
    for sse in parse_sse(body):
        if sse.event is None:
            continue
        frame: Frame = {"event": sse.event, "data": sse.json()}
        if sse.id is not None:
            frame["id"] = sse.id
        frames.append(frame)
    return frames


async def read_stream(
    http: httpx.AsyncClient,
    job_id: str,
    headers: dict[str, str] | None = None,
    *,
    timeout: float = 10,
    **params: Any,
) -> tuple[int, list[Frame]]:
    """(status, frames) of one whole stream response, bounded by `timeout` s."""
    async with asyncio.timeout(timeout):
        response = await http.get(f"/v1/jobs/{job_id}/stream", headers=headers, params=params)
    return response.status_code, parse_frames(response.text)


def emit(harness: NarrationTestHarness, job_id: str, count: int, start: int = 0) -> None:
    with narration_context(harness.job_context(job_id)):
        for i in range(start, start + count):
            n("step", "step {}", i, i=i)
