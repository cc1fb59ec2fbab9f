"""Redaction: every built-in kind, field names and values, your own rules, job secrets, and
linear time on hostile input."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, SecretBytes, SecretStr

from narration import NarrationEvent, Redaction, configure, n, narration_context
from narration.redact import (
    MARKER,
    Redactor,
    drop_job_secrets,
    hold_job_secrets,
    redact_event,
    redact_text,
    redact_value,
    secret_values,
)

pytestmark = pytest.mark.unit

R = Redactor()

# (text, what must be gone, what it reads after)
KINDS = [
    pytest.param(
        "Using header Authorization: Bearer eyJhbGc.abc-123_x",
        "eyJhbGc.abc-123_x",
        "Using header Authorization: Bearer [REDACTED]",
        id="authorization-bearer",
    ),
    pytest.param(
        "calling with bearer abcDEF123/+=",
        "abcDEF123",
        "calling with bearer [REDACTED]",
        id="bearer",
    ),
    pytest.param(
        "password=hunter2 api_key=sk-live-123",
        "hunter2",
        "password=[REDACTED] api_key=[REDACTED]",
        id="password-and-api-key",
    ),
    pytest.param("token: abc.def ok", "abc.def", "token: [REDACTED] ok", id="token-colon"),
    pytest.param(
        "DB_PASSWORD='two words' rest", "two words", "DB_PASSWORD='[REDACTED]' rest", id="quoted"
    ),
    pytest.param(
        '{"client_secret": "s\\"3", "n": 1}',
        's\\"3',
        '{"client_secret": "[REDACTED]", "n": 1}',
        id="json-pair",
    ),
    pytest.param(
        "x-api-key=K1 accessToken=T1",
        "T1",
        "x-api-key=[REDACTED] accessToken=[REDACTED]",
        id="keys",
    ),
    pytest.param(
        "GET /cb?code=1&token=abc&next=2",
        "abc",
        "GET /cb?code=1&token=[REDACTED]&next=2",
        id="query-token",
    ),
    pytest.param(
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl end",
        "eyJzdWIiOiIxMjM0In0",
        "jwt [REDACTED] end",
        id="jwt",
    ),
    pytest.param(
        "key: -----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n-----END RSA PRIVATE KEY----- done",
        "MIIEow",
        "key: [REDACTED] done",
        id="private-key",
    ),
    pytest.param(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk (cut",
        "b3BlbnNzaC1rZXk",
        "[REDACTED]",
        id="private-key-cut-short",
    ),
    pytest.param(
        "connect redis://:p@ss@cache:6379/0 and postgres://app:pw1@db/x",
        "p@ss",
        "connect redis://:[REDACTED]@cache:6379/0 and postgres://app:[REDACTED]@db/x",
        id="url-passwords",
    ),
    pytest.param(
        "pushed with ghp_" + "A1b2" * 9, "A1b2A1b2", "pushed with [REDACTED]", id="github-token"
    ),
    pytest.param("id AKIAIOSFODNN7EXAMPLE", "IOSFODNN7", "id [REDACTED]", id="aws-key-id"),
]


@pytest.mark.parametrize(("text", "secret", "expected"), KINDS)
def test_each_kind_is_redacted_from_text(text: str, secret: str, expected: str) -> None:
    out = R.text(text)
    assert secret not in out
    assert out == expected


@pytest.mark.parametrize(
    "text",
    [
        "Spawning worker on GPU 3",
        "max_tokens=500 tokens: 3 input_tokens=7",
        "time 12:30, password reset requested",
        "see https://example.com/a@b and user@example.com",
        "eyJ alone, and a.b.c",
        "keyboard=us monkey: 3",
    ],
)
def test_clean_text_is_left_as_it_is_the_same_object(text: str) -> None:
    assert R.text(text) is text


def test_field_values_and_names() -> None:
    fields = {
        "password": 12345,
        "db_password": "x",
        "Api-Key": "k",
        "session": {"id": 3},
        "header": "Bearer abc",
        "nested": {"url": "amqp://u:pw@mq/", "items": ["token=t1", 3, ("secret: s",)]},
        "count": 3,
        "maybe": None,
        "password_hint": "cat name",
    }
    out = R.fields(fields)
    assert out == {
        "password": MARKER,
        "db_password": MARKER,
        "Api-Key": MARKER,
        "session": MARKER,
        "header": "Bearer [REDACTED]",
        "nested": {
            "url": "amqp://u:[REDACTED]@mq/",
            "items": ["token=[REDACTED]", 3, ["secret: [REDACTED]"]],
        },
        "count": 3,
        "maybe": None,
        "password_hint": "cat name",  # a name that merely starts with a keyword is kept
    }
    clean = {"count": 3, "host": "box-1"}
    assert R.fields(clean) is clean


def test_values_held_through_their_repr_or_as_objects_are_redacted_too() -> None:
    @dataclasses.dataclass
    class Conn:
        dsn: str

    class Handle:
        def __repr__(self) -> str:
            return "Handle(postgres://app:pw1@db/x)"

    out = R.fields({"conn": Conn("redis://:s3@h"), "handle": Handle(), "n": 1})
    assert out == {
        "conn": {"dsn": "redis://:[REDACTED]@h"},
        "handle": "Handle(postgres://app:[REDACTED]@db/x)",
        "n": 1,
    }


def test_events_are_copied_only_when_something_was_redacted() -> None:
    with narration_context(job_id="job-1"):
        clean = n("step", "Step {}", 1, page=1)
        dirty = n("auth", "Login with password=pw", cute="psst token=t", story="bearer xyz")
    assert clean is not None and dirty is not None
    assert redact_event(clean) is clean
    out = redact_event(dirty)
    assert (out.human, out.cute, out.story) == (
        "Login with password=[REDACTED]",
        "psst token=[REDACTED]",
        "bearer [REDACTED]",
    )
    assert dirty.human == "Login with password=pw"  # n() returned the event as it was made
    assert out.id == dirty.id and out.ts == dirty.ts and out.job_id == dirty.job_id


@pytest.fixture
def restore_redaction() -> Iterator[None]:
    try:
        yield
    finally:
        configure(redact=True)


@pytest.mark.usefixtures("restore_redaction")
def test_your_patterns_and_field_names_join_the_defaults() -> None:
    configure(redact=Redaction(patterns=[r"acct-\d{6}", r"pin (?P<secret>\d{4})"], fields=["ssn"]))
    assert redact_text("acct-123456 with pin 1234, password=x") == (
        "[REDACTED] with pin [REDACTED], password=[REDACTED]"
    )
    assert redact_value({"SSN": "1", "ssn_hint": "2", "token": "t"}) == {
        "SSN": MARKER,
        "ssn_hint": "2",
        "token": MARKER,
    }
    configure(redact=Redaction(patterns=[r"acct-\d{6}"], defaults=False, marker="***"))
    assert redact_text("acct-123456 password=x") == "*** password=x"


@pytest.mark.usefixtures("restore_redaction")
def test_off_leaves_text_but_still_masks_job_secrets() -> None:
    configure(redact=False)
    hold_job_secrets("job-off", ["opensesame"])
    try:
        assert redact_text("password=x opensesame") == "password=x opensesame"
        assert redact_text("password=x opensesame", "job-off") == "password=x [REDACTED]"
    finally:
        drop_job_secrets("job-off")
    with pytest.raises(TypeError, match="redact must be True, False or a Redaction"):
        configure(redact="yes")  # type: ignore[arg-type]


def test_secret_values_of_a_model_are_found_however_deep() -> None:
    class Inner(BaseModel):
        key: SecretBytes

    class Op(BaseModel):
        token: SecretStr
        inner: Inner
        more: list[SecretStr]
        plain: str = "visible"

    op = Op(token="t0ken-1", inner=Inner(key=b"k3y-two"), more=[SecretStr("third-one")])
    assert sorted(secret_values(op)) == ["k3y-two", "t0ken-1", "third-one"]


def test_job_secrets_mask_that_job_only_and_short_ones_are_not_held() -> None:
    hold_job_secrets("job-a", ["hunter22", "abc"])
    try:
        with narration_context(job_id="job-a"):
            mine = n("x", "pw is hunter22 and abc", note="hunter22!")
        with narration_context(job_id="job-b"):
            other = n("x", "pw is hunter22")
        assert mine is not None and other is not None
        out = redact_event(mine)
        assert out.human == "pw is [REDACTED] and abc"
        assert out.fields == {"note": "[REDACTED]!"}
        assert redact_event(other).human == "pw is hunter22"
    finally:
        drop_job_secrets("job-a")
    assert redact_event(mine).human == "pw is hunter22 and abc"


# ------------------------------------------------------------------ hostile input

ADVERSARIAL = {
    "letters": "a" * 100_000,
    "jwt-heads": "eyJ" * 33_334,
    "jwt-segments": "eyJa." * 20_000,
    "keywords": "password" * 12_500,
    "keyword-spaces": ("password" + " " * 42) * 2_000,
    "keyword-quotes": 'password="' * 10_000,
    "bearers": "bearer " * 14_286,
    "bearer-spaces": "bearer" + " " * 99_994,
    "schemes": "a://" * 25_000,
    "url-users": "a://b:" * 16_667,
    "url-ats": "a://b:" + "c@" * 50_000,
    "key-headers": "-----BEGIN PRIVATE KEY-----" * 3_704,
    "dotted-keys": "a." * 50_000,
    "token-equals": "token= " * 14_286,
    "camel": "aToken" * 16_667,
    "ghp": "ghp_" * 25_000,
}


def _best_of_three(text: str) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        R.text(text)
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_hostile_100kb_strings_are_redacted_in_linear_time(name: str) -> None:
    text = ADVERSARIAL[name]
    assert 99_000 <= len(text) <= 101_000
    small = _best_of_three(text)
    large = _best_of_three(text * 4)
    # Quadratic backtracking takes minutes on 100 KB and 16x as long on 4x the input; linear
    # takes milliseconds and ~4x. The margins are wide for a shared machine.
    assert small < 1.0, f"{name}: {small:.3f} s for 100 KB"
    assert large < max(10 * small, 0.05), f"{name}: {small:.4f} s -> {large:.4f} s for 4x"


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60)
_SECRET = st.text(
    "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789", min_size=12, max_size=30
)
_FORMATS = [
    "password={}",
    "api_key: {}",
    "Authorization: Bearer {}",
    'secret="{}"',
    "https://user:{}@host/",
    "eyJ{}.eyJ{}.{}",
]


@settings(max_examples=300, deadline=None)
@given(before=_TEXT, after=_TEXT, secret=_SECRET, form=st.sampled_from(_FORMATS))
def test_a_secret_in_any_surrounding_text_never_survives(
    before: str, after: str, secret: str, form: str
) -> None:
    text = f"{before} {form.format(secret, secret, secret)} {after}"
    out = R.text(text)
    assert secret not in out.replace(before, "").replace(after, "")
    assert R.text(out) == out  # redacting again changes nothing


def test_an_event_with_every_kind_leaves_nothing(restore_level: None) -> None:
    event = NarrationEvent(
        ts=1.0,
        level="info",  # type: ignore[arg-type]
        actor="a",
        action="b",
        human=" ".join(str(p.values[0]) for p in KINDS),
        fields={f"f{i}": str(p.values[0]) for i, p in enumerate(KINDS)},
    )
    out = redact_event(event)
    for param in KINDS:
        secret = str(param.values[1])
        assert secret not in out.human
        assert all(secret not in str(value) for value in (out.fields or {}).values())
