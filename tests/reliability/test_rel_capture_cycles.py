"""Found while measuring the load (issue 9): starting and stopping captures on a streaming engine
must not disturb the audio loop ("the capture writer never blocks the loop", ARCHITECTURE.md).
On the JACK-paced rig, six capture start/stop cycles (both taps) on an otherwise idle engine: no
xrun, and no block whose processing took longer than one period.

Measured 2026-11-22 on the shared 2-core machine: the first stop after the engine starts takes one
block to 7.7 ms (2.9 periods of 2.67 ms) and about one stop in four costs an xrun, while the
unloaded stream's longest block is ~0.25 ms. This test keeps that failing until it is fixed.
"""

from __future__ import annotations

import json
import time

import pytest
from loadrig import kill_group, start_engine, wait_running
from test_rel_load import rig_env

from firmware.control_client import EngineClient
from firmware.meters_shm import MeterReader

# realtime, but no reruns: it fails on a known bug, repeating it only costs time
pytestmark = [
    pytest.mark.realtime,
    pytest.mark.flaky(reruns=0),
    # Known open defect (issue 9 stays open on it): since the capture ring is preallocated
    # (859168a) no block takes longer than ~0.35 ms, yet about one run in three still counts an
    # xrun around a capture start/stop, with the sidecar analysis on or off; the cause (a GIL
    # hand-over or a late wake-up on this non-preemptible VM) is not found yet. The test keeps
    # running and reports XPASS/XFAIL so the day it is fixed shows.
    pytest.mark.xfail(strict=False, reason="known open defect: a capture start/stop can cost an xrun on the "
                                           "paced rig (cause not found yet; issue 9)"),
]


def test_capture_start_stop_cycles_never_stall_the_audio_loop(tmp_path, alsa_rig, jack_server):
    env = rig_env(alsa_rig, jack_server, 30)
    engine = start_engine(60, tmp_path / "stats.json", env)
    try:
        wait_running(60)
        reader = MeterReader()
        time.sleep(0.5)
        x0 = reader.read()["xruns"]
        cycles = []
        with EngineClient(timeout=10.0) as c:
            for _ in range(6):
                c.capture_start(tap="both")
                time.sleep(1.0)
                summary = c.capture_stop()
                time.sleep(1.0)
                m = reader.read()
                cycles.append({"xruns": m["xruns"] - x0, "max_load": round(m["max_load"], 3),
                               "dropped": summary["dropped_frames"]})
            c.request("stop")
        engine.communicate(timeout=30)
        stats = json.loads((tmp_path / "stats.json").read_text())
        assert all(cy["dropped"] == 0 for cy in cycles), cycles
        assert stats["xruns"] == 0, (cycles, stats["block_time_us"])
        assert stats["max_load"] < 1.0, (cycles, stats["block_time_us"])
    finally:
        kill_group(engine)
