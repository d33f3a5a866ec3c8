"""The spectrum analyser: band levels against scipy's periodogram and against theory (sines, pink and
white noise), and the engine's audio ring (firmware/scope_shm.py) read whole, in order and never torn."""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import struct
import time

import numpy as np
import pytest
from scipy import signal

from firmware import scope_shm
from firmware.scope_shm import ScopeReader, ScopeWriter
from firmware.spectrum import FLOOR_DB, BandLayout, SpectrumAnalyser, band_centres, fft_size

RATES = (44100, 48000, 88200, 96000)


def _sine(rate, n, freq, amp, phase=0.3):
    return amp * np.sin(2 * np.pi * freq * np.arange(n) / rate + phase)


def _pink(n, seed):
    """Noise with power proportional to 1/f (shaped in the frequency domain; DC removed)."""
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec))
    spec[1:] /= np.sqrt(f[1:])
    spec[0] = 0
    return np.fft.irfft(spec, n)


def _fill(writer, x_in, y_out):
    """What the engine's tap does, block by block (numpy here: the reader must not care)."""
    cap = writer.ring.shape[0]
    for k in range(0, len(x_in), 128):
        n = min(128, len(x_in) - k)
        rows = (writer.head[0] + np.arange(n)) % cap
        writer.ring[rows, 0:2] = x_in[k:k + n]
        writer.ring[rows, 2:4] = y_out[k:k + n]
        writer.head[0] += n


def test_bands_cover_20_hz_to_20_khz_in_sixth_octaves():
    c = band_centres()
    assert c[0] <= 20 * 2 ** (1 / 12) and c[-1] >= 20000 / 2 ** (1 / 12)
    assert c[0] > 20 / 2 ** (1 / 12) and c[-1] < 20000 * 2 ** (1 / 12)
    assert np.allclose(np.diff(np.log2(c)), 1 / 6) and 1000.0 in np.round(c, 6)
    for rate in RATES:
        n = fft_size(rate)
        assert n & (n - 1) == 0 and 0.6 * rate <= n < 1.2 * rate
        lay = BandLayout(rate)
        assert np.all(lay.last > lay.first)          # every band holds a bin, the lowest too


@pytest.mark.parametrize("rate", RATES)
def test_band_powers_equal_scipy_periodogram_sums(rate):
    """Oracle: scipy's Hann periodogram (density), its bins picked by frequency, times the bin width."""
    lay = BandLayout(rate)
    rng = np.random.default_rng(rate)
    x = rng.standard_normal(lay.n) * 0.1 + _sine(rate, lay.n, 997.0, 0.3)
    f, psd = signal.periodogram(x, fs=rate, window="hann", scaling="density", detrend=False)
    half = 2 ** (1 / 12)
    want = np.array([psd[(f >= c / half) & (f < c * half)].sum() * (f[1] - f[0]) for c in lay.centres])
    got = lay.band_powers(x[None, :])[0]
    assert np.allclose(got, want, rtol=1e-9, atol=0)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("freq", [100.0, 1000.0, 10000.0])
def test_a_sine_reads_its_peak_level_in_its_band(rate, freq):
    lay = BandLayout(rate)
    k = int(np.argmin(abs(lay.centres - freq)))
    f0 = lay.centres[k]
    for amp_db in (0.0, -20.0, -60.0):
        x = _sine(rate, lay.n, f0, 10 ** (amp_db / 20))
        p = lay.band_powers(x[None, :])[0]
        level = 10 * np.log10(np.maximum(2 * p, 1e-300))
        assert abs(level[k] - amp_db) < 0.05, (f0, amp_db, level[k])
        # Hann leakage stays out of the neighbouring 1/6 octaves
        assert level[k - 1] < amp_db - 30 and level[k + 1] < amp_db - 30


def _slope_db_per_octave(lay, p):
    sel = (lay.centres >= 40) & (lay.centres <= 16000)
    return np.polyfit(np.log2(lay.centres[sel]), 10 * np.log10(p[sel]), 1)[0]


