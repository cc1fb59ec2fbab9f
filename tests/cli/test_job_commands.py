"""The `narration` command with operations of your own: serve them, submit any of them, list,
inspect and cancel jobs, and the errors a user meets on the way (each a real child process)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from narration._process import ServiceProcess, free_port, service_env
from narration.client import JobClient, Terminal
from narration.events import NarrationEvent

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
ENV = service_env({"PYTHONPATH": str(REPO), "NO_COLOR": "1", "COLUMNS": "200"})
UNKNOWN = "job-00000000-0000-4000-8000-000000000000"


def narration(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "narration.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        env=ENV,
        check=False,
    )


@pytest.fixture(scope="module")
def server() -> Iterator[ServiceProcess]:
    with ServiceProcess(
        "reports", ["serve", "--jobs", "tests.apps.embedded:jobs", "--quiet"], env=ENV
    ).running() as service:
        yield service


def test_operations_lists_yours_with_their_fields(server: ServiceProcess) -> None:
    result = narration("operations", "--url", server.url)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "status  Report that the server is up and how many jobs it runs."
    assert "build_report  Render a report of `pages` pages." in lines
    assert "  fields: report_id, pages?" in lines
    assert "  fields: count, width?" in lines


def test_submit_types_set_values_by_the_servers_schema(server: ServiceProcess) -> None:
    result = narration(
        "submit", "build_report", "--set", "report_id=007", "--set", "pages=2", "--url", server.url
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("▶ build_report: job job-")
    assert [line[13:].split(None, 2)[2] for line in lines[1:5]] == [
        "Building report 007",  # report_id is text: "007" stays as written
        "Rendering page 1 of 2",  # pages is an integer: read as JSON
        "Rendering page 2 of 2",
        "Report 007 is ready",
    ]
    assert lines[-1].startswith("✔ done (job-")


def test_submit_reads_fields_as_json_from_stdin(server: ServiceProcess) -> None:
    result = narration(
        "submit",
        "resize_images",
        "--json",
        "-",
        "--url",
        server.url,
        stdin=json.dumps({"count": 2, "width": 100}),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Resized 2 images" in result.stdout


def test_jobs_status_and_cancel(server: ServiceProcess) -> None:
    done = narration("submit", "build_report", "--set", "report_id=r-9", "--url", server.url)
    job_id = done.stdout.splitlines()[0].split()[3].rstrip(",")
    listed = narration("jobs", "--url", server.url)
    assert listed.returncode == 0 and job_id in listed.stdout
    row = next(line for line in listed.stdout.splitlines() if job_id in line)
    assert row.split()[1:3] == ["build_report", "completed"]
    status = narration("status", job_id, "--url", server.url)
    assert status.returncode == 0
    info = json.loads(status.stdout)
    assert (info["job_id"], info["state"], info["events"]) == (job_id, "completed", 5)
    again = narration("cancel", job_id, "--url", server.url)
    assert again.returncode == 1
    assert again.stdout.startswith(f"✖ {job_id} had already finished: ")


def test_logs_saves_a_jobs_events_as_ndjson(server: ServiceProcess, tmp_path: Path) -> None:
    done = narration(
        "submit", "build_report", "--set", "report_id=r-7", "--set", "pages=2", "--url", server.url
    )
    job_id = done.stdout.splitlines()[0].split()[3].rstrip(",")
    out = tmp_path / "r-7.ndjson"
    saved = narration("logs", job_id, "-o", str(out), "--url", server.url)
    assert saved.returncode == 0, saved.stdout + saved.stderr
    assert saved.stdout.strip() == f"saved {job_id} to {out} ({out.stat().st_size:,} bytes)"
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["id"] for line in lines] == [1, 2, 3, 4, 5]
    assert [line.get("action", line.get("event")) for line in lines] == [
        "start", "render", "render", "built", "done",
    ]  # fmt: skip
    assert httpx.get(f"{server.url}/v1/jobs/{job_id}/events").content == out.read_bytes()
    only = narration("logs", job_id, "--action", "render", "--grep", "PAGE 2", "--url", server.url)
    assert only.returncode == 0
    assert [json.loads(line)["id"] for line in only.stdout.splitlines()] == [3, 5]
    missing = tmp_path / "missing.ndjson"
    unknown = narration("logs", UNKNOWN, "-o", str(missing), "--url", server.url)
    assert unknown.returncode == 1 and unknown.stdout.startswith(f"✖ no such job: {UNKNOWN}")
    assert list(tmp_path.iterdir()) == [out]  # nothing half-written is left behind


def test_a_job_that_does_not_exist_is_no_such_job(server: ServiceProcess) -> None:
    for command in ("status", "cancel", "tail", "logs"):
        result = narration(command, UNKNOWN, "--url", server.url)
        assert result.returncode == 1, command
        assert result.stdout.startswith(f"✖ no such job: {UNKNOWN}"), result.stdout


def test_a_url_without_a_scheme_fails_at_once_with_a_hint() -> None:
    for command in (["jobs"], ["status", UNKNOWN], ["submit", "status"], ["tail", UNKNOWN]):
        result = narration(*command, "--url", "localhost:7833")
        assert result.returncode == 2, command
        assert result.stdout.strip() == (
            "✖ 'localhost:7833' is not an http(s) URL; did you mean http://localhost:7833?"
        )


def test_an_html_error_page_is_cut_short_with_a_hint(tmp_path: Path) -> None:
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=ENV,
    )
    try:
        assert web.stdout is not None
        web.stdout.readline()  # "Serving HTTP on 127.0.0.1 port ..." once it listens
        result = narration("jobs", "--url", f"http://127.0.0.1:{port}")
    finally:
        web.terminate()
        web.wait(10)
    assert result.returncode == 1
    out = result.stdout.strip()
    assert out.startswith("✖ HTTP 404 http_404: File not found: the server answered with an HTML")
    assert out.endswith(
        f"(is http://127.0.0.1:{port}/v1/jobs the right URL, path prefix included?)"
    )
    assert "<html" not in out.lower() and len(out) < 300


SCRIPT = """
from tests.apps.embedded import jobs
from narration.server import create_app, serve

serve(create_app(jobs, shutdown_grace_s=0.5), port={port})
print("serve returned", flush=True)
"""


async def test_ctrl_c_on_a_script_calling_serve_ends_jobs_and_returns(tmp_path: Path) -> None:
    port = free_port()
    script = tmp_path / "service.py"
    script.write_text(SCRIPT.format(port=port), encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=ENV,
        cwd=REPO,
    )
    try:
        assert process.stderr is not None and process.stdout is not None
        announced = (await asyncio.wait_for(process.stderr.readline(), 30)).decode().strip()
        assert announced == f"narration: serving on http://127.0.0.1:{port} (Ctrl-C stops)"
        async with JobClient(f"http://127.0.0.1:{port}") as client:
            submitted = await client.submit("wait_for_stop")
            terminal: Terminal | None = None
            beats = 0
            async for item in client.stream(submitted.job_id):
                if isinstance(item, NarrationEvent):
                    beats += 1
                    if beats == 2:
                        process.send_signal(signal.SIGINT)  # what Ctrl-C sends
                else:
                    terminal = item
        assert terminal is not None and (terminal.state, terminal.error) == (
            "cancelled",
            "server stopped",
        )
        out, err = await asyncio.wait_for(process.communicate(), 15)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err
    assert out == b"serve returned\n"
    assert b"Traceback" not in err and b"KeyboardInterrupt" not in err, err
