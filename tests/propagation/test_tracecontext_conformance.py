"""W3C Trace Context Level 2, rule by rule, through a real service over real sockets.

The service (tests/tracecontext_service.py) is `NarrationMiddleware` plus
`narration.propagation.async_client()`; a recorder server stands for the next hop. Each case
sends headers to the service, which calls the recorder once or more, and checks what arrived.
Examples are the spec's own (`4bf92f35...`, `00f067aa...`, `congo=t61rcWkgMzE`, `rojo=...`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from narration.server import make_server
from tracecontext_service import create_service

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TP = f"00-{TRACE}-{PARENT}"
TRACEPARENT_RE = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
Headers = list[tuple[str, str]]
# One service and one recorder for the whole module, on one event loop.
pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@dataclass
class Hop:
    """What one outgoing request of the service carried."""

    trace_id: str
    parent_id: str
    flags: str
    tracestate: list[str]  # the header fields, as sent

    @property
    def members(self) -> list[tuple[str, str]]:
        joined = ",".join(self.tracestate)
        return [tuple(m.split("=", 1)) for m in joined.split(",") if m]  # type: ignore[misc]


class Conformance:
    """The service and the recorder it calls, both served on 127.0.0.1."""

    def __init__(self, service_url: str, recorder_url: str, seen: dict[str, Headers]) -> None:
        self.service_url, self.recorder_url, self.seen = service_url, recorder_url, seen
        self._calls = 0

    async def send(self, headers: Headers, calls: int = 1) -> list[Hop]:
        """Send `headers` to the service, have it call the recorder `calls` times."""
        keys = []
        for _ in range(calls):
            self._calls += 1
            keys.append(str(self._calls))
        body = [{"url": f"{self.recorder_url}/hop/{key}", "arguments": []} for key in keys]
        status = await asyncio.wait_for(self._post(json.dumps(body).encode(), headers), 10)
        assert status == 200
        return [self._hop(self.seen.pop(key)) for key in keys]

    async def _post(self, body: bytes, headers: Headers) -> int:
        """POST over a plain socket: httpx refuses header values with surrounding whitespace,
        which is exactly what some cases send."""
        host, port = self.service_url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        lines = [
            "POST /test HTTP/1.1",
            f"Host: {host}:{port}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            "Connection: close",
            *(f"{name}: {value}" for name, value in headers),
        ]
        writer.write("\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body)
        await writer.drain()
        response = await reader.read()
        writer.close()
        await writer.wait_closed()
        return int(response.split(b" ", 2)[1])

    async def one(self, headers: Headers) -> Hop:
        [hop] = await self.send(headers)
        return hop

    @staticmethod
    def _hop(headers: Headers) -> Hop:
        parents = [v for k, v in headers if k == "traceparent"]
        assert len(parents) == 1, parents
        match = TRACEPARENT_RE.fullmatch(parents[0])
        assert match is not None, parents[0]
        trace_id, parent_id, flags = match.groups()
        assert trace_id != "0" * 32 and parent_id != "0" * 16
        return Hop(trace_id, parent_id, flags, [v for k, v in headers if k == "tracestate"])


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def w3c() -> AsyncIterator[Conformance]:
    seen: dict[str, Headers] = {}

    async def hop(request: Request) -> JSONResponse:
        seen[request.path_params["key"]] = [
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
        ]
        return JSONResponse(None)

    recorder = make_server(Starlette(routes=[Route("/hop/{key}", hop, methods=["POST"])]), port=0)
    service = make_server(create_service(), port=0)
    tasks = [await recorder.start(), await service.start()]
    try:
        yield Conformance(
            f"http://127.0.0.1:{service.port}", f"http://127.0.0.1:{recorder.port}", seen
        )
    finally:
        recorder.should_exit = service.should_exit = True
        await asyncio.wait_for(asyncio.gather(*tasks), 10)


# --- traceparent ------------------------------------------------------------------------------

CONTINUED = {
    "spec-example-sampled": ([("traceparent", f"{TP}-01")], "01"),
    "spec-example-not-sampled": ([("traceparent", f"{TP}-00")], "00"),
    "random": ([("traceparent", f"{TP}-02")], "02"),
    "random-and-sampled": ([("traceparent", f"{TP}-03")], "03"),
    "reserved-flags-zeroed": ([("traceparent", f"{TP}-ff")], "03"),
    "only-reserved-flag": ([("traceparent", f"{TP}-04")], "00"),
    "name-mixed-case": ([("TraceParent", f"{TP}-01")], "01"),
    "name-upper-case": ([("TRACEPARENT", f"{TP}-01")], "01"),
    "leading-ows": ([("traceparent", f" \t{TP}-01")], "01"),
    "trailing-ows": ([("traceparent", f"{TP}-01 \t")], "01"),
    "future-version": ([("traceparent", f"cc-{TRACE}-{PARENT}-01")], "01"),
    "future-version-more-fields": ([("traceparent", f"cc-{TRACE}-{PARENT}-03-what-next")], "03"),
}


@pytest.mark.parametrize(("headers", "flags"), CONTINUED.values(), ids=CONTINUED.keys())
async def test_a_valid_traceparent_is_continued_with_a_new_parent_id(
    w3c: Conformance, headers: Headers, flags: str
) -> None:
    hop = await w3c.one(headers)
    assert (hop.trace_id, hop.flags) == (TRACE, flags)  # version downgraded to 00 by the regex
    assert hop.parent_id != PARENT


RESTARTED = {
    "missing": [],
    "wrong-name-dash": [("trace-parent", f"{TP}-01")],
    "wrong-name-dot": [("trace.parent", f"{TP}-01")],
    "duplicated": [("traceparent", f"{TP}-01"), ("traceparent", f"00-{'1' * 32}-{PARENT}-01")],
    "version-ff": [("traceparent", f"ff-{TRACE}-{PARENT}-01")],
    "version-too-short": [("traceparent", f"0-{TRACE}-{PARENT}-01")],
    "version-too-long": [("traceparent", f"000-{TRACE}-{PARENT}-01")],
    "version-illegal": [("traceparent", f".0-{TRACE}-{PARENT}-01")],
    "version-uppercase": [("traceparent", f"0A-{TRACE}-{PARENT}-01")],
    "version-00-more-fields": [("traceparent", f"{TP}-01-what-next")],
    "version-00-trailing-dot": [("traceparent", f"{TP}-01.")],
    "future-version-bad-delimiter": [("traceparent", f"cc-{TRACE}-{PARENT}-01.what-next")],
    "trace-id-zero": [("traceparent", f"00-{'0' * 32}-{PARENT}-01")],
    "trace-id-uppercase": [("traceparent", f"00-{TRACE.upper()}-{PARENT}-01")],
    "trace-id-short": [("traceparent", f"00-{TRACE[:31]}-{PARENT}-01")],
    "trace-id-long": [("traceparent", f"00-{TRACE}0-{PARENT}-01")],
    "trace-id-illegal": [("traceparent", f"00-.{TRACE[1:]}-{PARENT}-01")],
    "parent-id-zero": [("traceparent", f"00-{TRACE}-{'0' * 16}-01")],
    "parent-id-short": [("traceparent", f"00-{TRACE}-{PARENT[:15]}-01")],
    "parent-id-long": [("traceparent", f"00-{TRACE}-{PARENT}0-01")],
    "parent-id-illegal": [("traceparent", f"00-{TRACE}-{PARENT[:15]}.-01")],
    "flags-short": [("traceparent", f"{TP}-1")],
    "flags-long": [("traceparent", f"{TP}-001")],
    "flags-illegal": [("traceparent", f"{TP}-0.")],
}


@pytest.mark.parametrize("headers", RESTARTED.values(), ids=RESTARTED.keys())
async def test_a_missing_or_invalid_traceparent_starts_a_random_sampled_trace(
    w3c: Conformance, headers: Headers
) -> None:
    hop = await w3c.one([*headers, ("tracestate", "congo=t61rcWkgMzE")])
    assert hop.trace_id not in (TRACE, "1" * 32)
    assert hop.flags == "03"  # sampled (narration records everything) and random
    assert hop.tracestate == []  # a restarted trace does not carry the old vendor state


@pytest.mark.parametrize(
    "headers", [[], [("traceparent", f"{TP}-01")], [("traceparent", f"00-{'0' * 32}-{PARENT}-01")]]
)
async def test_every_outgoing_request_has_its_own_parent_id(
    w3c: Conformance, headers: Headers
) -> None:
    hops = await w3c.send(headers, calls=3)
    assert len({hop.trace_id for hop in hops}) == 1
    assert len({hop.parent_id for hop in hops}) == 3
    assert PARENT not in {hop.parent_id for hop in hops}


# --- tracestate -------------------------------------------------------------------------------

KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-*/"
VALUE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ",=")
FORWARDED = {
    "spec-example": (["congo=t61rcWkgMzE"], "congo=t61rcWkgMzE"),
    "spec-example-two-vendors": (
        ["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"],
        "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
    ),
    "fields-combined-in-order": (
        ["rojo=00f067aa0ba902b7", "congo=t61rcWkgMzE", "baz=3"],
        "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,baz=3",
    ),
    "ows-around-members": (["foo=1 \t , \t bar=2,\t baz=3\t"], "foo=1,bar=2,baz=3"),
    "empty-members": (["foo=1,,  ,bar=2", ""], "foo=1,bar=2"),
    "empty-field-then-member": (["", "foo=1"], "foo=1"),
    "at-sign-at-the-end": (["foo@=1,bar=2"], "foo@=1,bar=2"),
    "at-signs-inside": (["foo@@bar=1,foo@bar@baz=2"], "foo@@bar=1,foo@bar@baz=2"),
    "key-256-chars": (["foo=1", f"{'z' * 256}=1"], f"foo=1,{'z' * 256}=1"),
    "key-241-at-14": (["foo=1", f"{'t' * 241}@{'v' * 14}=1"], f"foo=1,{'t' * 241}@{'v' * 14}=1"),
    "key-242-at-1": (["foo=1", f"{'t' * 242}@v=1"], f"foo=1,{'t' * 242}@v=1"),
    "all-key-and-value-chars": ([f"{KEY_CHARS}@{KEY_CHARS}={VALUE_CHARS}"], None),
    "value-leading-space-kept": (["foo= 1"], "foo= 1"),
    "value-256-chars": ([f"foo={'v' * 256}"], f"foo={'v' * 256}"),
    "duplicated-key-keeps-the-first": (["foo=1,bar=2,foo=3"], "foo=1,bar=2"),
    "duplicated-across-fields": (["foo=1", "foo=2"], "foo=1"),
    "32-members": ([",".join(f"m{i:02d}={i}" for i in range(32))], None),
}


@pytest.mark.parametrize(("fields", "expected"), FORWARDED.values(), ids=FORWARDED.keys())
async def test_a_valid_tracestate_is_forwarded(
    w3c: Conformance, fields: list[str], expected: str | None
) -> None:
    hop = await w3c.one([("traceparent", f"{TP}-00"), *(("tracestate", f) for f in fields)])
    assert hop.trace_id == TRACE
    assert hop.tracestate == [expected if expected is not None else ",".join(fields)]


DROPPED = {
    "key-starts-with-at": ["@foo=1,bar=2"],
    "key-uppercase": ["FOO=1,bar=2"],
    "key-space": ["foo =1,bar=2"],
    "key-dot": ["foo.bar=1,bar=2"],
    "key-257-chars": ["foo=1", f"{'z' * 257}=1"],
    "value-with-equals": ["foo=bar=baz"],
    "value-empty": ["foo=,bar=3"],
    "value-257-chars": [f"foo={'v' * 257}"],
    "value-with-tab": ["foo=a\tb"],
    "no-equals": ["foo"],
    "33-members": [",".join(f"m{i:02d}={i}" for i in range(33))],
    "only-empty": [""],
}


@pytest.mark.parametrize("fields", DROPPED.values(), ids=DROPPED.keys())
async def test_an_invalid_tracestate_is_dropped_whole_and_the_trace_continued(
    w3c: Conformance, fields: list[str]
) -> None:
    hop = await w3c.one([("traceparent", f"{TP}-01"), *(("tracestate", f) for f in fields)])
    assert (hop.trace_id, hop.flags, hop.tracestate) == (TRACE, "01", [])


@pytest.mark.parametrize("name", ["TraceState", "TRACESTATE"])
async def test_the_tracestate_name_is_case_insensitive(w3c: Conformance, name: str) -> None:
    hop = await w3c.one([("traceparent", f"{TP}-01"), (name, "congo=t61rcWkgMzE")])
    assert hop.tracestate == ["congo=t61rcWkgMzE"]


@pytest.mark.parametrize("name", ["trace-state", "trace.state"])
async def test_a_misnamed_tracestate_is_not_read(w3c: Conformance, name: str) -> None:
    hop = await w3c.one([("traceparent", f"{TP}-01"), (name, "congo=t61rcWkgMzE")])
    assert hop.tracestate == []


async def test_over_512_chars_whole_members_are_cut_long_ones_first(w3c: Conformance) -> None:
    # 4 members of 100 chars, one of 150 in the middle, then two of 20: 596 chars in all.
    short = [f"s{i}={'a' * 97}" for i in range(4)]
    long = f"long={'b' * 145}"
    tail = [f"t{i}={'c' * 17}" for i in range(2)]
    fields = [",".join([*short[:2], long, *short[2:], *tail])]
    hop = await w3c.one([("traceparent", f"{TP}-01"), ("tracestate", fields[0])])
    # Removing the one member over 128 chars is enough: 445 chars, order kept.
    assert hop.tracestate == [",".join([*short, *tail])]
    # Without a long member, members go from the right: 6 x 100 chars -> 5 fit.
    six = [f"s{i}={'a' * 97}" for i in range(6)]
    hop = await w3c.one([("traceparent", f"{TP}-01"), ("tracestate", ",".join(six))])
    assert hop.tracestate == [",".join(six[:5])]
    assert [key for key, _ in hop.members] == ["s0", "s1", "s2", "s3", "s4"]
