"""`n()`: formatting, context injection, actor and fn_name defaulting, and the level threshold."""

from __future__ import annotations

import time
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from narration import (
    Level,
    NarrationEvent,
    configure,
    n,
    narrate,
    narration_context,
)
from narration.config import configure_from_env
from narration.dispatch import dispatcher
from narration.events import LEVEL_RANK
from narration.testing import CapturedEvents, capture

pytestmark = pytest.mark.unit


@pytest.fixture
def cap() -> Iterator[CapturedEvents]:
    with capture() as captured:
        yield captured


def load_module(name: str, source: str) -> types.ModuleType:
    """A module called `name` (as if imported from a package) built from `source`."""
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


QUEEN_SOURCE = """
from narration import n

def spawn_worker(gpu):
    return n("spawn", "Spawning worker on GPU {}", gpu)

class Pool:
    def start(self):
        def inner():
            return n("pool_start", "Pool starting")
        return inner()
"""


def test_args_format_the_message_like_rust_format() -> None:
    event = n("spawn", "Spawning worker on GPU {} ({:.1f} GiB)", 3, 23.99)
    assert event is not None
    assert event.human == "Spawning worker on GPU 3 (24.0 GiB)"


def test_f_strings_work_and_narrate_is_n() -> None:
    gpu = 2
    event = narrate("spawn", f"Spawning worker on GPU {gpu}")
    assert narrate is n
    assert event is not None
    assert event.human == "Spawning worker on GPU 2"


def test_context_ids_and_fields_are_injected(cap: CapturedEvents) -> None:
    with narration_context(
        job_id="job-inj",
        correlation_id="corr-inj",
        trace_id="0af7651916cd43dd8448eb211c80319c",
        span_id="b7ad6b7169203331",
        fields={"hive": "h1", "gpu": 0},
    ):
        n("spawn", "Spawning", gpu=1, model="llama")
    (event,) = cap.events
    assert event.job_id == "job-inj"
    assert event.correlation_id == "corr-inj"
    assert event.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert event.span_id == "b7ad6b7169203331"
    assert event.fields == {"hive": "h1", "gpu": 1, "model": "llama"}  # the call's fields win


def test_no_context_means_no_ids() -> None:
    event = n("idle", "Nothing running")
    assert event is not None
    assert (event.job_id, event.correlation_id, event.trace_id, event.fields) == (
        None,
        None,
        None,
        None,
    )


def test_timestamp_is_unix_seconds_with_microseconds() -> None:
    before = time.time()
    event = n("tick", "now")
    after = time.time()
    assert event is not None
    assert before - 0.001 <= event.ts <= after + 0.001
    assert round(event.ts, 6) == event.ts


def test_actor_defaults_to_the_callers_top_level_package() -> None:
    queen = load_module("queen.workers.spawn", QUEEN_SOURCE)
    event = queen.spawn_worker(0)
    assert event.actor == "queen"
    assert event.fn_name == "queen.workers.spawn.spawn_worker"


def test_fn_name_is_the_qualified_name_of_the_calling_function() -> None:
    hive = load_module("hive.pool", QUEEN_SOURCE)
    event = hive.Pool().start()
    assert event.actor == "hive"
    assert event.fn_name == "hive.pool.Pool.start.<locals>.inner"
    here = n("here", "from this test")
    assert here is not None
    assert here.fn_name == f"{__name__}.test_fn_name_is_the_qualified_name_of_the_calling_function"
    assert here.actor == __name__.partition(".")[0].strip("_")


@pytest.mark.parametrize(
    ("module", "actor"), [("__main__", "main"), ("_private.mod", "private"), ("worker", "worker")]
)
def test_actor_of_special_module_names(module: str, actor: str) -> None:
    event = load_module(module, QUEEN_SOURCE).spawn_worker(1)
    assert event.actor == actor


