"""The resend window as a read cache: the owner's readers a little behind get the events just
written from it, only when it has every one of them, in order, once."""

from __future__ import annotations

from narration.store.redis.resend import ResendWindow
from narration.store.redis.scripts import EVENT_HEAD


def _parts(*ids: int) -> list[bytes]:
    parts: list[bytes] = []
    for event_id in ids:
        body = b'{"i":%d}' % event_id
        parts += [EVENT_HEAD.pack(event_id, len(body)), body]
    return parts


def test_since_gives_every_kept_event_after_the_cursor_in_order() -> None:
    window, log, other = ResendWindow(size=100), object(), object()
    window.keep(log, _parts(1, 2, 3))
    window.keep(other, _parts(1, 2))
    window.keep(log, _parts(4, 5))
    assert window.since(log, 2, 5) == [(i, b'{"i":%d}' % i) for i in (3, 4, 5)]
    assert window.since(log, 0, 5) == [(i, b'{"i":%d}' % i) for i in range(1, 6)]
    assert window.since(log, 5, 5) == []  # nothing after: the caller reads (and waits)
    assert window.since(other, 0, 2) == [(1, b'{"i":1}'), (2, b'{"i":2}')]


def test_since_is_none_unless_the_window_has_them_all() -> None:
    window, log = ResendWindow(size=3), object()
    window.keep(log, _parts(1, 2))
    window.keep(log, _parts(3, 4))  # over the size: the first write leaves
    assert window.since(log, 0, 4) is None
    assert window.since(log, 2, 4) == [(3, b'{"i":3}'), (4, b'{"i":4}')]
    assert window.since(log, 2, 6) is None  # acknowledged ids it does not hold
    holed = ResendWindow(size=100)
    holed.keep(log, _parts(1, 2))
    holed.keep(log, _parts(5, 6))  # 3 and 4 were dropped: Redis's read makes the gap
    assert holed.since(log, 0, 6) is None
    assert holed.since(log, 4, 6) == [(5, b'{"i":5}'), (6, b'{"i":6}')]


def test_since_skips_events_written_twice() -> None:
    window, log = ResendWindow(size=100), object()
    window.keep(log, _parts(1, 2, 3))
    window.keep(log, _parts(2, 3, 4))  # sent again after Redis lost 2 and 3
    assert [event_id for event_id, _ in window.since(log, 0, 4) or []] == [1, 2, 3, 4]
