"""The meter as a stream: any partition gives identical readings, state stays bounded, the kernel
is callable from other numba code, and undefined values read None.
"""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pyloudnorm
import pytest
from numba import njit
from numba.core.runtime import _nrt_python, rtsys

from dsp.meter import LoudnessMeter, meter_process, meter_reset
from dsp.programme import render_programme
from tests.signals import tone_segments

RATE = 48000


@pytest.fixture(scope="module")
def material() -> np.ndarray:
    return render_programme(4.5, RATE, seed=11)


def _partitioned(x: np.ndarray, sizes, rate=RATE, channels=2) -> tuple[dict, dict]:
    """Readings after 2.5 s and at the end, feeding ``x`` in blocks of ``sizes`` (cycled)."""
    m = LoudnessMeter(rate, channels)
    split = int(2.5 * rate)
    mid = None
    for part in (x[:split], x[split:]):
        pos = 0
        k = 0
        while pos < part.shape[0]:
            n = sizes[k % len(sizes)]
            m.process(part[pos : pos + n])
            pos += n
            k += 1
        if mid is None:
            mid = m.readings()
    return mid, m.readings()


def test_readings_identical_for_any_block_size(material):
    reference = _partitioned(material, [material.shape[0]])
    assert reference[1]["integrated_lufs"] is not None and reference[1]["loudness_range_lu"] is not None
    rng = np.random.default_rng(7)
    partitions = {
        "1": [1],
        "64": [64],
        "128": [128],
        "1000": [1000],
        "4096": [4096],
        "random": list(rng.integers(0, 5000, size=200)),  # includes empty blocks
        "random-small": list(rng.integers(1, 300, size=100)),
    }
    for name, sizes in partitions.items():
        assert _partitioned(material, sizes) == reference, name


@pytest.mark.parametrize("rate", [88200, 192000])
def test_block_size_invariance_at_2x_and_without_oversampling(rate):
    x = render_programme(4.0, rate, seed=3)
    reference = _partitioned(x, [x.shape[0]], rate=rate)
    assert _partitioned(x, [64], rate=rate) == reference
    assert _partitioned(x, [4097, 3, 500], rate=rate) == reference


def test_reset_forgets_everything(material):
    m = LoudnessMeter(RATE, 2)
    m.process(material * 3.0)
    m.reset()
    m.process(material)
    fresh = LoudnessMeter(RATE, 2)
    fresh.process(material)
    assert m.readings() == fresh.readings()


def test_silence_and_short_input_read_none():
    m = LoudnessMeter(RATE, 2)
    assert all(v is None for v in m.readings().values())
    m.process(np.zeros((RATE * 4, 2)))
    assert all(v is None for v in m.readings().values())
    m.reset()
    m.process(tone_segments([(0.35, -20.0)], RATE))  # not yet one 400 ms window
    r = m.readings()
    assert r["momentary_lufs"] is None and r["integrated_lufs"] is None
    assert r["sample_peak_dbfs"] == pytest.approx(-20.0, abs=0.01)
    m.process(tone_segments([(0.1, -20.0)], RATE))
    r = m.readings()
    assert r["momentary_lufs"] == pytest.approx(-20.0, abs=0.1)
    assert r["short_term_lufs"] is None and r["loudness_range_lu"] is None


def test_maxima_plr_and_correlation(material):
    m = LoudnessMeter(RATE, 2)
    hop = RATE // 10
    seen_m, seen_s = [], []
    for k in range(0, material.shape[0], hop):
        m.process(material[k : k + hop])
        r = m.readings()
        if r["momentary_lufs"] is not None:
            seen_m.append(r["momentary_lufs"])
        if r["short_term_lufs"] is not None:
            seen_s.append(r["short_term_lufs"])
    assert r["max_momentary_lufs"] == pytest.approx(max(seen_m), abs=1e-9)
    assert r["max_short_term_lufs"] == pytest.approx(max(seen_s), abs=1e-9)
    assert r["plr_db"] == pytest.approx(r["true_peak_dbtp"] - r["integrated_lufs"], abs=1e-9)
    assert r["true_peak_dbtp"] >= r["sample_peak_dbfs"]

    noise = np.random.default_rng(1).standard_normal((RATE, 2)) * 0.1
    for x, expected, tol in (
        (np.column_stack([noise[:, 0], noise[:, 0]]), 1.0, 1e-9),
        (np.column_stack([noise[:, 0], -noise[:, 0]]), -1.0, 1e-9),
        (noise, 0.0, 0.1),
    ):
        c = LoudnessMeter(RATE, 2)
        c.process(x)
        assert c.readings()["correlation"] == pytest.approx(expected, abs=tol)


