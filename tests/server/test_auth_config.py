"""API key specs, constant-time lookup, the auth policy without keys, the Host allow-list, the
stream token signer and the access-log redaction, each on its own."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from starlette.requests import Request

from narration.server.auth import ANONYMOUS, ApiKeys, AuthPolicy, hash_key, new_key
from narration.server.errors import ApiError
from narration.server.hosts import host_allowed
from narration.server.ratelimit import parse_rate
from narration.server.tokens import RedactTokens, StreamTokens, redact_tokens

pytestmark = pytest.mark.unit


def _request(local: str) -> Request:
    return Request({"type": "http", "headers": [], "server": (local, 7833), "method": "GET"})


def test_key_specs_parse_into_principals_and_keys_match_their_hash_only() -> None:
    alice, bob = new_key(), new_key()
    keys = ApiKeys([f"alice:submit+read:{hash_key(alice)}", f"bob:admin:{hash_key(bob)}:ops"])
    first, second = keys.check(alice), keys.check(bob)
    assert first is not None and (first.name, first.tenant) == ("alice", "alice")
    assert first.scopes == frozenset({"submit", "read"})
    assert first.allows("read") and not first.allows("cancel") and not first.is_admin
    assert second is not None and second.tenant == "ops" and second.allows("cancel")
    assert keys.check(alice + "x") is None and keys.check("") is None
    assert alice.startswith("nrk_") and len(alice) > 40 and alice != bob


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("alice:read", "is not name:scopes:sha256hex[:tenant]"),
        ("alice:read+fly:" + "0" * 64, "unknown: fly"),
        ("alice::" + "0" * 64, "scopes are submit+read+cancel+admin"),
        ("al ice:read:" + "0" * 64, "name and tenant are 1-64"),
        ("alice:read:1234", "the hash is 64 hex digits"),
    ],
)
def test_bad_key_specs_are_refused_without_echoing_the_hash(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match="API key spec") as raised:
        ApiKeys([spec])
    assert message in str(raised.value)
    assert "0" * 64 not in str(raised.value)


def test_keys_come_from_a_file_with_comments(tmp_path: Path) -> None:
    key = new_key()
    path = tmp_path / "keys"
    path.write_text(f"# the CI bot\nci:submit+read:{hash_key(key)}  # rotated monthly\n\n")
    keys = ApiKeys.from_settings((), str(path))
    assert keys is not None and len(keys) == 1 and keys.check(key) is not None
    assert ApiKeys.from_settings((), None) is None
    with pytest.raises(ValueError, match="cannot read the API keys file"):
        ApiKeys.from_settings((), str(tmp_path / "missing"))


async def test_without_keys_only_loopback_is_served_unless_auth_is_off() -> None:
    auto, off = AuthPolicy(None), AuthPolicy(None, off=True)
    assert await auto.principal(_request("127.0.0.1")) is ANONYMOUS
    assert await auto.principal(_request("::1")) is ANONYMOUS
    with pytest.raises(ApiError) as refused:
        await auto.principal(_request("192.0.2.10"))
    assert (refused.value.status, refused.value.code) == (401, "auth_not_configured")
    assert await off.principal(_request("192.0.2.10")) is ANONYMOUS
    assert not auto.enabled and not off.enabled


def test_the_host_allow_list() -> None:
    loopback = "127.0.0.1"
    assert host_allowed("localhost:7833", (), loopback)
    assert host_allowed("127.0.0.5", (), loopback) and host_allowed("[::1]:80", (), loopback)
    assert not host_allowed("attacker-rebound.example", (), loopback)
    assert not host_allowed("localhost.attacker.example", (), loopback)
    assert host_allowed("anything.example", (), "192.0.2.10")  # beyond loopback: auth is on
    allowed = ("jobs.example.com", "*.corp.example")
    assert host_allowed("JOBS.example.com:443", allowed, loopback)
    assert host_allowed("a.b.corp.example", allowed, loopback)
    assert not host_allowed("corp.example.evil", allowed, loopback)
    assert not host_allowed(None, allowed, loopback)
    assert host_allowed("whatever", ("*",), loopback)


def test_stream_tokens_are_signed_per_job_and_per_secret() -> None:
    tokens = StreamTokens("s3cret", ttl_s=60)
    token = tokens.issue("job-a")
    tokens.check(token, "job-a")
    for job, signer in (("job-b", tokens), ("job-a", StreamTokens("other", ttl_s=60))):
        with pytest.raises(ApiError) as refused:
            signer.check(token, job)
        assert (refused.value.status, refused.value.code) == (401, "invalid_token")
    with pytest.raises(ValueError, match="must be > 0"):
        StreamTokens(ttl_s=0)


def test_tokens_are_redacted_from_log_records() -> None:
    line = '127.0.0.1:5 - "GET /v1/jobs/j/stream?after=3&token=abc.def-ghi HTTP/1.1" 200'
    assert redact_tokens(line) == line.replace("abc.def-ghi", "***")
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, "%s %s", ("x", line), None)
    assert RedactTokens().filter(record) and "abc.def-ghi" not in record.getMessage()


def test_rates_parse_or_say_what_is_wrong() -> None:
    assert [str(item) for item in parse_rate("5/second;100/minute")] == [
        "5 per 1 second",
        "100 per 1 minute",
    ]
    assert parse_rate("off") == [] and parse_rate(None) == []
    with pytest.raises(ValueError, match="is not a rate"):
        parse_rate("lots")