def test_pink_noise_is_flat_and_white_noise_rises_3_db_per_octave():
    rate = 48000
    lay = BandLayout(rate)
    pinks = np.array([lay.band_powers(_pink(lay.n, s)[None, :])[0] for s in range(8)]).mean(axis=0)
    whites = np.array([lay.band_powers(np.random.default_rng(s).standard_normal(lay.n)[None, :])[0]
                       for s in range(8)]).mean(axis=0)
    assert abs(_slope_db_per_octave(lay, pinks)) < 0.15
    assert abs(_slope_db_per_octave(lay, whites) - 10 * math.log10(2)) < 0.15


def test_analyser_mid_side_and_bad_samples(tmp_path):
    rate = 48000
    w = ScopeWriter(rate, tmp_path / "scope.shm")
    an = SpectrumAnalyser(ScopeReader(tmp_path / "scope.shm"), min_interval=0)
    assert an.latest() is None                           # nothing written yet
    n = fft_size(rate) + 5000
    s = _sine(rate, n, 1000.0, 0.5)
    x_in = np.stack([s, s], axis=1)                      # mono: no side
    y_out = np.stack([s, -s], axis=1) * 0.1              # all side, -20 dB
    _fill(w, x_in, y_out)
    r = an.latest()
    k = r["bands_hz"].index(1000.0)
    assert r["rate"] == rate and r["fft_size"] == fft_size(rate) and len(r["bands_hz"]) == 61
    assert abs(r["in_mid_db"][k] - 20 * math.log10(0.5)) < 0.1
    assert abs(r["out_side_db"][k] - 20 * math.log10(0.05)) < 0.1
    assert max(r["out_mid_db"]) == FLOOR_DB              # L = -R: nothing in the mid
    # NaN and infinities (a broken input) are drawn as silence, never as NaN in JSON
    bad = np.full((2000, 2), np.nan)
    bad[::3] = np.inf
    _fill(w, bad, bad)
    r = an.latest()
    assert all(math.isfinite(v) for key in ("in_mid_db", "out_mid_db", "out_side_db") for v in r[key])
    w.close()
    assert an.latest() is None                           # the engine stopped: the file is gone


def test_analyses_are_shared_between_callers(tmp_path):
    w = ScopeWriter(48000, tmp_path / "scope.shm")
    calls = []

    class Counting(ScopeReader):
        def latest(self, frames):
            calls.append(frames)
            return super().latest(frames)

    _fill(w, np.ones((fft_size(48000), 2)) * 0.1, np.ones((fft_size(48000), 2)) * 0.1)
    an = SpectrumAnalyser(Counting(tmp_path / "scope.shm"), min_interval=60)
    first = an.latest()
    n = len(calls)
    assert first is not None and all(an.latest() is first for _ in range(20)) and len(calls) == n
    w.close()