def test_true_peak_off_reads_none_for_true_peak_only():
    m = LoudnessMeter(RATE, 2, true_peak=False)
    m.process(tone_segments([(1.0, -10.0)], RATE))
    r = m.readings()
    assert r["true_peak_dbtp"] is None and r["plr_db"] is None
    assert r["sample_peak_dbfs"] == pytest.approx(-10.0, abs=0.01)
    assert r["integrated_lufs"] == pytest.approx(-10.0, abs=0.1)


def test_nan_input_does_not_corrupt_and_reset_recovers():
    m = LoudnessMeter(RATE, 2)
    x = tone_segments([(1.0, -20.0)], RATE)
    x[1000, 0] = math.nan
    m.process(x)
    m.readings()  # must not raise
    m.reset()
    m.process(tone_segments([(1.0, -20.0)], RATE))
    assert m.readings()["integrated_lufs"] == pytest.approx(-20.0, abs=0.1)


@njit(cache=True)
def _meter_in_blocks(x, f, i, block):
    """What the chain kernel does: call the meter kernel once per block from numba code."""
    for start in range(0, x.shape[0], block):
        meter_process(x[start : start + block], f, i)


def test_kernel_is_callable_from_other_numba_code(material):
    m = LoudnessMeter(RATE, 2)
    _meter_in_blocks(material, m.f, m.i, 512)
    direct = LoudnessMeter(RATE, 2)
    direct.process(material)
    assert m.readings() == direct.readings()
    meter_reset(m.f, m.i)
    assert all(v is None for v in m.readings().values())


@njit(cache=True)
def _allocating(n):
    return np.zeros(n)


def _nrt_allocations(fn, *args) -> tuple[int, int]:
    """(allocations, frees) numba's runtime makes while running ``fn(*args)``."""
    before = rtsys.get_allocation_stats()
    fn(*args)
    after = rtsys.get_allocation_stats()
    return after.alloc - before.alloc, after.free - before.free


def test_kernel_never_allocates(material):
    """The chain calls meter_process inside its own kernel, in the audio loop: no allocation allowed.

    Calling from Python costs a fixed number of runtime allocations (wrapping each argument
    array, freed on return); metering 1 or 700 blocks from numba code must cost the same.
    """
    m = LoudnessMeter(RATE, 2)
    _meter_in_blocks(material[:64], m.f, m.i, 64)
    _allocating(1)
    _nrt_python.memsys_enable_stats()
    try:
        assert _nrt_allocations(_allocating, 16)[0] > 0, "the counter must see kernel allocations"
        one = _nrt_allocations(_meter_in_blocks, material[:256], m.f, m.i, 256)
        many = _nrt_allocations(_meter_in_blocks, material, m.f, m.i, 256)
        m.process(material[:100])
        per_call = [_nrt_allocations(m.process, material[k : k + 1000]) for k in range(0, 20000, 1000)]
    finally:
        _nrt_python.memsys_disable_stats()
    assert material.shape[0] // 256 > 700
    assert many == one
    assert one[0] == one[1]
    assert len(set(per_call)) == 1 and per_call[0][0] == per_call[0][1]


def test_three_hour_stream_keeps_memory_flat():
    """Three hours of 48 kHz stereo (a 1 s piece of the demo music fed 10 800 times) with true peak.

    What is measured: the state arrays keep their identity and size; Python-side memory traced
    by tracemalloc does not grow between 10 minutes and 3 hours (numba's own allocations are
    covered by test_kernel_never_allocates); and after 108 000 gating blocks the histogram-based
    integrated loudness still equals pyloudnorm's reading of one minute of the same loop, and
    the loudness range of a 1 s loop (every 3 s window holds three whole periods) is still 0.
    """
    block = render_programme(1.0, RATE, seed=12)
    expected = pyloudnorm.Meter(RATE, filter_class="DeMan").integrated_loudness(np.tile(block, (60, 1)))
    m = LoudnessMeter(RATE, 2)
    f, i, sizes = m.f, m.i, (m.f.size, m.i.size)
    for _ in range(600):
        m.process(block)
    m.readings()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(3 * 3600 - 600):
        m.process(block)
    r = m.readings()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    growth = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert m.frames == 3 * 3600 * RATE
    assert m.f is f and m.i is i and (m.f.size, m.i.size) == sizes
    assert growth < 64 * 1024, f"Python memory grew by {growth} bytes"
    assert r["integrated_lufs"] == pytest.approx(expected, abs=0.1)
    assert r["loudness_range_lu"] == pytest.approx(0.0, abs=0.05)


