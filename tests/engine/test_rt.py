"""Real-time footing: refused privileges are warnings that say how to allow them, never errors."""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
import threading
import time

import pytest

from firmware import rt


def test_refused_scheduling_and_memory_locking_are_explained(monkeypatch):
    def refuse(*a, **kw):
        raise PermissionError(1, "Operation not permitted")

    class NoLock:
        def mlockall(self, flags):
            return -1

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    monkeypatch.setattr(rt.ctypes, "CDLL", lambda *a, **kw: NoLock())
    out = rt.enter_realtime()
    assert out["sched_fifo"] is False and out["mlockall"] is False
    assert any("LimitRTPRIO" in w for w in out["warnings"])
    assert any("LimitMEMLOCK" in w for w in out["warnings"])
    assert rt.boost_helper_thread() is False
    assert rt.lift_threads([os.getpid()]) == 0


def test_quiet_gc_disables_collection_inside_and_restores_after():
    assert gc.isenabled()
    with rt.quiet_gc():
        assert not gc.isenabled()
        assert gc.get_freeze_count() > 0
    assert gc.isenabled() and gc.get_freeze_count() == 0


# -- threads and children started while the engine is real-time (the capture start/stop xruns) --
_THREAD_RSS = r"""
import sys, threading, time
from firmware import rt
out = rt.enter_realtime(priority=1)
if not out["mlockall"]:
    print("no-mlockall"); sys.exit(0)
if sys.argv[1] == "glibc-default":
    threading.stack_size(0)  # what every thread got before: glibc's default (ulimit -s, 8 MiB here)
def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) * 1024
ev = threading.Event()
before = rss()
t = threading.Thread(target=ev.wait)
t.start()
time.sleep(0.05)
print(rss() - before)
ev.set()
t.join()
"""


