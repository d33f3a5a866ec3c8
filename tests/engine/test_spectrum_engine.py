"""The spectrum analyser on a running engine: ``masterbox engine`` (sim backend, the way the box runs
it) fills its audio ring; the analyser, as the control process uses it, shows what the chain's EQ
did, measured against scipy's design of the same bell."""

from __future__ import annotations

import math
import os
import subprocess
import time

import numpy as np
import soundfile as sf
from scipy import signal

from firmware.meters_shm import MeterReader
from firmware.scope_shm import ScopeReader
from firmware.spectrum import SpectrumAnalyser

RATE = 48000
TONES = (100.0, 1000.0)        # one second holds a whole number of cycles of each (the file loops)
BELL = {"freq": 1000.0, "gain_db": 6.0, "q": 1.0}


def _bell_gain_db(freq):
    """Oracle: the RBJ bell as scipy's bilinear transform of its analog prototype (prewarped)."""
    a = 10 ** (BELL["gain_db"] / 40)
    w0 = 2 * RATE * math.tan(math.pi * BELL["freq"] / RATE)
    b, den = [1 / w0 ** 2, a / BELL["q"] / w0, 1], [1 / w0 ** 2, 1 / (a * BELL["q"]) / w0, 1]
    bz, az = signal.bilinear(b, den, fs=RATE)
    _, h = signal.freqz(bz, az, worN=[freq], fs=RATE)
    return 20 * math.log10(abs(h[0]))


def _xruns(proc, meters) -> int | None:
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    m = meters.read()
    return None if m is None else m["xruns"]


def _clean_readings(proc, analyser, meters, count: int, timeout: float = 120.0) -> list[dict]:
    """``count`` readings whose window held no xrun.

    This engine runs without real-time priority; on a busy machine it misses periods, and the sim
    card, as a real one, drops the audio of the time lost (counted as an xrun). A jump in the tones'
    phase inside the ~0.7 s window spreads their power over neighbouring bands, so a reading is kept
    only when the engine's xrun count stood still from a second before it (longer than the window)
    until a meters update after it (published at 25 Hz).
    """
    deadline = time.monotonic() + timeout
    history: list[tuple[float, int]] = []          # (when, xruns) of every poll
    readings = []
    while len(readings) < count:
        assert time.monotonic() < deadline, f"{len(readings)} of {count} readings free of xruns"
        before = _xruns(proc, meters)
        at = time.monotonic()
        r = analyser.latest()
        time.sleep(0.2)
        after = _xruns(proc, meters)
        if before is None or after is None:
            continue
        history.append((at, before))
        earlier = [x for t, x in history if t <= at - 1.0]
        if r is not None and earlier and earlier[-1] == before == after:
            readings.append(r)
    return readings


def test_the_analyser_shows_what_the_chain_did(tmp_path, masterbox_cmd):
    t = np.arange(RATE) / RATE
    x = sum(0.1 * np.sin(2 * np.pi * f * t) for f in TONES)
    sf.write(str(tmp_path / "tones.wav"), np.stack([x, x], axis=1), RATE, subtype="FLOAT")
    run = tmp_path / "run"
    sets = [f"eq3.{k}={v}" for k, v in BELL.items()] + ["eq3.on=true", "eq3.type=bell"]
    proc = subprocess.Popen(
        [*masterbox_cmd, "engine", "--backend", "sim", "--input", str(tmp_path / "tones.wav"), "--preset",
         "transparent", *[a for s in sets for a in ("--set", s)], "--wait-ready", "--no-realtime", "--quiet",
         "--socket", str(run / "engine.sock"), "--meters", str(run / "meters.shm"), "--duration", "60"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        analyser = SpectrumAnalyser(ScopeReader(run / "scope.shm"), min_interval=0)
        meters = MeterReader(run / "meters.shm")
        readings = _clean_readings(proc, analyser, meters, 7)
        assert all(r["rate"] == RATE for r in readings)
        med = {key: np.median([r[key] for r in readings], axis=0) for key in ("in_mid_db", "out_mid_db",
                                                                              "out_side_db")}
        for f in TONES:
            k = int(np.argmin(np.abs(np.log(np.array(readings[0]["bands_hz"]) / f))))  # the band holding f
            assert abs(med["in_mid_db"][k] - 20 * math.log10(0.1)) < 0.1, (f, med["in_mid_db"][k])
            # what the bell did to each tone, as scipy designs it (1 kHz: +6 dB; 100 Hz: +0.09 dB)
            assert abs(med["out_mid_db"][k] - med["in_mid_db"][k] - _bell_gain_db(f)) < 0.1, f
        assert max(med["out_side_db"]) < -100           # a mono input stays mono
        os.killpg(proc.pid, 15)
        assert proc.wait(30) == 0
        assert analyser.latest() is None                 # the engine is gone: no spectrum, not a frozen one
        assert not (run / "scope.shm").exists()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait(10)
