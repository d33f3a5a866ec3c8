"""The loop itself, in process, on the simulated backend with the real chain.

Start-up (dry audio at once, then a click-free crossfade to the chain), whole parameter sets
applied at block boundaries, figures. The chain factory is wrapped only to hold the chain
back (as a slow first compile would) or to watch what the loop hands it.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import soundfile as sf

from dsp import schema
from dsp.chain import Chain
from firmware.engine import Engine, percentiles_from_histogram, prepare_flat
from firmware.meters_shm import MeterPublisher, MeterReader, MeterWriter
from firmware.watchdog import describe_meters
from hw.audio import StreamConfig
from hw.audio.sim import SimBackend

RATE = 48000
PERIOD = 128


def _sine_source(path, seconds=2.0, freq=997.0, amp=0.5):
    t = np.arange(int(seconds * RATE)) / RATE
    x = amp * np.sin(2 * np.pi * freq * t)
    sf.write(str(path), np.stack([x, 0.8 * x], axis=1), RATE, subtype="FLOAT")


def _run_in_thread(engine: Engine, **kw) -> threading.Thread:
    th = threading.Thread(target=lambda: engine.run(**kw), daemon=True)
    th.start()
    return th


def _wait(pred, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _held_back_chain(gate: threading.Event):
    """A chain factory that waits for ``gate``: a first compile that takes as long as the test likes."""
    Chain(RATE, 2, PERIOD).process(np.zeros((PERIOD, 2)), np.zeros((PERIOD, 2)))  # kernels loaded: no compile

    def slow_chain(rate, max_block):
        gate.wait(30)
        return Chain(rate, 2, max_block)

    return slow_chain


def test_dry_audio_at_once_then_click_free_crossfade_to_the_chain(tmp_path):
    src, sink = tmp_path / "src.wav", tmp_path / "sink.wav"
    _sine_source(src)
    gate = threading.Event()
    slow_chain = _held_back_chain(gate)

    # unpaced: every block is kept (pacing is tested below and on the JACK rig)
    backend = SimBackend(StreamConfig(rate=RATE, period=PERIOD, format="FLOAT_LE"), source=src, sink=sink,
                         paced=False)
    engine = Engine(backend, {"out.drive_db": 6.0, "lim.ceiling_dbtp": -3.0}, chain_factory=slow_chain,
                    realtime=False)
    th = _run_in_thread(engine)
    _wait(lambda: engine.dry_blocks >= 40)
    assert engine.state == "loading"
    gate.set()
    _wait(lambda: engine.chain is not None and engine.blocks > engine.dry_blocks + 600)
    engine.request_stop()
    th.join(10)
    stats = engine.stats().as_dict()
    assert stats["startup_s"]["first_audio_s"] < 0.5  # dry audio while the chain was held back
    assert stats["xruns"] == 0
    out, _ = sf.read(str(sink), dtype="float64", always_2d=True)
    x, _ = sf.read(str(src), dtype="float64", always_2d=True)
    n_dry = engine.dry_blocks * PERIOD
    looped = np.tile(x, (n_dry // len(x) + 1, 1))[:n_dry]
    assert np.array_equal(out[:n_dry], looped)  # dry = the (looped) input, untouched
    # no click: across the fade (50 ms) no sample-to-sample step is larger than the steepest
    # step of the dry sine before it or of the processed (louder, limited) sine after it
    fade = out[n_dry - 1:n_dry + 2400 + 1]
    tail = out[n_dry + 4800:]
    worst_fade = np.abs(np.diff(fade, axis=0)).max()
    worst_either = max(np.abs(np.diff(out[:n_dry], axis=0)).max(), np.abs(np.diff(tail, axis=0)).max())
    assert worst_fade <= 1.05 * worst_either, (worst_fade, worst_either)
    # after the fade the output is the chain's: 6 dB drive into a -3 dBTP ceiling
    assert 10 ** (-4 / 20) < np.abs(tail).max() < 10 ** (-2.5 / 20)
    assert engine.state == "stopped"


def test_xruns_of_the_dry_start_up_are_counted_apart(tmp_path):
    """``xruns_loading``: the xruns before the chain took over; later ones only add to ``xruns``."""
    gate = threading.Event()
    backend = SimBackend(StreamConfig(rate=RATE, period=PERIOD), programme_seconds=2.0)   # paced
    engine = Engine(backend, chain_factory=_held_back_chain(gate), realtime=False)
    th = _run_in_thread(engine)
    try:
        _wait(lambda: engine.dry_blocks >= 20)
        engine.stall_once(0.05)                      # late by more than the buffer: an xrun, while dry
        _wait(lambda: backend.xruns >= 1)
        st = engine.status()
        assert st["state"] == "loading" and st["xruns_loading"] == st["xruns"] >= 1
        gate.set()
        _wait(lambda: engine.chain is not None)
        loading = engine.status()["xruns_loading"]
        assert loading >= 1
        before = backend.xruns
        engine.stall_once(0.05)                      # and one with the chain running
        _wait(lambda: backend.xruns > before)
        st = engine.status()
        assert st["state"] == "running" and st["xruns_loading"] == loading and st["xruns"] > loading
        # the shared meters (the Live page, `systemctl status`) carry the same split
        writer = MeterWriter(tmp_path / "meters.shm")
        writer.publish(MeterPublisher(engine, writer).snapshot())
        m = MeterReader(tmp_path / "meters.shm").read()
        assert m["xruns_loading"] == loading and m["xruns"] == st["xruns"]
        assert describe_meters(str(tmp_path / "meters.shm"))().endswith(f"xruns {st['xruns']} ({loading} at start)")
        writer.close()
        engine.request_stop()
        th.join(10)
        assert engine.stats().as_dict()["xruns_loading"] == loading
    finally:
        gate.set()
        engine.request_stop()


def test_a_parameter_set_is_applied_whole_at_a_block_boundary(tmp_path):
    applied: list[np.ndarray] = []
    whole: list[bool] = []
    ids = [schema.INDEX[f"eq{n}.gain_db"] for n in (1, 2, 3)]

    class WatchedChain(Chain):
        def load_flat(self, prepared):  # what the loop calls for every set (one copy)
            super().load_flat(prepared)
            # what the kernel will read: the chain's whole target, right after the copy
            applied.append(self._par[0][ids].copy())
            whole.append(np.array_equal(self._par[0], prepared))

    backend = SimBackend(StreamConfig(rate=RATE, period=PERIOD), source=None, sink=None, paced=False,
                         programme_seconds=2.0)
    engine = Engine(backend, chain_factory=lambda r, m: WatchedChain(r, 2, m), wait_ready=True, realtime=False)
    th = _run_in_thread(engine)
    _wait(lambda: engine.blocks > 10)
    rng = np.random.default_rng(0)
    for _ in range(300):
        g = float(rng.uniform(-12, 12))
        engine.set_params({"eq1.gain_db": g, "eq2.gain_db": g, "eq3.gain_db": g})
        time.sleep(0.0005)
    # a refused set changes nothing at all
    with pytest.raises(schema.SchemaErrors):
        engine.set_params({"eq1.gain_db": 1.0, "eq2.gain_db": 99.0})
    before = len(applied)
    time.sleep(0.05)
    engine.request_stop()
    th.join(10)
    assert len(applied) > 50
    assert all(a[0] == a[1] == a[2] for a in applied), "a set was split across blocks"
    assert all(whole), "the chain's target was not exactly the published set"
    assert engine.values["eq1.gain_db"] != 1.0
    assert len(applied) == before  # nothing new arrived after the refused set


def test_prepare_flat_checks_and_clamps_off_the_loop_what_set_flat_would_in_it():
    """The control thread's half of a set: the loop's load_flat then gives set_flat's target exactly."""
    rng = np.random.default_rng(4)
    lo = np.array([p.min for p in schema.PARAMS])
    hi = np.array([p.max for p in schema.PARAMS])
    raw = rng.uniform(lo - 0.5 * (hi - lo), hi + 0.5 * (hi - lo))  # many values out of range
    a, b = Chain(RATE, 2, 64), Chain(RATE, 2, 64)
    ready = prepare_flat(raw)
    assert ready is not raw and ready.flags.c_contiguous and ready.dtype == np.float64
    a.set_flat(raw)
    b.load_flat(ready)
    assert np.array_equal(a.flat(), b.flat())
    assert np.all((ready >= lo) & (ready <= hi))
    for bad in (np.full(schema.COUNT, np.nan), np.zeros(schema.COUNT + 1), [1.0, 2.0]):
        with pytest.raises(ValueError, match="finite numbers"):
            prepare_flat(bad)