def _rss_growth_of_a_new_thread(kind: str) -> int:
    r = subprocess.run([sys.executable, "-c", _THREAD_RSS, kind], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    if r.stdout.strip() == "no-mlockall":
        pytest.skip("mlockall is refused to this user (needs root or LimitMEMLOCK), so the stack-locking it tests "
                    "cannot happen here; CI runs as root, where this test runs")
    return int(r.stdout.strip())


def test_a_thread_started_after_locking_memory_does_not_lock_an_8_mib_stack():
    """With mlockall(MCL_FUTURE) a new thread's whole stack is zeroed and locked inside
    pthread_create, with the GIL held: 8 MiB kept the audio loop from the GIL for 4-9 ms at every
    capture start and stop. After enter_realtime threads get rt.THREAD_STACK_BYTES instead."""
    small = _rss_growth_of_a_new_thread("engine")
    default = _rss_growth_of_a_new_thread("glibc-default")
    soft = resource.getrlimit(resource.RLIMIT_STACK)[0]
    assert small < 2 * 1024 * 1024, small
    if soft == resource.RLIM_INFINITY or soft >= 4 * 1024 * 1024:  # the measurement tells the two apart
        assert default > 4 * 1024 * 1024, default


def _child_policy(make_ordinary: bool) -> tuple[int, int]:
    """(policy of a child process, policy of the thread after) for a child started from a FIFO 1 thread."""
    out: list = []

    def body():
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        except PermissionError:
            out.append(None)
            return
        if make_ordinary:
            rt.children_start_ordinary()
        r = subprocess.run([sys.executable, "-c", "import os; print(os.sched_getscheduler(0))"],
                           capture_output=True, text=True, timeout=60)
        out.append((int(r.stdout), os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK))

    t = threading.Thread(target=body)
    t.start()
    t.join()
    if out[0] is None:
        pytest.skip("SCHED_FIFO is refused to this user (needs root or an rtprio limit), so there is no real-time "
                    "policy to inherit; CI runs as root, where this test runs")
    return out[0]


def test_processes_started_from_a_real_time_thread_start_ordinary():
    """The capture analysis worker, started from a FIFO 40 thread, ran its CPU-bound second at
    FIFO 40 (nice does nothing to FIFO) and real-time throttling then stalled the audio loop."""
    assert _child_policy(make_ordinary=False)[0] == os.SCHED_FIFO  # what a child inherits by default
    child, thread = _child_policy(make_ordinary=True)
    assert child == os.SCHED_OTHER
    assert thread == os.SCHED_FIFO  # the thread itself keeps its priority


# -- the CPU wake-up latency request held while the loop runs ------------------------------------
def _kernel_cpu_latency_us() -> int:
    """The kernel's current aggregate request (the smallest held by any process)."""
    with open(rt.CPU_LATENCY_DEVICE, "rb") as f:
        return int.from_bytes(f.read(4), sys.byteorder, signed=True)


def _can_hold_cpu_latency() -> bool:
    return os.access(rt.CPU_LATENCY_DEVICE, os.R_OK | os.W_OK)


def test_cpu_latency_hold_is_the_kernels_request_while_open_and_gone_after():
    if not _can_hold_cpu_latency():
        pytest.skip(f"{rt.CPU_LATENCY_DEVICE} is not writable by this user (root only by default); "
                    "CI runs as root, where this test runs")
    with rt.CpuLatencyHold(0) as hold:
        assert hold.held and not hold.warning
        assert _kernel_cpu_latency_us() == 0
    assert not hold.held
    assert _kernel_cpu_latency_us() > 0          # the request went with the closed file


def test_cpu_latency_hold_refused_or_off_is_a_warning_or_nothing(tmp_path):
    with rt.CpuLatencyHold(0, path=str(tmp_path / "no-such-device")) as hold:
        assert not hold.held
        assert "cpu_latency_us = -1" in hold.warning
    with rt.CpuLatencyHold(-1, path=str(tmp_path / "no-such-device")) as hold:
        assert not hold.held and hold.warning == ""  # -1: not asked, so nothing to warn about


_ENGINE_HOLD = r"""
import json, sys
from firmware.engine import Engine
from hw.audio import make_backend
from hw.audio.base import StreamConfig
backend = make_backend("sim", StreamConfig(rate=48000, period=128, periods=2))
engine = Engine(backend, realtime=True, cpu_latency_us=int(sys.argv[1]))
seen = []
backend_read = backend.read
def read(*a, **kw):   # what the kernel holds while the loop is running
    if not seen:
        seen.append(int.from_bytes(open("/dev/cpu_dma_latency", "rb").read(4), sys.byteorder, signed=True))
    return backend_read(*a, **kw)
backend.read = read
stats = engine.run(duration=0.3)
print(json.dumps({"during": seen[0], "reported": stats.extra["cpu_latency_us"]}))
"""


@pytest.mark.parametrize("setting", [0, -1])
def test_the_engine_holds_the_configured_cpu_latency_while_it_runs(setting):
    if not _can_hold_cpu_latency():
        pytest.skip(f"{rt.CPU_LATENCY_DEVICE} is not writable by this user; CI runs as root, where this test runs")
    before = _kernel_cpu_latency_us()
    r = subprocess.run([sys.executable, "-c", _ENGINE_HOLD, str(setting)], capture_output=True, text=True,
                       timeout=120, cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    if setting == 0:
        assert out == {"during": 0, "reported": 0}
    else:
        assert out == {"during": before, "reported": None}   # -1: the engine asked for nothing
    assert _kernel_cpu_latency_us() == before


def _cpus_allowed(pid: int, tid: int) -> str:
    with open(f"/proc/{pid}/task/{tid}/status") as f:
        return next(line.split()[1] for line in f if line.startswith("Cpus_allowed_list:"))


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one CPU: nothing to pin to apart from the rest")
def test_the_audio_loop_runs_on_the_configured_cpu_alone(tmp_path):
    """``--cpu 1``: the engine's audio loop (its main thread) may run on CPU 1 only, as the kernel
    reports it, while its other threads (meter publisher, control channel, chain loader) keep
    every CPU; a CPU the machine does not have is a warning, and the audio runs anyway."""
    from firmware.control_client import EngineClient
    from tests.engine.conftest import engine_cmd, read_stats, wait_for

    every = f"0-{os.cpu_count() - 1}"
    stats_path = tmp_path / "stats.json"
    proc = subprocess.Popen(engine_cmd("--backend", "sim", "--no-realtime", "--cpu", "1", "--duration", "6",
                                       "--stats-json", str(stats_path), "--socket", str(tmp_path / "e.sock"),
                                       "--meters", str(tmp_path / "m.shm")),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (seen.get(proc.pid) == "1" and len(seen) >= 3):
            try:
                seen = {int(t): _cpus_allowed(proc.pid, int(t)) for t in os.listdir(f"/proc/{proc.pid}/task")}
            except (FileNotFoundError, ProcessLookupError, StopIteration):
                pass
            time.sleep(0.05)
        # seen, and the chain running: asked to stop instead of streaming out the rest of its 6 s
        # (the stats are written on a stop as at the end of --duration; an engine that never runs
        # ends by itself, and its stderr is shown below)
        with EngineClient(tmp_path / "e.sock", timeout=5.0) as c:
            if c.wait_running(30, gave_up=lambda: proc.poll() is not None):
                wait_for(lambda: c.status()["blocks"] > 0, 5, what="blocks")
                c.stop_engine()
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert seen.get(proc.pid) == "1", seen
    others = {tid: cpus for tid, cpus in seen.items() if tid != proc.pid}
    assert others and all(cpus == every for cpus in others.values()), seen
    stats = read_stats(stats_path)
    assert stats["cpu"] == 1 and stats["blocks"] > 0

    r = subprocess.run(engine_cmd("--backend", "sim", "--no-realtime", "--cpu", "64", "--duration", "1",
                                  "--stats-json", str(stats_path), "--socket", str(tmp_path / "e2.sock"),
                                  "--meters", str(tmp_path / "m2.shm")),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "cannot run on CPU 64" in r.stderr, r.stderr
    stats = read_stats(stats_path)
    assert stats["cpu"] is None and stats["blocks"] > 0

