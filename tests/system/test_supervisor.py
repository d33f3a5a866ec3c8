"""The supervisor behind `masterbox run` / `masterbox demo`, on small stand-in child processes."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from firmware.supervisor import ChildSpec, Supervisor
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]

# A child that records its pid and how it was stopped.
CHILD = """
import os, signal, sys, time
name, log = sys.argv[1], sys.argv[2]
def bye(sig, frame):
    open(log, "a").write(f"{name} SIGTERM {time.monotonic()}\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
open(log, "a").write(f"{name} up {os.getpid()}\\n")
print(f"{name} says hello", flush=True)
while True:
    time.sleep(0.05)
"""

STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"


def _spec(name, log, **kw):
    return ChildSpec(name, [sys.executable, "-c", CHILD, name, str(log)], **kw)


def _pids(log: Path, name: str) -> list[int]:
    if not log.exists():
        return []
    return [int(line.split()[2]) for line in log.read_text().splitlines() if line.startswith(f"{name} up")]


def _wait_for(cond, timeout=10.0, step=0.02):
    return wait_for(cond, timeout, step)


@pytest.fixture
def running(tmp_path):
    started = []

    def start(specs, **kw):
        out = io.StringIO()
        sup = Supervisor(specs, out=out, poll=0.05, **kw)
        t = threading.Thread(target=sup.run, kwargs={"install_signals": False}, daemon=True)
        t.start()
        started.append((sup, t))
        return sup, out

    yield start
    for sup, t in started:
        sup.request_stop()
        t.join(15)


def test_a_killed_child_is_back_within_3_seconds_and_the_other_is_untouched(tmp_path, running):
    log = tmp_path / "log"
    sup, out = running([_spec("engine", log), _spec("control", log)])
    engine_pid = _wait_for(lambda: _pids(log, "engine"))[0]
    control_pid = _wait_for(lambda: _pids(log, "control"))[0]
    t0 = time.monotonic()
    os.kill(engine_pid, signal.SIGKILL)
    new = _wait_for(lambda: [p for p in _pids(log, "engine") if p != engine_pid], timeout=3.0)
    assert time.monotonic() - t0 < 3.0
    assert new
    assert _pids(log, "control") == [control_pid]
    text = out.getvalue()
    assert "engine exited (signal 9); restarting" in text
    assert "engine says hello" in text  # children's output is passed through, prefixed


def test_stop_terminates_control_first_then_engine(tmp_path, running):
    log = tmp_path / "log"
    sup, out = running([_spec("engine", log), _spec("control", log)])
    _wait_for(lambda: _pids(log, "engine") and _pids(log, "control"))
    time.sleep(0.3)
    sup.request_stop()
    _wait_for(lambda: "engine stopped" in out.getvalue())
    stops = [line.split()[0] for line in log.read_text().splitlines() if "SIGTERM" in line]
    assert stops == ["control", "engine"]


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path, running):
    spec = ChildSpec("stubborn", [sys.executable, "-c", STUBBORN], stop_timeout=0.5)
    sup, out = running([spec])
    _wait_for(lambda: "stubborn | up" in out.getvalue())
    proc = sup.children[0].proc
    sup.request_stop()
    _wait_for(lambda: proc.poll() is not None, timeout=5)
    assert proc.returncode == -signal.SIGKILL
    assert "did not stop" in out.getvalue()


def test_a_stalled_heartbeat_gets_the_child_killed_and_restarted(tmp_path, running):
    log = tmp_path / "log"
    beat = {"n": 0, "moving": True}

    def heartbeat():
        if beat["moving"]:
            beat["n"] += 1
        return beat["n"]

    sup, out = running([_spec("engine", log, heartbeat=heartbeat, stall_seconds=0.5)])
    first = _wait_for(lambda: _pids(log, "engine"))[0]
    time.sleep(0.3)
    assert _pids(log, "engine") == [first]
    beat["moving"] = False  # the process lives on, its audio loop does not
    _wait_for(lambda: len(_pids(log, "engine")) == 2, timeout=5)
    assert "heartbeat stalled" in out.getvalue()
    beat["moving"] = True


def test_a_child_that_keeps_dying_is_restarted_with_growing_delays(running):
    spec = ChildSpec("crashy", [sys.executable, "-c", "raise SystemExit(3)"])
    sup, out = running([spec])
    _wait_for(lambda: out.getvalue().count("exited (status 3)") >= 4, timeout=10)
    assert "restarting in 0.5 s" in out.getvalue() and "restarting in 1.0 s" in out.getvalue()


def test_children_die_with_a_killed_supervisor_and_are_out_of_the_terminals_reach(tmp_path):
    log = tmp_path / "log"
    script = (
        "import sys; from firmware.supervisor import ChildSpec, Supervisor\n"
        f"Supervisor([ChildSpec('engine', [sys.executable, '-c', {CHILD!r}, 'engine', {str(log)!r}])]).run()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        child = _wait_for(lambda: _pids(log, "engine"))[0]
        assert os.getpgid(child) == child  # its own group: a terminal's Ctrl-C goes to the supervisor only
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        _wait_for(lambda: not Path(f"/proc/{child}").exists() or
                  Path(f"/proc/{child}/stat").read_text().split()[2] == "Z", timeout=5)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_clean_exit_is_restarted_at_once_every_time_and_children_know_they_are_supervised(tmp_path, running):
    """A clean exit (status 0) is a stop that was asked for (the System page restarting the engine):
    never delayed, however often; a crash is (the test above). Children see MASTERBOX_SUPERVISED=1."""
    log = tmp_path / "log"
    code = ("import os, sys; open(sys.argv[1], 'a').write(os.environ.get('MASTERBOX_SUPERVISED', '-') + '\\n')")
    sup, out = running([ChildSpec("engine", [sys.executable, "-c", code, str(log)])])
    _wait_for(lambda: out.getvalue().count("exited (status 0)") >= 5, timeout=15)
    assert "restarting in" not in out.getvalue()
    assert set(log.read_text().split()) == {"1"}