def test_paced_simulation_runs_in_real_time_and_reports_its_figures(tmp_path):
    backend = SimBackend(StreamConfig(rate=RATE, period=PERIOD, periods=2), programme_seconds=3.0)
    engine = Engine(backend, wait_ready=True, realtime=False)
    t0 = time.monotonic()
    stats = engine.run(duration=1.0).as_dict()
    wall = time.monotonic() - t0 - stats["startup_s"]["device_open_s"]
    for key in ("xruns", "blocks", "block_time_us", "max_load", "latency_samples", "io_latency_samples",
                "dropouts", "device_errors"):
        assert key in stats
    assert set(stats["block_time_us"]) == {"p50", "p99", "p999", "max"}
    assert 0.95 <= wall <= 1.3
    # a late block (this test runs without real-time priority) is dropped and counted
    assert abs(stats["blocks"] + 2 * stats["xruns"] - RATE / PERIOD) <= 10, stats
    assert stats["io_latency_samples"] == 2 * PERIOD
    assert stats["latency_samples"] == Chain(RATE, 2, PERIOD).latency_samples
    assert 0 < stats["max_load"] < 1
    assert stats["block_time_us"]["p50"] <= stats["block_time_us"]["p99"] <= stats["block_time_us"]["p999"]


def test_percentiles_from_histogram():
    h = np.zeros(100, dtype=np.int64)
    h[10] = 98
    h[50] = 1
    h[90] = 1
    assert percentiles_from_histogram(h, (0.5, 0.99, 1.0)) == [10.0, 50.0, 90.0]
    assert percentiles_from_histogram(np.zeros(5, dtype=np.int64)) == [None, None, None]


def test_the_engine_starts_without_importing_scipy():
    """Loading the chain used to import all of scipy.linalg for numba's BLAS probe (no kernel uses BLAS):
    ~0.25 s of CPU at every engine start, holding the interpreter lock while the dry start-up's loop
    waited for it. A fresh engine process, dry start then the chain, never imports scipy.linalg now (the probe's
    ``import scipy.linalg.cython_blas`` still imports the top-level ``scipy`` package, a few milliseconds)."""
    import subprocess
    import sys
    from pathlib import Path

    script = """
import sys
from firmware.engine import Engine
from hw.audio import StreamConfig
from hw.audio.sim import SimBackend
engine = Engine(SimBackend(StreamConfig(rate=48000, period=128), programme_seconds=1.0), realtime=False)
engine.run(duration=3.0)
print("dry blocks", engine.dry_blocks > 0, "processed", engine.chain is not None,
      "scipy.linalg", any(m.startswith("scipy.linalg") for m in sys.modules))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[0] == "dry blocks True processed True scipy.linalg False", proc.stdout