def test_the_context_actor_overrides_the_package(cap: CapturedEvents) -> None:
    queen = load_module("queen.api", QUEEN_SOURCE)
    with narration_context(actor="keeper"):
        event = queen.spawn_worker(5)
    assert event.actor == "keeper"
    assert event.fn_name == "queen.api.spawn_worker"  # fn_name still says where it was called
    assert cap.events == [event]


def test_levels_and_variants_are_carried() -> None:
    event = n(
        "spawn", "plain", level=Level.WARN, cute="cute text", story="story text", target="gpu0"
    )
    assert event is not None
    assert event.level is Level.WARN
    assert (event.cute, event.story, event.target) == ("cute text", "story text", "gpu0")


def test_a_level_may_be_given_as_text() -> None:
    event = n("spawn", "text level", level="ERROR")
    assert event is not None
    assert event.level is Level.ERROR


def test_an_unknown_level_becomes_info_and_is_flagged() -> None:
    event = n("spawn", "odd level", level="loud")
    assert event is not None
    assert event.level is Level.INFO
    assert event.fields == {"invalid_level": "'loud'"}


# --- the global level threshold -------------------------------------------------------------


def emit_all_levels() -> list[Level]:
    """Emit one event at each level; the levels that got through."""
    emitted = [n("lvl", "at {}", level.value, level=level) for level in Level]
    return [event.level for event in emitted if event is not None]


@pytest.mark.usefixtures("restore_level")
def test_configure_level_drops_lower_events(cap: CapturedEvents) -> None:
    configure(level="warn")
    assert n("spawn", "info is below warn") is None
    assert emit_all_levels() == [Level.WARN, Level.ERROR, Level.FATAL]
    assert [e.level for e in cap.events] == [Level.WARN, Level.ERROR, Level.FATAL]


@pytest.mark.usefixtures("restore_level")
def test_configure_level_accepts_a_level_and_lower_thresholds() -> None:
    configure(level=Level.TRACE)
    assert emit_all_levels() == list(Level)
    configure(level=Level.DEBUG)
    assert emit_all_levels() == list(Level)[1:]


@pytest.mark.usefixtures("restore_level")
def test_a_dropped_event_does_no_work() -> None:
    """Below the threshold the arguments are not even formatted."""
    formatted: list[str] = []

    class Spy:
        def __format__(self, spec: str) -> str:
            formatted.append(spec)
            return "spy"

    configure(level="error")
    assert n("spawn", "value {}", Spy(), level="debug") is None
    assert n("spawn", "value {}", Spy()) is None
    assert formatted == []
    event = n("spawn", "value {}", Spy(), level=Level.ERROR)
    assert event is not None
    assert event.human == "value spy"
    assert formatted == [""]


@pytest.mark.usefixtures("restore_level")
def test_configure_level_rejects_unknown_levels() -> None:
    with pytest.raises(ValueError, match="unknown level 'loud'; valid levels: trace, debug"):
        configure(level="loud")


@pytest.mark.usefixtures("restore_level")
@pytest.mark.parametrize(
    ("value", "passed"),
    [
        ("error", [Level.ERROR, Level.FATAL]),
        ("WARNING", [Level.WARN, Level.ERROR, Level.FATAL]),
        ("critical", [Level.FATAL]),
        ("debug", list(Level)[1:]),
    ],
)
def test_narration_level_from_the_environment(value: str, passed: list[Level]) -> None:
    configure_from_env({"NARRATION_LEVEL": value})
    assert emit_all_levels() == passed


@pytest.mark.usefixtures("restore_level")
def test_a_bad_narration_level_is_reported_not_raised(capsys: pytest.CaptureFixture[str]) -> None:
    configure(level="warn")
    configure_from_env({"NARRATION_LEVEL": "loud"})
    assert (
        "narration: ignoring environment setting: unknown level 'loud'" in capsys.readouterr().err
    )
    assert emit_all_levels() == [Level.WARN, Level.ERROR, Level.FATAL]  # unchanged


