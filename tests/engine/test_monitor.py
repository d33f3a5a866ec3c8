"""Listening modes in the engine: what is heard changes, what is recorded and metered does not.

In-process on the unpaced simulated device, compared sample by sample with a run in plain stereo.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
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


def test_as_streamed_plays_the_master_at_the_services_gain_and_records_it_unchanged(tmp_path):
    """Spotify's preview on a loud master: once the publisher has measured it, the speakers hear the
    master times the gain that brings its integrated loudness so far to -14 LUFS (pyloudnorm says what
    that loudness is); off again, the master bit for bit. The capture keeps the master throughout."""
    import pyloudnorm

    src = tmp_path / "desk.wav"
    write_noise(src, 6.0, seed=5, level=0.35)
    run_steered(src, tmp_path / "master.wav", 1300)
    master, _ = sf.read(str(tmp_path / "master.wav"), dtype="float64")
    seen = {}

    def steps(engine, server):
        writer = MeterWriter(tmp_path / "meters.shm")
        publisher = MeterPublisher(engine, writer)

        def measure():
            snap = publisher.snapshot()     # what the publisher thread does 25 times a second
            writer.publish(snap)
            seen["meters"] = MeterReader(tmp_path / "meters.shm").read()
            seen["status"] = ok(server, cmd="status")

        return {50: lambda: ok(server, cmd="capture_start", tap="output", fmt="FLOAT"),
                100: lambda: ok(server, cmd="preview", service="spotify"), 600: measure,
                900: lambda: ok(server, cmd="preview", service="off")}

    engine, server = run_steered(src, tmp_path / "heard.wav", 1300, steps)
    ok(server, cmd="capture_stop")
    out, _ = sf.read(str(tmp_path / "heard.wav"), dtype="float64")
    n = min(len(out), len(master))
    a, c = 600 * PERIOD, 900 * PERIOD
    assert np.array_equal(out[:a], master[:a])          # asked at block 100: unity until there is a measurement
    heard_so_far = pyloudnorm.Meter(RATE).integrated_loudness(master[:a])
    gain_db = seen["meters"]["preview_gain_db"]
    assert seen["meters"]["preview"] == "spotify" and seen["status"]["preview"] == "spotify"
    assert heard_so_far > -11.0                         # loud: Spotify turns it down
    assert gain_db == pytest.approx(-14.0 - heard_so_far, abs=0.1)
    assert seen["status"]["preview_gain_db"] == pytest.approx(gain_db, abs=0.01)
    g = 10 ** (gain_db / 20)
    np.testing.assert_allclose(out[a + FADE:c], g * master[a + FADE:c], rtol=0, atol=F32)
    assert np.array_equal(out[c + FADE:n], master[c + FADE:n])
    steepest = np.abs(np.diff(master[:n], axis=0)).max()
    for at in (a, c):
        assert np.abs(np.diff(out[at - 1:at + FADE + 1], axis=0)).max() <= steepest
    rec = next((tmp_path / "captures").glob("*.wav"))
    cap, _ = sf.read(str(rec), dtype="float64")
    start = int(np.flatnonzero(np.all(master[:n] == cap[0], axis=1))[0])
    m = min(len(cap), n - start)
    assert start + m > c and np.array_equal(cap[:m], master[start:start + m])


@pytest.mark.parametrize("cmd, key, good, bad, choices", [
    ("monitor", "mode", "left", ("surround", None, 1, "MONO"), "one of stereo, mono, side, left, right"),
    ("preview", "service", "apple_music", ("napster", None, 1, "Spotify"),
     "one of off, spotify, youtube, apple_music, tidal, amazon_music"),
])
def test_an_unknown_mode_or_service_is_refused_and_changes_nothing(tmp_path, cmd, key, good, bad, choices):
    engine = Engine(SimBackend(StreamConfig(rate=RATE, period=PERIOD), paced=False), wait_ready=True,
                    realtime=False)
    server = ControlServer(engine, tmp_path / "e.sock")
    assert ok(server, cmd=cmd, **{key: good})[cmd] == good
    for value in bad:
        reply = server.handle_line(json.dumps({"cmd": cmd, key: value}).encode())
        assert not reply["ok"] and choices in reply["error"]
    assert engine.status()[cmd] == good


def test_an_off_that_crosses_a_gain_being_worked_out_is_undone_by_the_next_publication():
    """The control thread's "off" may land between the publisher reading the service and setting its
    gain; the next publication puts the monitor back at unity."""
    engine = Engine(SimBackend(StreamConfig(rate=RATE, period=PERIOD), paced=False), wait_ready=True,
                    realtime=False)
    engine.set_preview("spotify")
    engine.update_preview(-8.0, -0.5)
    assert engine.preview_gain_db == pytest.approx(-6.0) and engine._mon_gain < 1.0
    engine._preview = 0                     # "off" as seen mid-computation: the gain was left behind
    engine.update_preview(-8.0, -0.5)
    assert (engine.preview, engine.preview_gain_db, engine._mon_gain) == ("off", 0.0, 1.0)