def test_reader_wraps_refuses_and_goes_quiet(tmp_path, monkeypatch):
    path = tmp_path / "scope.shm"
    assert ScopeReader(path).latest(100) is None          # no file
    w = ScopeWriter(44100, path)
    r = ScopeReader(path)
    cap = w.ring.shape[0]
    assert cap == scope_shm.ring_frames(44100)
    with pytest.raises(ValueError):
        r.latest(cap // 2 + 1)
    ramp = np.arange(3 * cap + 77, dtype=np.float64)      # wraps the ring three times
    _fill(w, np.stack([ramp, -ramp], 1), np.stack([ramp + 0.5, ramp], 1))
    rate, got = r.latest(1000)
    want = ramp[-1000:]
    assert rate == 44100 and got.shape == (1000, 4)
    assert np.array_equal(got[:, 0], want.astype(np.float32)) and np.array_equal(got[:, 1], -want.astype(np.float32))
    assert np.array_equal(got[:, 2], (want + 0.5).astype(np.float32))
    # nothing new for longer than STALL_S: a stopped engine is not shown as live
    monkeypatch.setattr(ScopeReader, "STALL_S", 0.05)
    time.sleep(0.1)
    assert r.latest(1000) is None
    _fill(w, np.zeros((128, 2)), np.zeros((128, 2)))
    assert r.latest(1000) is not None
    # a dead writer and a foreign file read as nothing
    raw = bytearray(path.read_bytes())
    struct.pack_into("<q", raw, 32, 2 ** 22 + 12345)
    (tmp_path / "dead.shm").write_bytes(bytes(raw))
    assert ScopeReader(tmp_path / "dead.shm").latest(100) is None
    raw[:8] = b"NOTSCOPE"
    (tmp_path / "foreign.shm").write_bytes(bytes(raw))
    assert ScopeReader(tmp_path / "foreign.shm").latest(100) is None
    w.close()
    assert not path.exists()


def _ramp_writer(path, seconds):
    """The engine's two copies as fast as they go (the loop's tap into its own ring, the publisher's
    copy into the file, after every 1-300 blocks): every sample is its own frame number (mod 2^24)."""
    from dsp.scope_tap import publish, tap_block

    w = ScopeWriter(48000, path)
    own, head, done = np.zeros_like(w.ring), np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
    block = np.zeros((64, 2))
    rng = np.random.default_rng(7)
    k = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(int(rng.integers(1, 300))):
            block[:, 0] = block[:, 1] = (k + np.arange(64)) % (1 << 24)
            tap_block(own, head, block, block)
            k += 64
        publish(own, head, w.ring, w.head, done)
    w.close(remove=False)


def test_reader_never_returns_a_torn_window(tmp_path):
    path = tmp_path / "scope.shm"
    p = mp.get_context("spawn").Process(target=_ramp_writer, args=(str(path), 3.0))
    p.start()
    r = ScopeReader(path)
    deadline = time.monotonic() + 60
    seen = 0
    try:
        while p.is_alive() or seen == 0:
            assert time.monotonic() < deadline
            got = r.latest(32768)
            if got is None:
                continue
            col = got[1][:, 2]
            # consecutive frame numbers: one lap of the ring, not pieces of two
            step = np.diff(col) % (1 << 24)
            assert np.all(step == 1), np.flatnonzero(step != 1)[:5]
            seen += 1
    finally:
        p.join()
    assert seen > 10
    os.unlink(path)


def test_an_engine_restarted_at_another_rate_is_followed(tmp_path):
    """The control process outlives engines: a new one at another rate replaces the file."""
    path = tmp_path / "scope.shm"
    an = SpectrumAnalyser(ScopeReader(path), min_interval=0)
    for rate in (96000, 44100, 88200, 48000):
        w = ScopeWriter(rate, path)
        n = fft_size(rate)
        s = _sine(rate, n, 1000.0, 0.5)
        _fill(w, np.stack([s, s], 1), np.stack([s, s], 1))
        r = an.latest()
        assert r["rate"] == rate and r["fft_size"] == n, rate
        assert abs(r["out_mid_db"][r["bands_hz"].index(1000.0)] - 20 * math.log10(0.5)) < 0.1
        w.close(remove=False)             # a killed engine leaves its file; the next one replaces it


def test_publish_copies_what_is_new_and_only_the_newest_ring_after_a_stall():
    from dsp.scope_tap import publish

    cap = 1000
    src, dst = np.zeros((cap, 4), np.float32), np.zeros((cap, 4), np.float32)
    head, dst_head, done = np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64)

    def write(n):                 # what the loop's tap does: frame numbers, wrapping
        for f in range(head[0], head[0] + n):
            src[f % cap] = f
        head[0] += n

    write(300)
    publish(src, head, dst, dst_head, done)
    assert dst_head[0] == 300 and np.array_equal(dst[:300, 0], np.arange(300)) and not dst[300:].any()
    write(2500)                   # the publisher stalled for 2.5 rings' worth
    publish(src, head, dst, dst_head, done)
    assert dst_head[0] == done[0] == 2800
    rows = np.arange(1800, 2800)
    assert np.array_equal(dst[rows % cap, 2], rows.astype(np.float32))


