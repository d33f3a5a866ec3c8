"""How late a real-time thread wakes, with and without the CPU wake-up latency hold.

A cyclictest-like probe: a SCHED_FIFO 70 thread sleeps to the next 128-frame period at 48 kHz
(2.67 ms) again and again and records how late it woke. Runs alternate between no request
(``[audio] cpu_latency_us = -1``, the default) and ``firmware.rt.CpuLatencyHold(0)`` (idle CPUs
poll), so both see the same machine. Needs root (SCHED_FIFO, /dev/cpu_dma_latency).

    .venv/bin/python bench/wake_latency.py --seconds 30 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from firmware import rt  # noqa: E402

PERIOD_S = 128 / 48000


def lateness_us(seconds: float, hold_us: int) -> dict:
    n = int(seconds / PERIOD_S)
    late = np.zeros(n)
    with rt.CpuLatencyHold(hold_us) as hold:
        held = hold.held
        t = time.monotonic()
        for i in range(n):
            t += PERIOD_S
            d = t - time.monotonic()
            if d > 0:
                time.sleep(d)
            late[i] = time.monotonic() - t
    late *= 1e6
    pct = {f"p{q}".replace(".", ""): round(float(np.percentile(late, q)), 1) for q in (50, 99, 99.9)}
    return {"cpu_latency_us": hold_us, "held": held, "wakeups": n, **pct, "max": round(float(late.max()), 1),
            "over_1ms": int((late > 1000).sum()), "over_2_7ms": int((late > 2 * PERIOD_S * 1e6).sum())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(rt.RT_PRIORITY))
    for _ in range(args.repeats):
        for hold_us in (-1, 0):
            print(json.dumps(lateness_us(args.seconds, hold_us)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
