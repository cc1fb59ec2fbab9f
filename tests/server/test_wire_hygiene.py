"""Wire hygiene over real HTTP: JSON errors with a correlation id everywhere (the HTTP parser's
included), true `Allow` headers, no redirects built from the Host header, one terminal for
every stream, line separators escaped, and events that cannot be encoded still streamed."""

from __future__ import annotations

import asyncio

import httpx
import msgspec
import pytest

from narration import n, narration_context
from narration.testing import NarrationTestHarness
from stream_helpers import parse_frames

pytestmark = pytest.mark.e2e


def _error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


async def test_json_nested_too_deep_is_a_400_not_a_500(
    narration_harness: NarrationTestHarness,
) -> None:
    """Before: 1,000 nested `[` answered 500 RecursionError with a traceback per request."""
    response = await narration_harness.http.post(
        "/v1/jobs", content=b"[" * 1000, headers={"Content-Type": "application/json"}
    )
    assert _error(response) == (400, "invalid_json")
    assert response.headers["x-correlation-id"]
    assert "Recursion" not in response.text


async def test_a_trailing_slash_is_a_404_not_a_redirect_to_the_host_header(
    narration_harness: NarrationTestHarness,
) -> None:
    """Before: `GET /v1/jobs/{id}/` answered 307 to http://<Host header>/v1/jobs/{id}."""
    job_id = await narration_harness.submit_job("held")
    for path in (f"/v1/jobs/{job_id}/", "/v1/jobs/"):
        response = await narration_harness.http.get(path, headers={"Host": "localhost"})
        assert _error(response) == (404, "not_found"), path
        assert "location" not in response.headers
    root = await narration_harness.http.get("/", headers={"Host": "localhost"})
    assert root.status_code == 307 and root.headers["location"] == "/ui/"  # a path only


async def test_allow_lists_every_method_of_the_path(
    narration_harness: NarrationTestHarness,
) -> None:
    """Before: `OPTIONS /v1/jobs` answered `Allow: POST` where GET works too."""
    job_id = await narration_harness.submit_job("held")
    http = narration_harness.http
    for method, path, allowed in (
        ("OPTIONS", "/v1/jobs", "GET, POST"),
        ("PUT", "/v1/jobs", "GET, POST"),
        ("POST", f"/v1/jobs/{job_id}", "DELETE, GET"),
        ("PATCH", "/health", "GET"),
        ("POST", f"/v1/jobs/{job_id}/stream", "GET"),
    ):
        response = await http.request(method, path)
        assert _error(response) == (405, "method_not_allowed"), (method, path)
        assert response.headers["allow"] == allowed, (method, path)
        assert response.headers["x-correlation-id"]
        for listed in allowed.split(", "):  # each one listed is answered
            answer = await http.request(listed, path)
            assert answer.status_code != 405, (listed, path)


async def test_the_http_parsers_errors_are_json_with_a_correlation_id(
    narration_harness: NarrationTestHarness,
) -> None:
    """Before: a request the parser rejects got a plain-text 400 without X-Correlation-Id."""
    port = int(narration_harness.base_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    raw = await asyncio.wait_for(reader.read(), 10)  # the server answers, then closes
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert lines[0] == "HTTP/1.1 400 Bad Request"
    assert headers["content-type"] == "application/json"
    assert headers["x-correlation-id"]
    assert msgspec.json.decode(body) == {
        "error": {"code": "invalid_http", "message": "the request is not valid HTTP/1.1"}
    }


async def test_a_cursor_past_the_end_is_refused_and_every_stream_ends_with_one_terminal(
    narration_harness: NarrationTestHarness,
) -> None:
    """Before: a cursor past the end of a running job ended, once the job was cancelled,
    without any terminal event."""
    harness = narration_harness
    job_id = await harness.submit_job("held")
    with narration_context(harness.job_context(job_id)):
        for i in range(5):
            n("step", "step {}", i)
    http = harness.http
    past = await http.get(f"/v1/jobs/{job_id}/stream", params={"after": 999})
    assert _error(past) == (400, "invalid_cursor")
    assert past.json()["error"]["message"] == "no event 999 yet: the job has 5 event(s) so far"
    assert past.headers["x-correlation-id"]
    resumed = asyncio.create_task(
        http.get(f"/v1/jobs/{job_id}/stream", headers={"Last-Event-ID": "5"})
    )
    await harness.state.streams.wait_for_open(1)
    assert (await http.delete(f"/v1/jobs/{job_id}")).json()["state"] == "cancelled"
    frames = parse_frames((await resumed).text)
    assert [(frame["event"], frame["id"]) for frame in frames] == [("cancelled", "6")]
    after_end = await http.get(f"/v1/jobs/{job_id}/stream", params={"after": 6})
    assert after_end.status_code == 204


async def test_line_separators_are_escaped_in_frames(
    narration_harness: NarrationTestHarness,
) -> None:
    """Before: U+2028, U+2029 and U+0085 went out raw: a client splitting lines the way
    `str.splitlines` does saw fake events."""
    harness = narration_harness
    job_id = await harness.submit_job("held")
    text = "one\u2028event: done\u2029two\u0085three"
    with narration_context(harness.job_context(job_id)):
        n("note", "a note", text=text)
    await harness.fail_job(job_id, "broke\u2028event: done")
    body = (await harness.http.get(f"/v1/jobs/{job_id}/stream")).content
    for raw in ("\u2028", "\u2029", "\u0085"):
        assert raw.encode() not in body
    assert b"\\u2028" in body and b"\\u2029" in body and b"\\u0085" in body
    decoded = body.decode()
    assert decoded.splitlines() == decoded.split("\n")[: len(decoded.splitlines())]
    frames = parse_frames(decoded)
    assert [frame["event"] for frame in frames] == ["narration", "error"]
    assert frames[0]["data"]["fields"]["text"] == text  # the same value, escaped on the wire
    assert frames[1]["data"]["error"] == "broke\u2028event: done"


async def test_a_context_string_that_utf8_cannot_hold_still_streams_to_the_terminal(
    narration_harness: NarrationTestHarness,
) -> None:
    """Before: a context string with a lone surrogate made the log's reader raise, and the
    job's stream never reached its terminal."""
    harness = narration_harness
    job_id = await harness.submit_job("held")
    with (
        narration_context(harness.job_context(job_id)),
        narration_context(correlation_id="c-\ud800"),
    ):
        n("odd", "an odd correlation id", i=1)
    with narration_context(harness.job_context(job_id)):
        n("after", "the next event")
    await harness.complete_job(job_id)
    stream = harness.get_sse_stream(job_id)
    events = await stream.collect_until_done()
    assert [(event.id, event.action) for event in events] == [(1, "odd"), (2, "after")]
    assert events[0].correlation_id == "c-"  # cleaned like a message when the context is made
    assert events[0].fields == {"i": 1}
    assert stream.terminal is not None and stream.terminal.state == "completed"
