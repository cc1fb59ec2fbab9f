"""Redaction at every output: console, JSONL and logging sinks, the SSE stream, downloads, job
listings and status, and a job's error, on both stores; `SecretStr` fields masked everywhere."""

from __future__ import annotations

import io
import json
import logging

import pytest
from pydantic import BaseModel, SecretStr

from narration import NarrationEvent, configure, flush, n, narration_context
from narration.jobs import Job, JobRegistry
from narration.sinks.console import ConsoleSink
from narration.sinks.jsonl import JsonlSink
from narration.sinks.logging import LoggingSink
from narration.testing import NarrationTestHarness
from stream_helpers import read_stream

pytestmark = pytest.mark.e2e

# Each secret below is narrated in one of the built-in forms.
SECRETS = {
    "bearer": "tok3n-bearer-value",
    "password": "hunter2-pass",
    "api_key": "sk-live-123456",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJlLXZhbHVl",
    "private_key": "MIIEpAIBAAKCAQEAsecretkeybody",
    "url_password": "db-pass-9",
    "field_token": "field-token-value",
}
TEXT = (
    f"Authorization: Bearer {SECRETS['bearer']} with password={SECRETS['password']} "
    f"api_key={SECRETS['api_key']} jwt {SECRETS['jwt']}"
)
PEM = f"-----BEGIN PRIVATE KEY-----\n{SECRETS['private_key']}\n-----END PRIVATE KEY-----"
URL = f"postgres://app:{SECRETS['url_password']}@db:5432/x"
SECRET_STR = "s3cret-str-value"


def narrate_every_kind() -> None:
    n(
        "auth",
        TEXT,
        cute=f"psst {PEM}",
        story=f"they went to {URL}",
        dsn=URL,
        token=SECRETS["field_token"],
        nested={"header": f"Bearer {SECRETS['bearer']}"},
    )


def assert_clean(text: str, extra: tuple[str, ...] = ()) -> None:
    for secret in (*SECRETS.values(), *extra):
        assert secret not in text
    assert "[REDACTED]" in text


def test_console_jsonl_and_logging_outputs_are_redacted() -> None:
    console_out, jsonl_out = io.StringIO(), io.BytesIO()
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("redacted.main")
    keep = Keep()
    logger.addHandler(keep)
    logger.setLevel(logging.INFO)
    sinks = (ConsoleSink(console_out, color=False), JsonlSink(jsonl_out), LoggingSink("redacted"))
    try:
        with narration_context(job_id="job-x", actor="main"):
            event = n(
                "auth",
                TEXT,
                cute=f"psst {PEM}",
                story=f"they went to {URL}",
                dsn=URL,
                token=SECRETS["field_token"],
            )
        assert event is not None
        assert SECRETS["password"] in event.human  # what n() returns is the event as made
        for sink in sinks:
            sink(event)
            assert sink.flush(5.0)
    finally:
        for sink in sinks:
            sink.close()
        logger.removeHandler(keep)
    assert_clean(console_out.getvalue())
    line = json.loads(jsonl_out.getvalue())
    assert_clean(json.dumps(line))
    assert line["fields"]["token"] == "[REDACTED]"
    assert line["fields"]["dsn"] == "postgres://app:[REDACTED]@db:5432/x"
    assert line["cute"] == "psst [REDACTED]" and line["story"] == f"they went to {URL}".replace(
        SECRETS["url_password"], "[REDACTED]"
    )
    assert len(records) == 1
    assert_clean(records[0].getMessage() + repr(records[0].__dict__))


def test_your_sinks_get_redacted_events() -> None:
    seen: list[NarrationEvent] = []
    configure(sinks=[seen.append])
    try:
        with narration_context(job_id="job-y"):
            narrate_every_kind()
        flush()
    finally:
        configure(sinks=[])
    assert len(seen) == 1
    assert_clean(json.dumps(seen[0].to_dict()))
    assert seen[0].fields is not None and seen[0].fields["token"] == "[REDACTED]"


jobs = JobRegistry()


class Login(BaseModel):
    """Log in with a prompt that carries secrets, and a SecretStr."""

    prompt: str
    api_token: SecretStr
    passphrase: SecretStr = SecretStr("open-sesame-42")
    fail: bool = False


@jobs.operation("login")
async def login(op: Login, job: Job) -> None:
    narrate_every_kind()
    n("echo", "prompt was {}", op.prompt)
    n("token", "using {} for {}", op.api_token.get_secret_value(), op, raw=op.api_token)
    n("phrase", "then {}", op.passphrase.get_secret_value(), phrase=op.passphrase)
    if op.fail:
        raise ConnectionError(f"could not reach {URL} with token {op.api_token.get_secret_value()}")


PROMPT = f"password={SECRETS['password']} api_key={SECRETS['api_key']}"


async def test_stream_download_listing_status_and_errors_are_redacted(store_url: str) -> None:
    async with NarrationTestHarness(jobs, store=store_url) as harness:
        body = {"prompt": PROMPT, "api_token": SECRET_STR, "passphrase": "open-sesame-42"}
        ok = await harness.submit_job("login", body)
        failed = await harness.submit_job("login", {**body, "fail": True})
        for job_id in (ok, failed):
            status, frames = await read_stream(harness.http, job_id)
            assert status == 200
            expected = (
                ["narration"] * 4 + ["done"] if job_id == ok else ["narration"] * 5 + ["error"]
            )
            assert [f["event"] for f in frames] == expected
            assert_clean(json.dumps(frames), (SECRET_STR, "open-sesame-42"))
            assert frames[0]["data"]["fields"]["token"] == "[REDACTED]"
            assert frames[3]["data"]["human"] == "then [REDACTED]"
            assert frames[3]["data"]["fields"] == {"phrase": "SecretStr('**********')"}
            assert frames[2]["data"]["human"] == (
                "using [REDACTED] for prompt='password=[REDACTED] api_key=[REDACTED]' "
                f"api_token=[REDACTED]'**********') passphrase=SecretStr('**********') "
                f"fail={job_id == failed} operation='login'"
            )
            download = await harness.http.get(f"/v1/jobs/{job_id}/events")
            assert download.status_code == 200
            assert_clean(download.text, (SECRET_STR, "open-sesame-42"))
        error = frames[-1]["data"]["error"]
        assert error == (
            "ConnectionError: could not reach postgres://app:[REDACTED]@db:5432/x "
            "with token [REDACTED]"
        )
        listing = await harness.http.get("/v1/jobs")
        status_body = await harness.http.get(f"/v1/jobs/{failed}")
        for response in (listing, status_body):
            assert response.status_code == 200
            assert_clean(response.text, (SECRET_STR, "open-sesame-42"))
        assert status_body.json()["operation"] == {
            "operation": "login",
            "prompt": "password=[REDACTED] api_key=[REDACTED]",
            "api_token": "[REDACTED]",  # its name is a sensitive one
            "passphrase": "**********",  # pydantic's mask of a SecretStr
            "fail": True,
        }
        assert status_body.json()["error"] == error
