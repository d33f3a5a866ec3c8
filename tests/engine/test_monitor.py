"""Listening modes in the engine: what is heard changes, what is recorded and metered does not.

In-process on the unpaced simulated device, compared sample by sample with a run in plain stereo.
"""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from firmware.control_channel import ControlServer
from firmware.engine import MONITOR_FADE_MS, Engine
from firmware.meters_shm import MeterPublisher, MeterReader, MeterWriter
from hw.audio import StreamConfig
from hw.audio.sim import SimBackend
from tests.engine.steered import PERIOD, RATE, ok, run_steered, write_noise

FADE = int(MONITOR_FADE_MS * 1e-3 * RATE)
F32 = 2e-7              # the simulated device writes float32


def test_mono_then_side_then_stereo_is_heard_and_the_capture_keeps_the_stereo_master(tmp_path):
    src = tmp_path / "desk.wav"
    write_noise(src, 6.0, seed=4)
    run_steered(src, tmp_path / "master.wav", 1300)
    master, _ = sf.read(str(tmp_path / "master.wav"), dtype="float64")
    seen = {}

    def steps(engine, server):
        def side():
            ok(server, cmd="monitor", mode="side")
            seen["status"] = ok(server, cmd="status")["monitor"]
            # the shared meters carry the mode too (the Live page lights its button from them)
            writer = MeterWriter(tmp_path / "meters.shm")
            writer.publish(MeterPublisher(engine, writer).snapshot())
            seen["meters"] = MeterReader(tmp_path / "meters.shm").read()["monitor"]
            writer.close()

        return {100: lambda: ok(server, cmd="capture_start", tap="output", fmt="FLOAT"),
                300: lambda: ok(server, cmd="monitor", mode="mono"), 600: side,
                900: lambda: ok(server, cmd="monitor", mode="stereo")}

    engine, server = run_steered(src, tmp_path / "heard.wav", 1300, steps)
    ok(server, cmd="capture_stop")
    assert seen == {"status": "side", "meters": "side"}
    out, _ = sf.read(str(tmp_path / "heard.wav"), dtype="float64")
    n = min(len(out), len(master))
    a, b, c = 300 * PERIOD, 600 * PERIOD, 900 * PERIOD
    assert np.array_equal(out[:a], master[:a])                      # untouched up to the request
    mono = (master[:, 0] + master[:, 1]) / 2
    side = (master[:, 0] - master[:, 1]) / 2
    for ch in (0, 1):
        np.testing.assert_allclose(out[a + FADE:b, ch], mono[a + FADE:b], rtol=0, atol=F32)
        np.testing.assert_allclose(out[b + FADE:c, ch], side[b + FADE:c], rtol=0, atol=F32)
    assert np.array_equal(out[c + FADE:n], master[c + FADE:n])      # plain stereo again, bit for bit
    # the switches glide: no step larger than the signals' own
    steepest = np.abs(np.diff(master[:n], axis=0)).max()
    for at in (a, b, c):
        assert np.abs(np.diff(out[at - 1:at + FADE + 1], axis=0)).max() <= steepest
    # the recording holds the stereo master throughout
    rec = next((tmp_path / "captures").glob("*.wav"))
    cap, _ = sf.read(str(rec), dtype="float64")
    start = int(np.flatnonzero(np.all(master[:n] == cap[0], axis=1))[0])
    m = min(len(cap), n - start)
    assert start < a and start + m > c + FADE
    assert np.array_equal(cap[:m], master[start:start + m])
    assert engine.stats().xruns == 0


def test_an_unknown_mode_is_refused_and_changes_nothing(tmp_path):
    engine = Engine(SimBackend(StreamConfig(rate=RATE, period=PERIOD), paced=False), wait_ready=True,
                    realtime=False)
    server = ControlServer(engine, tmp_path / "e.sock")
    assert ok(server, cmd="monitor", mode="left")["monitor"] == "left"
    for mode in ("surround", None, 1, "MONO"):
        bad = server.handle_line(json.dumps({"cmd": "monitor", "mode": mode}).encode())
        assert not bad["ok"] and "one of stereo, mono, side, left, right" in bad["error"]
    assert engine.status()["monitor"] == "left"
