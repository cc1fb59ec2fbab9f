"""`narration._process`: the one graceful stop (SIGTERM, a grace, SIGKILL) and the port picker,
on real child processes."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest

from narration._process import JOB_SCOPED_ENV, free_port, kill_process, service_env, stop_process

pytestmark = pytest.mark.unit

CHILD = """
import signal, sys, time
mode = sys.argv[1]
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
elif mode == "tidy":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))
print("ready", flush=True)
for _ in range(600):  # short sleeps: a SIGTERM arriving just before one long sleep would be
    time.sleep(0.1)   # handled only after it (handlers run between bytecodes)
"""


def _child(mode: str) -> subprocess.Popen[bytes]:
    """A sleeping child that has set up its SIGTERM handling (`mode`) once this returns."""
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode], stdout=subprocess.PIPE, start_new_session=True
    )
    assert process.stdout is not None
    assert process.stdout.readline() == b"ready\n"
    process.stdout.close()
    return process


def test_stop_process_lets_a_child_end_on_sigterm() -> None:
    process = _child("tidy")
    began = time.monotonic()
    assert stop_process(process, grace=20.0) == 3  # its own SIGTERM handler's exit code
    assert time.monotonic() - began < 10.0  # it did not wait for the grace


def test_stop_process_sigkills_a_child_that_ignores_sigterm_after_the_grace() -> None:
    process = _child("stubborn")
    began = time.monotonic()
    assert stop_process(process, grace=0.5) == -signal.SIGKILL
    assert time.monotonic() - began >= 0.5


def test_stop_and_kill_of_an_ended_process_give_its_exit_code() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(7)"])
    assert process.wait(30) == 7
    assert stop_process(process) == 7
    assert kill_process(process) == 7


def test_kill_process_sigkills_at_once() -> None:
    assert kill_process(_child("stubborn")) == -signal.SIGKILL


def test_free_port_is_free_and_not_excluded() -> None:
    taken = free_port()
    port = free_port(exclude={taken})
    assert port != taken
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # free: binding it works


def test_service_env_drops_job_scoped_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in JOB_SCOPED_ENV:
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("KEEP_ME", "1")
    env = service_env({"EXTRA": "2"})
    assert not set(JOB_SCOPED_ENV) & set(env)
    assert (env["KEEP_ME"], env["EXTRA"], env["PYTHONUNBUFFERED"]) == ("1", "2", "1")
