"""The simulated backend: paced like a card, loops its source, writes exactly what it was sent."""

from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile as sf

from hw.audio import OK, XRUN, StreamConfig, make_backend
from hw.audio.formats import quantize


def test_paced_periods_arrive_on_the_clock_and_a_late_loop_is_an_xrun(tmp_path):
    src = tmp_path / "s.wav"
    sf.write(str(src), np.zeros((4800, 2)), 48000)
    b = make_backend("sim", StreamConfig(rate=48000, period=480, periods=2), source=src)
    b.open()
    x = np.zeros((480, 2))
    t0 = time.monotonic()
    for _ in range(20):
        assert b.read(x) == OK
        b.write(x)
    assert 0.19 <= time.monotonic() - t0 <= 0.3  # 20 periods of 10 ms
    time.sleep(0.05)  # the loop falls 5 periods behind
    assert b.read(x) == XRUN and b.xruns == 1 and b.xrun_log[0][1]
    assert b.read(x) == OK


def test_a_loop_woken_later_than_the_buffer_is_an_xrun_too(tmp_path, monkeypatch):
    """The loop waits for its period inside ``read``; woken from that wait 30 ms late (a loaded machine) with
    10 ms of buffer, a card has overrun meanwhile. Until 2026-11-25 the period was handed over as if on
    time: the xrun came a block later (or not at all), and the engine measured the break from that late
    block, so a capture lost the time from its timeline (docs/engine.md, "Captures under load")."""
    from types import SimpleNamespace

    import hw.audio.sim as sim

    src = tmp_path / "s.wav"
    sf.write(str(src), np.zeros((4800, 2)), 48000)
    b = make_backend("sim", StreamConfig(rate=48000, period=480, periods=2), source=src)
    b.open()
    x = np.zeros((480, 2))
    for _ in range(3):
        assert b.read(x) == OK
    overslept = []

    def late_sleep(seconds: float) -> None:   # the backend's wait for its period, woken 3 buffers late
        time.sleep(seconds + 0.03)
        overslept.append(seconds)

    # the backend module's own name for the time module: nothing else oversleeps
    monkeypatch.setattr(sim, "time", SimpleNamespace(monotonic=time.monotonic, sleep=late_sleep))
    assert b.read(x) == XRUN and b.xruns == 1 and len(overslept) == 1
    monkeypatch.setattr(sim, "time", time)
    assert b.read(x) == OK    # the clock restarted from the late wake-up


def test_source_loops_and_sink_holds_the_wire_samples(tmp_path):
    src, sink = tmp_path / "s.wav", tmp_path / "o.wav"
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (300, 2))  # shorter than a period: wraps inside one read
    sf.write(str(src), x, 44100, subtype="FLOAT")
    b = make_backend("sim", StreamConfig(rate=44100, period=512, format="S24_3LE"), source=src, sink=sink,
                     paced=False)
    b.open()
    buf = np.zeros((512, 2))
    for _ in range(4):
        assert b.read(buf) == OK
        b.write(buf)
    b.close()
    out, rate = sf.read(str(sink), dtype="float64", always_2d=True)
    looped = np.tile(x.astype(np.float32).astype(np.float64), (8, 1))[:2048]
    assert rate == 44100 and np.array_equal(out, quantize(looped, "S24_3LE"))


def test_a_source_at_another_rate_is_converted_to_the_streams(tmp_path):
    """A 44.1 kHz mix played by a 48 kHz simulated card (``masterbox demo --input``) is heard at its
    pitch and level, not refused and not played 9 % sharp: one loop lasts the file's duration at the
    new rate, and a 997 Hz tone stays 997 Hz (numpy's FFT as the oracle) at the same amplitude."""
    src = tmp_path / "s.wav"
    t = np.arange(44100) / 44100
    sf.write(str(src), np.stack([0.5 * np.sin(2 * np.pi * 997 * t)] * 2, axis=1), 44100, subtype="FLOAT")
    b = make_backend("sim", StreamConfig(rate=48000, period=480), source=src, paced=False)
    b.open()
    buf, got = np.zeros((480, 2)), []
    for _ in range(200):
        assert b.read(buf) == OK
        got.append(buf.copy())
    both = np.concatenate(got)[:, 0]
    y = both[:48000]
    assert np.array_equal(both[48000:], y)         # the loop is 1 s long at 48 kHz too
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    assert np.argmax(spectrum) * 48000 / len(y) == pytest.approx(997, abs=1.0)
    middle = y[4800:-4800]
    assert np.abs(middle).max() == pytest.approx(0.5, abs=0.5 * 0.002)


def test_demo_programme_is_the_default_source():
    b = make_backend("sim", StreamConfig(rate=48000, period=256), paced=False, programme_seconds=2.0)
    b.open()
    x = np.zeros((256, 2))
    peak = 0.0
    for _ in range(200):
        b.read(x)
        peak = max(peak, float(np.abs(x).max()))
    assert 0.3 < peak <= 1.0
