"""Every event's time comes from one rule: Unix seconds rounded to the microsecond."""

from __future__ import annotations

import random

import pytest

from narration import emit, n
from narration.events import timestamp

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("seed", range(3))
def test_n_and_timestamp_give_the_same_time(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(200):
        now = rng.uniform(1.6e9, 2.2e9)
        monkeypatch.setattr(emit, "_time", lambda now=now: now)
        event = n("tick", "Tick")
        assert event is not None
        assert event.ts == timestamp(now) == round(now * 1e6) / 1e6


def test_timestamp_keeps_at_most_six_decimals() -> None:
    for value in (1764103678.1234567, 1764103678.9999996, 0.0000004):
        text = repr(timestamp(value))
        assert len(text.partition(".")[2]) <= 6, text
