"""The events Redis acknowledged last, kept to write again if Redis loses them (and to read).

Redis answers a write before its replicas (or its append-only file, with `everysec`) have it:
a primary that dies right after, or a restart, can lose events it acknowledged. The append
script sees it (the job's stored last id is below what the writer knows was written) and
says so; the writer then takes those events from this window, oldest first, and writes them
again ahead of everything else, so readers get them in order and no id is skipped. Events
that already left the window are counted as lost and show as one exact `gap`.

The owner's readers a little behind read from the window too (`since`): the events they
need were just written, so they are not read back from Redis and parsed again.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from .scripts import EVENT_HEAD

__all__ = ["RESEND_EVENTS", "ResendWindow"]

RESEND_EVENTS = 10_000  # acknowledged events kept (~3-5 MB at typical event sizes)


class ResendWindow:
    """The last `RESEND_EVENTS` acknowledged events, as the writer's per-job blob parts."""

    def __init__(self, size: int = RESEND_EVENTS) -> None:
        self._size = size
        self._events = 0
        self._writes: deque[tuple[Any, list[bytes]]] = deque()  # (log, [head, body, ...])

    def keep(self, log: Any, parts: list[bytes]) -> None:
        """Remember one acknowledged write of `log`: `parts` is [head, JSON, head, JSON, ...]."""
        self._writes.append((log, parts))
        self._events += len(parts) // 2
        while self._events > self._size and len(self._writes) > 1:
            _, dropped = self._writes.popleft()
            self._events -= len(dropped) // 2

    def restore(self, log: Any, after: int, upto: int) -> tuple[list[tuple[int, bytes]], int]:
        """`log`'s kept events with ids in (`after`, `upto`], in id order, and how many of
        those ids are no longer kept."""
        found: dict[int, bytes] = {}
        for owner, parts in self._writes:
            if owner is not log:
                continue
            for index in range(0, len(parts), 2):
                event_id = EVENT_HEAD.unpack(parts[index])[0]
                if after < event_id <= upto:
                    found[event_id] = parts[index + 1]
        events = sorted(found.items())
        return events, (upto - after) - len(events)

    def since(self, log: Any, after: int, upto: int) -> list[tuple[int, bytes]] | None:
        """`log`'s events with ids `after`+1 .. `upto`, in order, if the window has every one;
        None if not (the caller reads them from Redis)."""
        writes: list[list[bytes]] = []
        for owner, parts in reversed(self._writes):  # the newest writes of `log`, back to `after`
            if owner is not log:
                continue
            writes.append(parts)
            if EVENT_HEAD.unpack(parts[0])[0] <= after + 1:
                break
        else:
            return None
        events: list[tuple[int, bytes]] = []
        cursor = after
        unpack = EVENT_HEAD.unpack
        for parts in reversed(writes):
            for index in range(0, len(parts), 2):
                event_id = unpack(parts[index])[0]
                if event_id <= cursor:
                    continue  # before `after`, or written twice (sent again after a loss)
                if event_id != cursor + 1 or event_id > upto:
                    return events if cursor == upto else None
                events.append((event_id, parts[index + 1]))
                cursor = event_id
        return events if cursor == upto else None
