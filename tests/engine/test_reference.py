"""The reference track (REF) in the engine: what is heard, what is recorded, how it is matched.

In-process on the unpaced simulated device (every block kept, so the output can be compared sample
by sample with a run without the reference), then through the control process's side
(:class:`firmware.reference_track.ReferenceTrack`: a worker prepares a capture) against a running
``masterbox engine`` whose output is written to a WAV and measured with pyloudnorm.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import numpy as np
import pytest
import soundfile as sf

from firmware.control_channel import ControlServer
from firmware.engine import XFADE_MS, Engine
from firmware.reference import open_prepared, prepare
from hw.audio import StreamConfig
from hw.audio.sim import SimBackend
from tests.engine.conftest import engine_cmd, wait_for
from tests.engine.steered import PERIOD, RATE, ok, run_steered, write_noise

FADE = int(XFADE_MS * 1e-3 * RATE)


def test_ref_replaces_the_master_after_a_clean_fade_and_the_capture_keeps_the_master(tmp_path):
    src = tmp_path / "desk.wav"
    write_noise(src, 8.0, seed=1)
    ref_src = tmp_path / "record.wav"
    write_noise(ref_src, 3.0, seed=2, rate=44100, level=0.2)          # another rate: converted when prepared
    prepared = tmp_path / "ref.f32"
    prepare(ref_src, prepared, RATE)
    ref, info = open_prepared(prepared, RATE)
    assert len(ref) == 3 * RATE and info["rate"] == RATE

    run_steered(src, tmp_path / "master.wav", 2400)
    master, _ = sf.read(str(tmp_path / "master.wav"), dtype="float64")

    seen = {}

    def steps(engine, server):
        def on():
            reply = ok(server, cmd="reference", on=True, gain_db=-6.0)
            assert reply["reference"]["on"] and reply["reference"]["gain_db"] == -6.0
            assert reply["reference"]["matched_to"] == "given"

        def heard():
            seen["heard"] = engine.status()["reference"]["heard"]

        return {50: lambda: ok(server, cmd="reference_load", path=str(prepared)),
                100: lambda: ok(server, cmd="capture_start", tap="output", fmt="FLOAT"),
                400: on, 1500: heard, 1700: lambda: ok(server, cmd="reference", on=False)}

    engine, server = run_steered(src, tmp_path / "with_ref.wav", 2400, steps)
    ok(server, cmd="capture_stop")
    assert seen["heard"] is True
    out, _ = sf.read(str(tmp_path / "with_ref.wav"), dtype="float64")
    n = min(len(out), len(master))
    differ = np.flatnonzero(np.any(out[:n] != master[:n], axis=1))
    on_at, off_end = differ[0], differ[-1] + 1
    assert on_at == 400 * PERIOD                                   # at the block edge where it was asked
    g = 10 ** (-6 / 20)
    # the fade in: the master crossfaded into the reference along a raised cosine (float32 output)
    w = 0.5 - 0.5 * np.cos(np.pi * np.minimum(np.arange(1, FADE + 1) / FADE, 1.0))[:, None]
    np.testing.assert_allclose(out[on_at:on_at + FADE],
                               master[on_at:on_at + FADE] + w * (ref[:FADE] * g - master[on_at:on_at + FADE]),
                               rtol=0, atol=2e-7)
    # then the reference alone, at its gain, from its start, wrapping at its end
    alone_end = 1700 * PERIOD                                      # switched off at this block edge
    played = ref[np.arange(alone_end + FADE - on_at) % len(ref)] * g
    np.testing.assert_allclose(out[on_at + FADE:alone_end], played[FADE:alone_end - on_at], rtol=0, atol=2e-7)
    assert alone_end - on_at > len(ref)                            # wrapped at least once
    # the fade out: the same raised cosine backwards, the reference going on under it; then the master
    # is back, sample for sample
    w_out = 0.5 - 0.5 * np.cos(np.pi * (1.0 - np.arange(1, FADE + 1) / FADE))[:, None]
    tail = master[alone_end:alone_end + FADE]
    np.testing.assert_allclose(out[alone_end:alone_end + FADE], tail + w_out * (played[alone_end - on_at:] - tail),
                               rtol=0, atol=2e-7)
    assert alone_end + FADE - 1 <= off_end <= alone_end + FADE
    assert np.array_equal(out[off_end:n], master[off_end:n])
    # no click: no step across either fade larger than the steepest step of the signals themselves
    steepest = max(np.abs(np.diff(master[:n], axis=0)).max(), np.abs(np.diff(ref, axis=0)).max() * g)
    assert np.abs(np.diff(out[on_at - 1:on_at + FADE + 1], axis=0)).max() <= steepest
    assert np.abs(np.diff(out[alone_end - 1:off_end + 1], axis=0)).max() <= steepest
    # the recording holds the master throughout, not what was heard
    rec = next((tmp_path / "captures").glob("*.wav"))
    cap, _ = sf.read(str(rec), dtype="float64")
    start = int(np.flatnonzero(np.all(master[:n] == cap[0], axis=1))[0])
    m = min(len(cap), n - start)            # both runs went on for a moment after their last block asked
    assert start < on_at and start + m > off_end
    assert np.array_equal(cap[:m], master[start:start + m])
    assert engine.stats().xruns == 0


def test_refusals_name_the_reason(tmp_path):
    backend = SimBackend(StreamConfig(rate=RATE, period=PERIOD), paced=False)
    engine = Engine(backend, wait_ready=True, realtime=False)
    server = ControlServer(engine, tmp_path / "e.sock")
    bad = server.handle_line(json.dumps({"cmd": "reference", "on": True}).encode())
    assert not bad["ok"] and "no reference track is loaded" in bad["error"]
    junk = tmp_path / "junk.f32"
    junk.write_bytes(b"RIFF" + bytes(5000))
    bad = server.handle_line(json.dumps({"cmd": "reference_load", "path": str(junk)}).encode())
    assert not bad["ok"] and "is not a prepared reference" in bad["error"]
    src = tmp_path / "r.wav"
    write_noise(src, 1.0, seed=3, rate=44100)
    prepare(src, tmp_path / "r44.f32", 44100)
    bad = server.handle_line(json.dumps({"cmd": "reference_load", "path": str(tmp_path / "r44.f32")}).encode())
    assert not bad["ok"] and "prepared at 44100 Hz; the engine runs at 48000 Hz" in bad["error"]
    cut = tmp_path / "cut.f32"
    cut.write_bytes((tmp_path / "r44.f32").read_bytes()[:-8])
    bad = server.handle_line(json.dumps({"cmd": "reference_load", "path": str(cut)}).encode())
    assert not bad["ok"] and "cut short or damaged" in bad["error"]
    prepare(src, tmp_path / "r48.f32", RATE)
    loaded = server.handle_line(json.dumps({"cmd": "reference_load", "path": str(tmp_path / "r48.f32")}).encode())
    assert loaded["ok"] and loaded["reference"]["integrated_lufs"] is not None
    assert "spectrum" not in loaded["reference"]                   # the page's, read from the file: not in status
    for gain in (40, "loud", True):
        bad = server.handle_line(json.dumps({"cmd": "reference", "on": True, "gain_db": gain}).encode())
        assert not bad["ok"] and "gain_db must be a number of dB in -24..24" in bad["error"]
    assert engine.reference_status()["on"] is False                # nothing changed by a refusal


@pytest.mark.realtime  # a paced engine process: the match is taken from its live meters
def test_a_capture_becomes_the_reference_and_is_heard_at_the_masters_loudness(tmp_path):
    import pyloudnorm

    from firmware.captures import CaptureIndex
    from firmware.control import Control
    from firmware.control_client import EngineClient

    sink = tmp_path / "out.wav"
    folder = tmp_path / "captures"
    folder.mkdir()
    # a loud, steady record (turned down to the master, so its peaks never need the ceiling; steady, so
    # the part heard is as loud as the whole the match is taken from)
    write_noise(folder / "record.wav", 20, seed=7, rate=44100, level=0.2)
    proc = subprocess.Popen(engine_cmd("--backend", "sim", "--wait-ready", "--duration", "20", "--output",
                                       str(sink)),
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    control = Control(captures=CaptureIndex(folder), engine=EngineClient(timeout=5.0), watch=False)
    try:
        client = EngineClient()
        wait_for(lambda: _status(client).get("state") == "running", 240, what="the engine")
        loaded = control.reference.load("record")
        assert loaded["ok"], loaded
        prepared = loaded["reference"]["prepared"]
        assert prepared["rate"] == 48000 and prepared["source_rate"] == 44100 and not prepared["truncated"]
        ours = sf.read(str(folder / "record.wav"))[0]
        assert prepared["integrated_lufs"] == pytest.approx(pyloudnorm.Meter(44100).integrated_loudness(ours),
                                                            abs=0.2)
        time.sleep(max(0.0, 6.0 - _status(client)["uptime_s"]))    # six seconds of master measured
        period = _status(client)["device"]["period"]
        b0 = _status(client)["blocks"]
        on = control.reference.switch(True)
        b1 = _status(client)["blocks"]
        ref = on["reference"]["engine"]
        assert ref["on"] and ref["matched_to"] == "integrated" and ref["short_by_db"] is None
        assert ref["gain_db"] == pytest.approx(ref["master_lufs"] - prepared["integrated_lufs"], abs=0.01)
        assert ref["gain_db"] < 0
        wait_for(lambda: _status(client)["reference"]["position_s"] > 6.0, 30, what="6 s of the reference")
        b2 = _status(client)["blocks"]
        off = control.reference.switch(False)
        assert off["reference"]["engine"]["on"] is False
        time.sleep(1.0)
        assert _status(client)["reference"]["heard"] is False
        client.stop_engine()
        proc.communicate(timeout=30)
    finally:
        control.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    out, rate = sf.read(str(sink))
    meter = pyloudnorm.Meter(rate)
    master = meter.integrated_loudness(out[:b0 * period])
    heard = out[b1 * period + 2 * FADE:b2 * period]                     # after the 50 ms fade, before the switch back
    assert meter.integrated_loudness(heard) == pytest.approx(master, abs=0.5)
    # what was heard is the record itself, turned down by the match
    assert meter.integrated_loudness(heard) == pytest.approx(prepared["integrated_lufs"] + ref["gain_db"], abs=0.1)


def _status(client) -> dict:
    try:
        return client.status()
    except Exception:  # noqa: BLE001 - not up yet
        return {}