def test_vectorscope_shapes_and_numbers(tmp_path):
    """Mono is a vertical line, left alone leans left, right alone leans right, anti-phase lies flat;
    correlation and side/mid as their definitions give them."""
    from firmware.vectorscope import POINTS, Vectorscope

    rate = 48000
    w = ScopeWriter(rate, tmp_path / "scope.shm")
    vs = Vectorscope(ScopeReader(tmp_path / "scope.shm"), min_interval=0)
    assert vs.latest() is None
    s = _sine(rate, 4800, 440.0, 0.01)
    zero = np.zeros_like(s)
    for left, right, check in (
        (s, s, lambda x, y: np.allclose(x, 0)),                  # mono: side 0
        (s, zero, lambda x, y: np.allclose(y, -x, atol=1e-3)),   # left alone: up-left / down-right
        (zero, s, lambda x, y: np.allclose(y, x, atol=1e-3)),    # right alone: up-right
        (s, -s, lambda x, y: np.allclose(y, 0)),                 # anti-phase: no mid
    ):
        out = np.stack([left, right], axis=1)
        _fill(w, out, out)
        v = vs.latest()
        pts = np.array(v["points"])
        assert v["rate"] == rate and 0 < len(pts) <= POINTS
        assert check(pts[:, 0], pts[:, 1])
        assert np.abs(pts).max() == pytest.approx(0.9, abs=0.002)       # scaled to the display
        # by the peak of mid and side over the 40 ms shown
        lw, rw = left[-1920:], right[-1920:]
        peak = max(np.abs(lw + rw).max(), np.abs(rw - lw).max()) / math.sqrt(2)
        assert v["gain_db"] == pytest.approx(20 * math.log10(0.9 / peak), abs=0.05)
    # the numbers: a wide stereo pair of independent noises (correlation ~0, side = mid)
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((1920, 2)) * 0.1
    _fill(w, noise, noise)
    v = vs.latest()
    tail = noise[-1920:]
    want_corr = float(tail[:, 0] @ tail[:, 1] / np.sqrt((tail[:, 0] @ tail[:, 0]) * (tail[:, 1] @ tail[:, 1])))
    assert v["correlation"] == pytest.approx(want_corr, abs=2e-3)
    mid, side = tail.sum(axis=1), tail[:, 1] - tail[:, 0]
    assert v["side_to_mid_db"] == pytest.approx(10 * math.log10((side @ side) / (mid @ mid)), abs=0.05)
    w.close()
    assert vs.latest() is None


@pytest.mark.parametrize("rate", (44100, 96000))
def test_long_term_spectrum_equals_scipy_welch_whatever_the_chunks(rate):
    """Oracle: scipy's Welch average (Hann, one frame per segment, no overlap), mid and side, its bins
    summed per band; fed in chunks of random sizes."""
    from firmware.spectrum import LongTermSpectrum

    lay = BandLayout(rate)
    rng = np.random.default_rng(7)
    n = lay.n * 5 + 1234                        # five whole frames and a partial one (left out)
    x = np.stack([_pink(n, 1) * 0.2 + _sine(rate, n, 200.0, 0.3), _pink(n, 2) * 0.2], axis=1)
    lts = LongTermSpectrum(rate)
    cuts = sorted({0, n, *rng.integers(1, n, 40).tolist()})
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        lts.add(x[a:b])
    got = lts.levels()
    half = 2 ** (1 / 12)
    for key, sig in (("mid_db", (x[:, 0] + x[:, 1]) / 2), ("side_db", (x[:, 0] - x[:, 1]) / 2)):
        f, psd = signal.welch(sig[:lay.n * 5], fs=rate, window="hann", nperseg=lay.n, noverlap=0,
                              detrend=False, scaling="density")
        want = np.array([psd[(f >= c / half) & (f < c * half)].sum() * (f[1] - f[0]) for c in lay.centres])
        want_db = np.maximum(10 * np.log10(2 * want), FLOOR_DB)
        assert np.allclose(got[key], want_db, atol=0.051, rtol=0), key      # levels are rounded to 0.1 dB


def test_long_term_spectrum_of_a_record_shorter_than_one_frame_keeps_its_levels():
    from firmware.spectrum import LongTermSpectrum

    rate = 48000
    lay = BandLayout(rate)
    k = int(np.argmin(abs(lay.centres - 1000.0)))
    n = int(0.4 * rate)                         # the shortest reference the box takes
    lts = LongTermSpectrum(rate)
    lts.add(np.stack([_sine(rate, n, 1000.0, 0.5)] * 2, axis=1))
    got = lts.levels()
    assert abs(got["mid_db"][k] - 20 * math.log10(0.5)) < 0.5
    assert max(got["side_db"]) == FLOOR_DB      # identical channels: nothing in the side
