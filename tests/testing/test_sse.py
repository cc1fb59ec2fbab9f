"""`narration.testing.sse`: the SSE parser tests and benchmarks read streams with.

Checked against the wire format the server writes, against the WHATWG line rules (CRLF, LF,
CR; a chunk cut anywhere), and against httpx-sse, the library `JobClient` reads streams with.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from httpx_sse._decoders import SSEDecoder, SSELineDecoder
from hypothesis import given
from hypothesis import strategies as st

from narration.events import Level, NarrationEvent, decode_event
from narration.testing.sse import SSEFrame, SSEParser, parse_frames, parse_sse
from narration.wire import event_frame

pytestmark = pytest.mark.unit

JOB = "job-00000000-0000-4000-8000-0000000055e1"


def _event(i: int, human: str) -> NarrationEvent:
    return NarrationEvent(
        ts=1.0, level=Level.INFO, actor="t", action="step", human=human, job_id=JOB, id=i
    )


def test_a_stream_as_the_server_writes_it() -> None:
    body = (
        b"retry: 2000\n\n"
        + event_frame(1, _event(1, "first"))
        + b": keepalive\n\n"
        + b'event: gap\ndata: {"missed": 3, "next_id": 5}\n\n'
        + event_frame(5, _event(5, "fifth ✓"))
        + b'id: 6\nevent: done\ndata: {"job_id": "%s", "state": "completed", "error": null}\n\n'
        % JOB.encode()
    )
    frames = parse_sse(body)
    assert [(f.event, f.id, f.retry, f.comments) for f in frames] == [
        (None, None, 2000, ()),
        ("narration", "1", None, ()),
        (None, None, None, ("keepalive",)),
        ("gap", None, None, ()),
        ("narration", "5", None, ()),
        ("done", "6", None, ()),
    ]
    assert [decode_event(f.data).human for f in frames if f.event == "narration"] == [
        "first",
        "fifth ✓",
    ]
    assert frames[3].json() == {"missed": 3, "next_id": 5}
    assert frames[5].json() == {"job_id": JOB, "state": "completed", "error": None}


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_every_line_ending_reads_the_same(newline: str) -> None:
    text = "id: 1\nevent: narration\ndata: a\ndata: b\n\n: c\n\nevent: done\ndata: {}\n\n"
    assert parse_sse(text.replace("\n", newline)) == [
        SSEFrame(event="narration", data="a\nb", id="1"),
        SSEFrame(comments=("c",)),
        SSEFrame(event="done", data="{}"),
    ]


def test_field_rules_follow_the_spec() -> None:
    text = (
        "\ufeffevent:tight\n"  # a byte order mark first is skipped; the space is optional
        "data:  two spaces\n"  # only the first space goes
        "data\n"  # a field with no colon: an empty value
        "id: a\0b\n"  # an id holding NUL is ignored
        "retry: soon\n"  # a retry that is not digits is ignored
        "colour: blue\n"  # an unknown field is ignored
        ":\n\n"  # an empty comment
    )
    assert parse_sse(text) == [SSEFrame(event="tight", data=" two spaces\n", comments=("",))]


def test_blank_lines_alone_make_no_frames_and_an_unfinished_frame_waits() -> None:
    parser = SSEParser()
    assert parser.feed("\n\n\n\nevent: done\ndata: {}\n") == []
    assert parser.pending == "event: done\ndata: {}\n"
    assert parse_sse("event: done\ndata: {}\n") == []  # never ended by a blank line
    assert parser.feed("\n") == [SSEFrame(event="done", data="{}")]
    assert parser.pending == ""


def test_a_chunk_may_end_inside_a_crlf_or_a_utf8_character() -> None:
    body = "event: narration\r\ndata: ✓\r\n\r\n".encode()
    parser = SSEParser()
    frames = [frame for i in range(len(body)) for frame in parser.feed(body[i : i + 1])]
    assert frames == [SSEFrame(event="narration", data="✓")]
    assert parser.pending == ""


def test_feed_text_gives_complete_frames_for_counting() -> None:
    parser = SSEParser()
    first = parser.feed_text(b"event: narration\ndata: 1\n\nevent: narration\ndata: 2\n\nevent: na")
    assert first.count("event: narration\n") == 2
    assert parse_frames(first) == [
        SSEFrame(event="narration", data="1"),
        SSEFrame(event="narration", data="2"),
    ]
    assert parser.feed_text(b"rration\ndata: 3\n\n") == "event: narration\ndata: 3"


# --------------------------------------------------------------------------- properties

_value = st.text(st.characters(blacklist_characters="\r\n\0", codec="utf-8"), max_size=12)
_name = st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=8)
_frame = st.fixed_dictionaries(
    {"data": st.lists(_value, min_size=1, max_size=3)},
    optional={
        "event": _name,
        "id": st.one_of(_value, st.just("a\0b")),
        "retry": st.integers(0, 10**6),
        "comments": st.lists(_value, max_size=2),
    },
)


def _encode(frames: list[dict[str, Any]], newline: str) -> bytes:
    lines: list[str] = []
    for frame in frames:
        lines += [f":{comment}" for comment in frame.get("comments", [])]
        if "id" in frame:  # the server's order: id, event, data
            lines.append(f"id: {frame['id']}")
        if "event" in frame:
            lines.append(f"event: {frame['event']}")
        if "retry" in frame:
            lines.append(f"retry: {frame['retry']}")
        lines += [f"data: {line}" for line in frame["data"]]
        lines.append("")
    return "".join(line + newline for line in lines).encode()


@given(
    frames=st.lists(_frame, min_size=1, max_size=6),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    cuts=st.lists(st.integers(0, 400), max_size=8),
)
def test_any_chunking_reads_like_httpx_sse(
    frames: list[dict[str, Any]], newline: str, cuts: list[int]
) -> None:
    body = _encode(frames, newline)
    bounds = sorted({0, len(body), *(cut for cut in cuts if cut < len(body))})
    parser = SSEParser()
    ours = [f for a, b in itertools.pairwise(bounds) for f in parser.feed(body[a:b])]
    assert ours == parse_sse(body) and parser.pending == ""
    assert [f.data for f in ours] == ["\n".join(frame["data"]) for frame in frames]
    assert (
        [f.comments for f in ours]
        == [  # one leading space dropped, as from field values
            tuple(c[1:] if c.startswith(" ") else c for c in frame.get("comments", []))
            for frame in frames
        ]
    )

    lines, decoder, theirs = SSELineDecoder(), SSEDecoder(), []
    for line in [*lines.decode(body.decode()), *lines.flush()]:
        sse = decoder.decode(line)
        if sse is not None:
            theirs.append(sse)
    assert [(f.event or "message", f.data, f.retry) for f in ours] == [
        (sse.event, sse.data, sse.retry) for sse in theirs
    ]
    last_id = ""
    for frame, sse in zip(ours, theirs, strict=True):
        last_id = frame.id if frame.id is not None else last_id  # a browser's last event id
        assert sse.id == last_id


def test_json_of_a_frame() -> None:
    assert SSEFrame(data=json.dumps({"a": [1, 2]})).json() == {"a": [1, 2]}