@pytest.mark.usefixtures("restore_level")
def test_an_empty_environment_changes_nothing() -> None:
    configure(level="error")
    configure_from_env({})
    assert emit_all_levels() == [Level.ERROR, Level.FATAL]


def test_n_returns_the_event_it_dispatched(cap: CapturedEvents) -> None:
    seen: list[NarrationEvent] = []
    sink: Callable[[NarrationEvent], Any] = seen.append
    dispatcher.add_sink(sink)
    try:
        with narration_context(job_id="job-sink-test"):
            event = n("spawn", "to the sinks")
    finally:
        dispatcher.remove_sink(sink)
    assert event is not None
    assert [e for e in seen if e.job_id == "job-sink-test"] == [event]
    assert cap.events == [event]


@pytest.mark.usefixtures("restore_level")
def test_the_threshold_applies_to_members_and_names_alike_whoever_sets_it() -> None:
    """`n()` checks a member against the muted levels first; names take the slow path."""
    configure(level="error")
    assert dispatcher.muted == (Level.TRACE, Level.DEBUG, Level.INFO, Level.WARN)
    assert [n("a", "m", level=x) for x in (Level.WARN, "warn", "WARN", Level.INFO)] == [None] * 4
    assert n("a", "m", level="ERROR") is not None
    dispatcher.min_rank = LEVEL_RANK[Level.TRACE]  # set directly (as the benchmarks do)
    assert dispatcher.muted == () and not dispatcher.info_muted
    assert emit_all_levels() == list(Level)


@pytest.mark.usefixtures("restore_level")
def test_a_level_whose_comparison_raises_is_info_and_flagged() -> None:
    class Touchy:
        def __eq__(self, other: object) -> bool:
            raise RuntimeError("do not compare me")

        __hash__ = object.__hash__

        def __repr__(self) -> str:
            return "Touchy()"

    event = n("spawn", "plain", level=Touchy())
    assert event is not None and event.level is Level.INFO
    assert event.fields == {"invalid_level": "Touchy()"}


SHORTCUT_SOURCE = """
from narration import n

def build(step):
    return n.debug("build", "Step {} of {}", step, 3, cute="Busy!", unit="page")
"""


@pytest.mark.usefixtures("restore_level")
def test_level_shortcuts_narrate_at_their_level_and_name_their_callers(
    cap: CapturedEvents,
) -> None:
    configure(level=Level.TRACE)
    events = [getattr(n, level.name.lower())("act", "at {}", level.value) for level in Level]
    assert [e.level for e in events if e is not None] == list(Level)
    assert [e.human for e in cap.events] == [f"at {level.value}" for level in Level]
    worker = load_module("worker.build", SHORTCUT_SOURCE)
    event = worker.build(2)
    assert (event.level, event.human, event.cute, event.fields) == (
        Level.DEBUG,
        "Step 2 of 3",
        "Busy!",
        {"unit": "page"},
    )
    assert (event.actor, event.fn_name) == ("worker", "worker.build.build")  # not narration's


@pytest.mark.usefixtures("restore_level")
def test_a_muted_shortcut_does_nothing_and_a_kept_one_follows_the_threshold(
    cap: CapturedEvents,
) -> None:
    formatted: list[str] = []

    class Spy:
        def __format__(self, spec: str) -> str:
            formatted.append(spec)
            return "spy"

    debug = n.debug  # kept, as a filtering logger's bound method would be
    configure(level="info")
    assert debug("act", "value {}", Spy()) is None and n.trace("act", "hidden") is None
    assert formatted == [] and cap.events == []
    configure(level="debug")
    shown = debug("act", "value {}", Spy())
    assert shown is not None and shown.level == Level.DEBUG and formatted == [""]
    configure(level="error")
    assert debug("act", "muted again") is None and n.warn("act", "muted too") is None
    assert [e.human for e in cap.events] == ["value spy"]
