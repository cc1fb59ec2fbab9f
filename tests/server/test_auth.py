"""Who may see and stop a job, over real HTTP: API keys and scopes, tenants, stream tokens,
the Host allow-list, and a server that will not serve openly beyond loopback."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from auth_helpers import ADMIN, ALICE, ALICE_BOT, BOB, READER, SPECS, make_key
from narration import n, narration_context
from narration._process import ServiceProcess, free_port, service_env
from narration.client import JobClient
from narration.server import create_app, make_server
from narration.services.hive import create_hive_app
from narration.services.queen import create_queen_app
from narration.testing import NarrationTestHarness
from stream_helpers import parse_frames

pytestmark = pytest.mark.e2e

UNKNOWN = "job-00000000-0000-4000-8000-000000000000"
REPO = Path(__file__).resolve().parents[2]


def _error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def _client(harness: NarrationTestHarness, key: object = None) -> httpx.AsyncClient:
    headers = getattr(key, "headers", None)
    return httpx.AsyncClient(base_url=harness.base_url, headers=headers, timeout=10.0)


async def test_without_a_token_every_endpoint_but_health_answers_401() -> None:
    async with NarrationTestHarness(api_keys=SPECS, token=ADMIN.key) as harness:
        job_id = await harness.submit_job("held")
        requests = [
            ("POST", "/v1/jobs", {"json": {"operation": "held"}}),
            ("GET", "/v1/jobs", {}),
            ("GET", f"/v1/jobs/{job_id}", {}),
            ("GET", f"/v1/jobs/{UNKNOWN}", {}),  # 401 before any lookup: nothing leaks
            ("GET", f"/v1/jobs/{job_id}/stream", {}),
            ("DELETE", f"/v1/jobs/{job_id}", {}),
            ("GET", "/v1/operations", {}),
            ("GET", "/metrics", {}),
        ]
        wrong = {"Authorization": "Bearer nrk_not-a-key-of-this-server"}
        async with _client(harness) as anonymous:
            for method, path, options in requests:
                for headers in ({}, wrong, {"Authorization": "Basic cm9vdDpyb290"}):
                    response = await anonymous.request(method, path, headers=headers, **options)
                    assert _error(response) == (401, "unauthorized"), (method, path, headers)
                    assert response.headers["www-authenticate"] == 'Bearer realm="narration"'
                    assert response.headers["x-correlation-id"]
            health = await anonymous.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "ok" and health.json()["auth"] == "on"
        state = (await harness.http.get(f"/v1/jobs/{job_id}")).json()["state"]
        assert state == "running"  # the DELETE without a key cancelled nothing
        assert [job["job_id"] for job in (await harness.http.get("/v1/jobs")).json()] == [job_id]


async def test_a_read_token_cannot_submit_or_cancel() -> None:
    async with NarrationTestHarness(api_keys=SPECS) as harness:
        async with _client(harness, BOB) as bob, _client(harness, READER) as reader:
            job_id = (await bob.post("/v1/jobs", json={"operation": "held"})).json()["job_id"]
            submitted = await reader.post("/v1/jobs", json={"operation": "held"})
            assert _error(submitted) == (403, "forbidden")
            assert submitted.json()["error"]["message"] == (
                "this credential lacks the 'submit' scope"
            )
            cancelled = await reader.delete(f"/v1/jobs/{job_id}")
            assert _error(cancelled) == (403, "forbidden")
            listed = await reader.get("/v1/jobs")
            got = await reader.get(f"/v1/jobs/{job_id}")
            async with reader.stream("GET", f"/v1/jobs/{job_id}/stream") as stream:
                stream_status = stream.status_code
            assert (await bob.get(f"/v1/jobs/{job_id}")).json()["state"] == "running"
        assert [job["job_id"] for job in listed.json()] == [job_id]
        assert got.status_code == 200 and got.json()["state"] == "running"
        assert stream_status == 200
        assert len(harness.state.jobs.live) == 1  # the refused submit made no job


async def test_tenants_see_only_their_own_jobs_and_admin_sees_all() -> None:
    async with (
        NarrationTestHarness(api_keys=SPECS) as harness,
        _client(harness, ALICE) as alice,
        _client(harness, ALICE_BOT) as alice_bot,
        _client(harness, BOB) as bob,
        _client(harness, ADMIN) as admin,
    ):
        a = (await alice.post("/v1/jobs", json={"operation": "held"})).json()["job_id"]
        b = (await bob.post("/v1/jobs", json={"operation": "held"})).json()["job_id"]

        async def ids(client: httpx.AsyncClient) -> list[str]:
            return [job["job_id"] for job in (await client.get("/v1/jobs")).json()]

        assert await ids(alice) == [a]
        assert await ids(alice_bot) == [a]  # the same tenant (acme), another principal
        assert await ids(bob) == [b]
        assert await ids(admin) == [b, a]
        unknown = await alice.get(f"/v1/jobs/{UNKNOWN}")
        for response in (
            await alice.get(f"/v1/jobs/{b}"),
            await alice.delete(f"/v1/jobs/{b}"),
            await alice.get(f"/v1/jobs/{b}/stream"),
            await alice_bot.get(f"/v1/jobs/{b}"),
        ):
            assert _error(response) == (404, "unknown_job")  # as if it did not exist
            assert response.json()["error"]["message"] == (f"no job {b} here (unknown, or expired)")
        assert _error(unknown) == (404, "unknown_job")
        assert (await bob.get(f"/v1/jobs/{b}")).json()["state"] == "running"
        assert (await admin.get(f"/v1/jobs/{a}")).status_code == 200
        cancelled = await bob.delete(f"/v1/jobs/{b}")
        assert cancelled.json() == {"job_id": b, "state": "cancelled"}
        assert (await admin.delete(f"/v1/jobs/{a}")).json()["state"] == "cancelled"
    records = {record.job_id: record.tenant for record in await harness.state.store.list(None, 10)}
    assert records == {a: "acme", b: "globex"}


async def test_a_stream_token_reads_its_own_job_only_until_it_expires() -> None:
    async with (
        NarrationTestHarness(api_keys=SPECS, stream_token_ttl_s=1) as harness,
        _client(harness, ALICE) as alice,
        _client(harness) as anonymous,
    ):
        first = (await alice.post("/v1/jobs", json={"operation": "held"})).json()
        other = (await alice.post("/v1/jobs", json={"operation": "held"})).json()
        issued = time.monotonic()
        url = first["sse_url"]
        assert url.startswith(f"/v1/jobs/{first['job_id']}/stream?token=")
        token = url.split("token=", 1)[1]
        with narration_context(harness.job_context(first["job_id"])):
            n("step", "one")
            n("step", "two")
        await harness.complete_job(first["job_id"])
        read = await anonymous.get(url)  # no Authorization: the token alone
        resumed = await anonymous.get(url, headers={"Last-Event-ID": "1"})
        for response in (
            await anonymous.get(f"/v1/jobs/{other['job_id']}/stream?token={token}"),
            await anonymous.get(f"/v1/jobs/{first['job_id']}?token={token}"),
            await anonymous.delete(f"/v1/jobs/{other['job_id']}?token={token}"),
            await anonymous.get(f"/v1/jobs?token={token}"),
        ):
            assert response.status_code == 401, response.request.url
        wrong_job = await anonymous.get(f"/v1/jobs/{other['job_id']}/stream?token={token}")
        forged = await anonymous.get(url[:-2] + ("AA" if not url.endswith("AA") else "BB"))
        fresh = (await alice.get(f"/v1/jobs/{other['job_id']}")).json()["sse_url"]
        async with anonymous.stream("GET", fresh) as live:
            live_status = live.status_code
        expired = None
        for _ in range(50):  # bounded: tokens are checked to the second (about 2 s)
            response = await anonymous.get(url)
            if response.status_code == 401:
                expired = response
                break
            await asyncio.sleep(0.1)
        waited = time.monotonic() - issued
    frames = parse_frames(read.text)
    assert read.status_code == 200
    assert [frame["event"] for frame in frames] == ["narration", "narration", "done"]
    assert [frame["event"] for frame in parse_frames(resumed.text)] == ["narration", "done"]
    assert _error(wrong_job) == (401, "invalid_token")
    assert wrong_job.json()["error"]["message"] == "this stream token is for another job"
    assert _error(forged) == (401, "invalid_token")
    assert live_status == 200  # GET /v1/jobs/{id} hands a `read` caller a fresh token
    assert expired is not None and _error(expired) == (401, "token_expired")
    assert waited >= 1.0


async def test_the_token_is_left_out_of_the_access_log() -> None:
    lines: list[str] = []
    collect = logging.Handler()
    collect.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    access = logging.getLogger("uvicorn.access")
    level = access.level
    async with NarrationTestHarness(api_keys=SPECS) as harness:
        assert harness._server is not None
        harness._server.config.access_log = True
        access.addHandler(collect)
        access.setLevel(logging.INFO)
        try:
            async with _client(harness, ALICE) as alice, _client(harness) as anonymous:
                submitted = (await alice.post("/v1/jobs", json={"operation": "held"})).json()
                await harness.complete_job(submitted["job_id"])
                assert (await anonymous.get(submitted["sse_url"])).status_code == 200
        finally:
            access.removeHandler(collect)
            access.setLevel(level)
    token = submitted["sse_url"].split("token=", 1)[1]
    stream_lines = [line for line in lines if f"/v1/jobs/{submitted['job_id']}/stream" in line]
    assert len(stream_lines) == 1 and "/stream?token=*** HTTP/1.1" in stream_lines[0]
    assert all(token not in line for line in lines)


async def test_a_rebound_host_header_gets_400() -> None:
    async with NarrationTestHarness() as harness:  # loopback, no keys: auth off
        port = harness.base_url.rsplit(":", 1)[1]
        async with _client(harness) as http:
            for path in ("/v1/jobs", "/health", "/ui/", f"/v1/jobs/{UNKNOWN}/stream"):
                refused = await http.get(path, headers={"Host": "attacker-rebound.example"})
                assert _error(refused) == (400, "invalid_host"), path
                assert refused.headers["x-correlation-id"]
            for host in (f"localhost:{port}", f"127.0.0.1:{port}", "[::1]", "localhost"):
                assert (await http.get("/v1/jobs", headers={"Host": host})).status_code == 200
    options = {"allowed_hosts": ("jobs.example.com", "*.internal.example")}
    async with NarrationTestHarness(**options) as harness, _client(harness) as http:
        for host, status in (
            ("jobs.example.com", 200),
            ("a.internal.example:8443", 200),
            ("localhost", 400),
            ("example.com", 400),
        ):
            assert (await http.get("/health", headers={"Host": host})).status_code == status


def test_without_auth_a_server_refuses_a_bind_beyond_loopback() -> None:
    with pytest.raises(ValueError, match=r"refusing to serve on 0\.0\.0\.0 without authentication"):
        make_server(create_app(), "0.0.0.0", 0)
    told = make_server(create_app(no_auth=True), "0.0.0.0", 0)  # built, never started
    assert told.auth_warning is not None and "authentication is OFF (--no-auth)" in (
        told.auth_warning
    )
    keyed = make_server(create_app(api_keys=SPECS), "0.0.0.0", 0)
    assert keyed.auth_warning is None
    local = make_server(create_app(), "127.0.0.1", 0)
    assert local.auth_warning is not None and "answers only on loopback" in local.auth_warning
    with pytest.raises(ValueError, match="contradict"):
        create_app(no_auth=True, api_keys=SPECS)


def test_the_cli_refuses_to_serve_openly_beyond_loopback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "narration.cli", "serve", "--host", "0.0.0.0", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        env=service_env({"NO_COLOR": "1", "COLUMNS": "300"}),
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "refusing to serve on 0.0.0.0 without authentication" in result.stdout


async def test_the_cli_announces_that_auth_is_off_on_loopback() -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "narration.cli", "serve", "--port", str(port), "--quiet"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=service_env({"NO_COLOR": "1"}),
    )
    try:
        assert process.stderr is not None
        lines = [
            (await asyncio.wait_for(process.stderr.readline(), 30)).decode().strip()
            for _ in range(3)
        ]
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
    assert lines[0] == f"narration: serving on http://127.0.0.1:{port} (Ctrl-C stops)"
    assert lines[2].startswith("narration: WARNING: authentication is OFF: no API keys")


async def test_the_queen_authenticates_to_its_hive_like_any_client() -> None:
    queen_key = make_key("queen", "submit+read+cancel")
    hive = NarrationTestHarness(app=create_hive_app("h1", api_keys=(queen_key.spec,)))
    async with hive:
        queen_app = create_queen_app(
            {"h1": hive.base_url}, hive_token=queen_key.key, api_keys=(ALICE.spec,)
        )
        anonymous_queen = create_queen_app({"h1": hive.base_url}, api_keys=(ALICE.spec,))
        async with (
            NarrationTestHarness(app=queen_app, token=ALICE.key) as queen,
            NarrationTestHarness(app=anonymous_queen, token=ALICE.key) as keyless,
        ):
            _, done = await queen.client.run({"operation": "worker_list", "hive_id": "h1"})
            _, refused = await keyless.client.run({"operation": "worker_list", "hive_id": "h1"})
            async with JobClient(hive.base_url, token=queen_key.key) as as_queen:
                on_hive = await as_queen.list_jobs()
    assert done.state == "completed", done
    assert refused.state == "failed"
    assert refused.error == (
        "HiveFailedError: hive h1 refused worker_list (HTTP 401): send your API key in the "
        "Authorization header (see WWW-Authenticate) (the queen sends its key in "
        "NARRATION_HIVE_TOKEN)"
    )
    assert [job["operation"]["operation"] for job in on_hive] == ["worker_list"]


def test_the_cli_makes_keys_and_sends_them_from_narration_token() -> None:
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "narration.cli",
            "keys",
            "new",
            "--name",
            "ci",
            "--scopes",
            "submit,read",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=service_env(),
        check=False,
    )
    assert made.returncode == 0, made.stderr
    lines = dict(
        line.split(":  ", 1) if line.startswith("key") else line.split(": ", 1)
        for line in made.stdout.splitlines()
    )
    key, spec = lines["key"], lines["spec"]
    assert spec.startswith("ci:submit+read:") and key not in spec
    env = {"PYTHONPATH": str(REPO), "NARRATION_API_KEYS": spec}
    server = ServiceProcess("keyed", ["serve", "--quiet"], env=env).start()
    try:
        server.wait_healthy(30.0)

        def narration(*args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
            extra = {"NO_COLOR": "1", "COLUMNS": "300"}
            if token is not None:
                extra["NARRATION_TOKEN"] = token
            return subprocess.run(
                [sys.executable, "-m", "narration.cli", *args, "--url", server.url],
                capture_output=True,
                text=True,
                timeout=60,
                env=service_env(extra),
                check=False,
            )

        refused = narration("jobs")
        submitted = narration("submit", "status", token=key)
        listed = narration("jobs", token=key)
    finally:
        server.stop()
        server.remove_log()
    assert refused.returncode == 1
    assert "set NARRATION_TOKEN to an API key of that server" in refused.stdout
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    assert listed.returncode == 0 and "status" in listed.stdout and "completed" in listed.stdout