@pytest.mark.parametrize("rate, hot", [(48000, False), (48000, True), (96000, False)])
def test_true_peak_kernel_equals_a_plain_numpy_convolution(rate, hot):
    """The kernel's chunking, history and chunk skipping change nothing: same peak as filtering
    the whole signal at once with numpy (same interpolator, computed another way)."""
    from dsp.truepeak import interpolator_phases, oversampling_factor

    x = render_programme(6.0, rate, seed=8)
    if hot:
        x = np.clip(3.0 * x, -1.0, 1.0)
    phases = interpolator_phases(oversampling_factor(rate))
    padded = np.vstack([np.zeros((phases.shape[1] - 1, 2)), x])
    expected = np.abs(x).max()
    for c in range(2):
        for p in phases:
            expected = max(expected, np.abs(np.convolve(padded[:, c], p[::-1], "valid")).max())
    m = LoudnessMeter(rate, 2)
    for k in range(0, x.shape[0], 777):
        m.process(x[k : k + 777])
    assert m.readings()["true_peak_dbtp"] == pytest.approx(20 * np.log10(expected), abs=1e-9)


@pytest.fixture(scope="module")
def limited_master() -> np.ndarray:
    """Programme through the `loud` preset driven hard: most blocks hold samples near the ceiling."""
    from dsp.chain import Chain
    from firmware.presets import PresetStore

    x = render_programme(10.0, RATE, seed=3)
    chain = Chain(RATE)
    chain.set_values({**PresetStore().get("loud").params, "out.drive_db": 10.8})
    y = np.zeros_like(x)
    for _ in range(2):  # the second pass runs with the limiter settled
        for i in range(0, len(x), 256):
            chain.process(x[i : i + 256], y[i : i + 256])
    return y


def _true_peak_oracle(x: np.ndarray) -> float:
    """dBTP of the whole stream by scipy's polyphase 4x resampler (not the meter's interpolator)."""
    from scipy.signal import resample_poly

    return 20.0 * math.log10(np.abs(resample_poly(x, 4, 1, axis=0)).max())


def test_restart_mid_stream_reads_no_peak_the_signal_does_not_have(limited_master):
    """The user's "reset meters" while music plays (the engine calls ``restart``): the readings
    start again, and the reset itself never shows an over. A plain ``reset`` in the same places
    does (its interpolator restarts from silence), which shows the places are ones that matter.
    """
    y = limited_master
    truth = _true_peak_oracle(y)
    hop = RATE // 10
    worst = {"restart": -99.0, "reset": -99.0}
    for k in range(hop, len(y) - hop, 256):  # every block boundary of the engine's stream
        for how in worst:
            m = LoudnessMeter(RATE, 2)
            m.process(y[k - hop : k])  # the filters' memory is far shorter than 100 ms
            getattr(m, how)()
            assert m.frames == 0 and m.readings()["true_peak_dbtp"] is None
            m.process(y[k : k + hop])
            worst[how] = max(worst[how], m.readings()["true_peak_dbtp"])
    worst_restart, worst_reset = worst["restart"], worst["reset"]
    print(f"\n    stream true peak {truth:.2f} dBTP (scipy 4x); after a restart the meter read at most "
          f"{worst_restart:.2f}, after a full reset {worst_reset:.2f}")
    assert worst_restart <= truth + 0.05
    assert worst_reset > truth + 0.2


def test_restart_measures_loudness_from_the_restart_on(limited_master):
    """After ``restart`` the integrated loudness is that of the audio since, as pyloudnorm reads it."""
    y = limited_master
    k = int(1.3 * RATE)
    m = LoudnessMeter(RATE, 2)
    m.process(y[:k])
    m.restart()
    m.process(y[k:])
    expected = pyloudnorm.Meter(RATE).integrated_loudness(y[k:])
    assert m.readings()["integrated_lufs"] == pytest.approx(expected, abs=0.05)
