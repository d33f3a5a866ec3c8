"""A witness of the machine's own stalls, so a real-time test can tell our xruns from the host's.

Why: these tests run on shared virtual machines. The hypervisor takes a virtual CPU away for
milliseconds at a time (on 2026-11-23 this idle 2-core VM lost a CPU for >= 1.5 ms up to 40-90
times a second, for up to 300 ms), and a 128-frame stream with two periods (5.3 ms of buffer) cannot
survive that whatever the engine does. A real box has no hypervisor. So beside the engine runs
one tiny process per CPU, pinned to it, at a SCHED_FIFO priority above the engine's loop
(80 > 70), that sleeps 0.5 ms at a time and writes down every wake-up that came
:data:`MIN_LOST_S` (1 ms) or more late. Being above the engine, the engine's own work cannot delay it:
it is late only when its CPU did not run at all (the hypervisor, or the kernel's own
highest-priority work). An engine xrun is *the host's* when such a stall ended just before the
engine noticed it (:data:`BEFORE_S` before .. :data:`AFTER_S` after the xrun's time); every other
xrun is *ours*, and the tests assert there are none of those.

How well it tells them apart was measured on the JACK rig (2026-11-23). First with 1 ms sleeps
and a 1.5 ms threshold, in a very noisy hour (three 60 s streams, 12-32 xruns each): 88-100 % of
the xruns had a witnessed stall ending in that window, against 8-22 % of random moments. Sleeping
1 ms, a 2 ms stall can show as only 1 ms late, and some xruns went unexplained; with 0.5 ms sleeps
and a 1 ms threshold, in a calmer hour (three 60 s streams, 7 xruns, stalls 239-686 a minute), all
7 were explained against 2-4 % of random moments. So an xrun of the engine's own making fails
a test nearly always on a calm host, and still most of the time on a noisy one. That the
witness cannot mistake the engine's own overrun for the host's is tested too: the engine's loop
is made to spin for 60 ms, and the witness must not see a stall there
(``tests/engine/test_realtime_jack.py``).

Without SCHED_FIFO (a user who may not use it) the witness cannot tell, and says so:
``available`` is False and every xrun counts as ours, as the tests asserted before.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

PRIORITY = 80           # above the engine's loop (firmware.rt: 70) and the test rig's jackd (60)
INTERVAL_S = 0.0005     # a stall shows as a wake-up at most this much less late than it was long
MIN_LOST_S = 0.001      # a late wake-up this long or longer is a stall of the machine
BEFORE_S = 0.015        # the engine notices an xrun at its next read or write after the stall
AFTER_S = 0.003         # (and the witness may wake a little after the engine)

# the child: pinned, FIFO, short sleeps; late wake-ups as [start, end] (CLOCK_MONOTONIC); it also
# ends by itself if the test that started it is gone
_CHILD = """
import json, os, signal, sys, time
cpu, prio, interval, min_lost = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
os.sched_setaffinity(0, {cpu})
try:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(prio))
except OSError:
    print(json.dumps({"available": False}), flush=True)
    sys.exit(0)
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
stalls = []
mono, sleep = time.monotonic, time.sleep
parent, n = os.getppid(), 0
prev = mono()
print(json.dumps({"ready": True}), flush=True)
while not stop:
    sleep(interval)
    now = mono()
    if now - prev - interval >= min_lost:
        stalls.append([prev + interval, now])
    prev = now
    n += 1
    if n % 2000 == 0 and os.getppid() != parent:
        break
print(json.dumps({"available": True, "stalls": stalls}), flush=True)
"""


class HostWitness:
    """One witness per CPU this process may use; ``with HostWitness() as w:`` around the stream."""

    def __init__(self):
        self.cpus = sorted(os.sched_getaffinity(0))
        self.available = True
        self.stalls: list[tuple[float, float, int]] = []     # (start, end, cpu)
        self._procs: list[tuple[int, subprocess.Popen]] = []

    def __enter__(self) -> HostWitness:
        for cpu in self.cpus:
            p = subprocess.Popen([sys.executable, "-I", "-c", _CHILD, str(cpu), str(PRIORITY), str(INTERVAL_S),
                                  str(MIN_LOST_S)], stdout=subprocess.PIPE, text=True)
            self._procs.append((cpu, p))
        for _, p in self._procs:
            first = json.loads(p.stdout.readline() or '{"available": false}')
            if not first.get("ready"):
                self.available = False
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """End the witnesses and collect what they saw (idempotent)."""
        for cpu, p in self._procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            out, _ = p.communicate(timeout=10)
            lines = [ln for ln in out.splitlines() if ln.strip()]
            report = json.loads(lines[-1]) if lines else {"available": False}
            if not report.get("available"):
                self.available = False
            self.stalls += [(a, b, cpu) for a, b in report.get("stalls", [])]
        self._procs = []
        self.stalls.sort()

    def explains(self, t: float) -> bool:
        """True when a stall of the machine ended just before ``t`` (an xrun noticed then is the host's)."""
        return self.available and any(t - BEFORE_S <= end <= t + AFTER_S for _, end, _ in self.stalls)

    def ours(self, stats: dict) -> list:
        """The xruns of an engine's stats the host does not explain.

        ``stats["xrun_log"]`` holds ``[seconds since start, CLOCK_MONOTONIC, what]`` for the last
        xruns only: the ones beyond it cannot be placed, so they count as ours.
        """
        log = stats["xrun_log"]
        unplaced = [[None, None, "not in the xrun log"]] * max(0, stats["xruns"] - len(log))
        return unplaced + [x for x in log if not self.explains(x[1])]

    def during(self, start: float, end: float) -> list[tuple[float, float, int]]:
        """The stalls that overlap ``start`` .. ``end`` (CLOCK_MONOTONIC)."""
        return [st for st in self.stalls if st[0] <= end and st[1] >= start]

    def summary(self, seconds: float | None = None) -> str:
        if not self.available:
            return "no host witness (no SCHED_FIFO here): every xrun counts as ours"
        lost = [b - a for a, b, _ in self.stalls]
        span = f" in {seconds:.0f} s" if seconds else ""
        return (f"host stalls (a CPU lost >= {MIN_LOST_S * 1e3:.1f} ms){span}: {len(lost)}"
                + (f", longest {max(lost) * 1e3:.1f} ms" if lost else ""))

