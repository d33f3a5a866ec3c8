"""Dither: level and spectrum of the added noise at every supported rate (shaping against its own
filter's freqz, in-band noise against flat TPDF with standard weightings, no idle tones), the
word-length grid, the ceiling with shaped 16-bit output, never on float output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from dsp import dither, schema
from dsp.chain import Chain
from dsp.programme import render_programme
from tests.signals import run_chain


def _quantise(x, bits, shaped, rate):
    buf = np.ascontiguousarray(x.copy())
    err = np.zeros((2, dither.MAX_TAPS))
    rng = np.array([12345, 67890], dtype=np.uint64)
    coef = dither.shaping_coefficients(rate)
    dither.quantise(buf, 0, len(buf), bits, shaped, coef, err, rng)
    return buf


def _signal(n, rate, amp=0.1):
    t = np.arange(n) / rate
    s = amp * np.sin(2 * np.pi * 997 * t)
    return np.stack([s, 0.7 * s], axis=1)


@pytest.mark.parametrize("bits", [16, 24])
def test_tpdf_level_and_grid(bits):
    rate, n = 48000, 1 << 18
    x = _signal(n, rate)
    y = _quantise(x, bits, False, rate)
    lsb = 2.0 ** (1 - bits)
    assert np.all(np.abs(y / lsb - np.round(y / lsb)) < 1e-9)          # on the integer grid
    e = (y - x) / lsb
    # rounding (1/12) + TPDF (2/12) = 1/4 LSB^2: 0.5 LSB rms, zero mean, never beyond 1.5 LSB
    assert np.sqrt(np.mean(e ** 2)) == pytest.approx(0.5, rel=0.02)
    assert abs(e.mean()) < 0.01
    assert np.max(np.abs(e)) <= 1.5 + 1e-9
    # TPDF makes the error independent of the signal: no correlation with it
    assert abs(np.corrcoef(e[:, 0], x[:, 0])[0, 1]) < 0.01
    # and spectrally flat
    f, p = signal.welch(e[:, 0], fs=rate, nperseg=4096)
    lo = p[(f > 500) & (f < 5000)].mean()
    hi = p[(f > 15000) & (f < 22000)].mean()
    assert abs(10 * np.log10(hi / lo)) < 0.5


RATES = (44100, 48000, 88200, 96000)


def a_weighting(f):
    """IEC 61672 A-weighting (amplitude), normalised to 1 at 1 kHz: the analogue formula."""
    f2 = np.asarray(f, float) ** 2

    def ra(g2):
        return 12194.0 ** 2 * g2 ** 2 / ((g2 + 20.6 ** 2) * np.sqrt((g2 + 107.7 ** 2) * (g2 + 737.9 ** 2))
                                         * (g2 + 12194.0 ** 2))
    return ra(f2) / ra(1e6)


def itu468_weighting(f):
    """ITU-R BS.468-4 noise weighting (amplitude, +12.2 dB at 6.3 kHz): the standard's curve formula."""
    f = np.asarray(f, float)
    h1 = -4.737338981378384e-24 * f ** 6 + 2.043828333606125e-15 * f ** 4 - 1.363894795463638e-7 * f ** 2 + 1
    h2 = 1.306612257412824e-19 * f ** 5 - 2.118150887518656e-11 * f ** 3 + 5.559488023498642e-4 * f
    return 10 ** (18.2 / 20) * 1.246332637532143e-4 * f / np.sqrt(h1 ** 2 + h2 ** 2)


def _ntf_power(rate, f):
    """|H(f)|^2 of the shaping in use: error = (1 - sum c_j z^-(j+1)) q, from scipy's freqz."""
    c = dither.shaping_coefficients(rate)
    _, h = signal.freqz(np.concatenate([[1.0], -c]), worN=f, fs=rate)
    return np.abs(h) ** 2


def _shaped_error_psd(rate, x=None, n=1 << 18):
    x = _signal(n, rate) if x is None else x
    y = _quantise(x, 16, True, rate)
    e = (y - x)[:, 0] * 2.0 ** 15
    return signal.welch(e, fs=rate, nperseg=4096)


@pytest.mark.parametrize("rate", RATES)
def test_noise_shaping_follows_its_filter(rate):
    f, p = _shaped_error_psd(rate)
    want = 0.25 * _ntf_power(rate, f) * 2 / rate     # q: 1/4 LSB^2 white, one-sided PSD
    edges = np.arange(1000, rate / 2 - 1000, 2000.0)
    worst = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        band = (f >= lo) & (f < hi)
        got = 10 * np.log10(p[band].mean() / want[band].mean())
        worst = max(worst, abs(got))
        assert abs(got) < 0.5, (lo, hi, got)
    print(f"{rate} Hz shaped error vs |H|^2: worst 2 kHz band {worst:.2f} dB")


# In-band (20 Hz-20 kHz) noise against flat TPDF (0.25 LSB^2 spread evenly), in dB, measured
# from the dithered error's spectrum: the most each rate's shaping may leave. At 44.1/48 kHz
# there is no room above 20 kHz, so those filters trade 15-22 kHz noise (unweighted in-band they
# are +10/+4 dB) for less at 1-6 kHz: only a hearing weighting shows their gain (BS.468).
IN_BAND_MAX_DB = {  # rate: (unweighted, A-weighted, BS.468-weighted); None = not a promise
    44100: (None, None, -2.5),
    48000: (None, None, -5.0),
    88200: (-12.0, -15.0, -17.0),
    96000: (-12.0, -15.0, -17.0),
}


@pytest.mark.parametrize("rate", RATES)
def test_in_band_noise_is_below_flat_tpdf(rate):
    f, p = _shaped_error_psd(rate)
    band = (f >= 20) & (f <= 20000)
    flat = 0.25 * 2 / rate
    got = []
    for weight in (None, a_weighting, itu468_weighting):
        w = 1.0 if weight is None else weight(f[band]) ** 2
        got.append(10 * np.log10(np.sum(w * p[band]) / np.sum(w * flat * np.ones(band.sum()))))
    total = 10 * np.log10(np.trapezoid(p, f) / 0.25)
    print(f"{rate} Hz in-band vs TPDF: unweighted {got[0]:+.1f}, A {got[1]:+.1f}, BS.468 {got[2]:+.1f} dB; "
          f"total {total:+.1f} dB")
    for g, most in zip(got, IN_BAND_MAX_DB[rate], strict=True):
        if most is not None:
            assert g < most, (rate, got)
    if rate >= 88200:
        # the noise went above 20 kHz, and not without bound: total power at most +12 dB
        assert 5.0 < total < 12.5, total


def _tone_peaks_db(x, rate):
    """Largest excess (dB) of the output's welch spectrum over the shaped-noise theory, at any
    bin outside +-150 Hz of the 1 kHz test tone (its window skirt reaches ~100 Hz above the deep
    in-band noise floor): an idle tone or a limit cycle shows as a spike."""
    y = _quantise(x, 16, True, rate)[:, 0] * 2.0 ** 15
    f, p = signal.welch(y, fs=rate, nperseg=8192)
    want = 0.25 * _ntf_power(rate, f) * 2 / rate
    keep = (np.abs(f - 1000) > 150) & (f > 30)
    return float(np.max(10 * np.log10(p[keep] / want[keep])))


@pytest.mark.parametrize("rate", RATES)
def test_no_idle_tones_on_silence_or_a_low_level_sine(rate):
    n = 1 << 19
    silence = np.zeros((n, 2))
    t = np.arange(n) / rate
    quiet = np.repeat((0.7 * 2.0 ** -15 * np.sin(2 * np.pi * 1000 * t))[:, None], 2, axis=1)
    peaks = _tone_peaks_db(silence, rate), _tone_peaks_db(quiet, rate)
    print(f"{rate} Hz largest excess over the shaped-noise theory: silence {peaks[0]:.2f} dB, "
          f"0.7 LSB sine {peaks[1]:.2f} dB")
    assert max(peaks) < 2.5
    # the check can fail: the same quiet sine rounded without dither is all harmonics
    plain = np.round(quiet[:, 0] * 2.0 ** 15)
    f, p = signal.welch(plain + 1e-9, fs=rate, nperseg=8192)
    h3 = np.argmin(np.abs(f - 3000))
    assert 10 * np.log10(p[h3] / (0.25 * 2 / rate)) > 20


def test_shaping_is_designed_for_every_supported_rate_and_flat_elsewhere():
    for rate in RATES:
        c = dither.shaping_coefficients(rate)
        ntf = np.concatenate([[1.0], -c])
        assert np.any(c)
        assert np.max(np.abs(np.roots(ntf))) < 0.97            # minimum phase, well damped
        assert 1.5 * np.sum(np.abs(ntf)) < 16                  # worst-case added error, LSB
    for rate in (32000, 64000, 176400, 192000):                # nothing designed for these: flat
        assert not np.any(dither.shaping_coefficients(rate))


@pytest.mark.parametrize("rate", RATES)
def test_shaped_16_bit_chain_output_holds_the_ceiling(rate):
    """Loud programme at a 0 dBTP ceiling through the whole chain: the shaped 16-bit output is on
    the grid, never clamped at full scale, its true peak within the limiter's promise, and its
    difference from the float render is the shaped noise (not clipping)."""
    x = np.ascontiguousarray(render_programme(3.0, rate, seed=2, peak_dbfs=-1.0))
    vals = {"dither.mode": "shaped", "dither.bits": "16", "lim.ceiling_dbtp": 0.0, "out.drive_db": 12.0}
    outs = []
    for bits in (None, 16):
        c = Chain(rate, max_block=1024)
        c.set_values(vals)
        if bits:
            c.set_output_bits(bits)
        outs.append(run_chain(c, x))
    yf, y = outs
    lsb = 2.0 ** -15
    assert np.all(np.abs(y / lsb - np.round(y / lsb)) < 1e-9)
    assert np.max(np.abs(y)) < 1.0 - lsb                         # the clamp never engaged
    up = signal.resample_poly(y, 16, 1, axis=0, window=("kaiser", 10.0))
    assert 20 * np.log10(np.max(np.abs(up))) <= 0.1
    e = (y - yf)[:, 0] / lsb
    assert np.max(np.abs(e)) <= 1.5 * np.sum(np.abs(np.concatenate([[1.0], dither.shaping_coefficients(rate)])))
    f, p = signal.welch(e, fs=rate, nperseg=2048)
    want = 0.25 * _ntf_power(rate, f) * 2 / rate
    for lo, hi in ((1000, 5000), (rate / 2 - 8000, rate / 2 - 2000)):
        band = (f >= lo) & (f < hi)
        assert abs(10 * np.log10(p[band].mean() / want[band].mean())) < 1.0, (lo, hi)


def test_chain_dithers_only_when_the_output_is_quantised():
    rate = 48000
    x = np.ascontiguousarray(_signal(rate, rate))
    c = Chain(rate)
    c.set_values({"dither.mode": "tpdf"})
    y = run_chain(c, x)
    L = c.latency_samples
    assert np.array_equal(y[L:], x[:-L])                       # float output: untouched
    c = Chain(rate)
    c.set_values({"dither.mode": "tpdf"})
    c.set_output_bits(16)
    y = run_chain(c, x)
    lsb = 2.0 ** -15
    assert np.all(np.abs(y / lsb - np.round(y / lsb)) < 1e-9)
    assert np.sqrt(np.mean(((y[L:] - x[:-L]) / lsb) ** 2)) == pytest.approx(0.5, rel=0.05)
    c = Chain(rate)
    c.set_values({"dither.mode": "off"})
    c.set_output_bits(16)
    assert np.array_equal(run_chain(c, x)[L:], x[:-L])               # off means off
    # dither.bits = 16 on a 24-bit output quantises to 16 bits; a 16-bit output never to 24
    c = Chain(rate)
    c.set_values({"dither.mode": "tpdf", "dither.bits": "16"})
    c.set_output_bits(24)
    y = run_chain(c, x)
    assert np.all(np.abs(y / lsb - np.round(y / lsb)) < 1e-9)
    with pytest.raises(ValueError):
        c.set_output_bits(8)


@pytest.mark.parametrize("mode", ["tpdf", "shaped"])
def test_digital_silence_stays_digital_silence_from_the_threshold_on(mode):
    """Exact zeros reaching the dither: the first BLANK_AFTER - 1 are dithered, the rest written as zeros."""
    rate, B = 48000, dither.BLANK_AFTER
    tone = _signal(rate // 2, rate)
    short_gap, long_gap = np.zeros((B - 1, 2)), np.zeros((B + 500, 2))
    x = np.ascontiguousarray(np.vstack([tone, short_gap, tone, long_gap, tone]))
    c = Chain(rate, max_block=1024)
    c.set_values({"dither.mode": mode})                # nothing else on: zeros pass through exactly
    c.set_output_bits(16)
    y = run_chain(c, x)
    L = c.latency_samples
    yy = y[L:]
    s1 = len(tone)                                     # where the short gap starts (in the input's time)
    s2 = s1 + len(short_gap) + len(tone)               # where the long gap starts
    assert np.count_nonzero(yy[s1:s1 + B - 1]) > 1000  # 4095 zeros: still dither noise all through
    assert np.count_nonzero(yy[s2:s2 + B - 1]) > 1000  # the long gap's first 4095 too
    assert not np.any(yy[s2 + B - 1:s2 + len(long_gap)])        # from the 4096th zero on: digital black
    resumed = yy[s2 + len(long_gap):]                   # the tone again, dithered, with no burst
    lsb = 2.0 ** -15
    err = (resumed - x[s2 + len(long_gap):len(x) - L]) / lsb
    bound = 1.5 * (1 + np.sum(np.abs(dither.shaping_coefficients(rate)))) if mode == "shaped" else 1.5
    assert np.max(np.abs(err)) <= bound + 1e-9 and np.sqrt(np.mean(err ** 2)) > 0.3
    # leading silence: the stream starts as if silence came before it, so it is black from sample 0
    assert not np.any(y[:L])
    # and none of this depends on how the stream is cut into blocks
    c2 = Chain(rate, max_block=1024)
    c2.set_values({"dither.mode": mode})
    c2.set_output_bits(16)
    assert np.array_equal(run_chain(c2, x, list(np.random.default_rng(5).integers(1, 700, 64))), y)


def test_a_decaying_tail_is_dithered_until_it_is_really_zero():
    """With filters on, silence after music reaches the dither as a tail that takes a while to hit 0.0."""
    rate = 48000
    music = render_programme(2.0, rate, seed=2, peak_dbfs=-3.0)
    x = np.ascontiguousarray(np.vstack([music, np.zeros((4 * rate, 2))]))
    values = json.loads((Path(schema.__file__).parent / "presets" / "streaming.json").read_text())["params"]
    plain, dithered = Chain(rate, max_block=1024), Chain(rate, max_block=1024)
    for c in (plain, dithered):
        c.set_values(values)
    dithered.set_output_bits(24)
    yf, yd = run_chain(plain, x), run_chain(dithered, x)
    zero_from = np.nonzero(np.any(yf != 0.0, axis=1))[0][-1] + 1     # the float tail is exactly 0 from here
    end = len(music) + plain.latency_samples
    assert zero_from > end + rate // 10                              # it does take a while (filters, release)
    assert np.count_nonzero(yd[end:zero_from]) > 0.5 * (zero_from - end)    # dithered while it decays
    assert not np.any(yd[zero_from + dither.BLANK_AFTER - 1:])       # black once 4096 zeros have passed


@pytest.mark.parametrize("mode", ["tpdf", "shaped"])
@pytest.mark.parametrize("bits", [16, 24])
def test_audio_already_on_the_output_grid_passes_unchanged(mode, bits):
    """A 16-bit mix through `transparent` written at 16 or 24 bits: nothing rounds it, so nothing is
    dithered and the output is the input, delayed, bit for bit (until 2026-11-24 it was re-dithered:
    +-1 LSB on about a quarter of the samples at 16 bits). Where the limiter works (a burst 6 dB over
    the ceiling) the samples leave the grid and are dithered; once the limiter's gain is exactly 1
    again (read from the same chain with a float output) they pass unchanged from the 4096th frame on."""
    rate = 48000
    x = np.round(render_programme(10.0, rate, seed=4, peak_dbfs=-3.0) * 32768) / 32768    # 16-bit values
    burst = slice(rate, rate + rate // 10)
    x[burst] *= 2.0
    x = np.ascontiguousarray(np.clip(x, -1.0, 32767 / 32768))
    values = json.loads((Path(schema.__file__).parent / "presets" / "transparent.json").read_text())["params"]
    values |= {"dither.mode": mode, "dither.bits": str(bits)}
    outs = []
    for out_bits in (None, bits):
        c = Chain(rate, max_block=1024)
        c.set_values(values)
        c.set_output_bits(out_bits)
        outs.append(run_chain(c, x)[c.latency_samples:])
    floating, out = outs
    src = x[:len(out)]
    untouched = np.all(floating == src, axis=1)             # the limiter's gain exactly 1 here
    assert untouched.mean() > 0.2 and not untouched.all()  # it did let go, after it limited
    # the rule: a frame passes as it is from the BLANK_AFTER-th untouched frame in a row (the stream
    # starts as if after silence), every other frame is dithered
    run, passes = dither.BLANK_AFTER, np.zeros(len(src), dtype=bool)
    for n, ok in enumerate(untouched):
        run = min(run + 1, dither.BLANK_AFTER) if ok else 0
        passes[n] = run >= dither.BLANK_AFTER
    assert passes[:burst.start - rate // 100].all()          # the mix before the burst: as it was
    assert np.array_equal(out[passes], src[passes])
    lsb = 2.0 ** (1 - bits)
    dithered = out[~passes]
    assert np.all(np.abs(dithered / lsb - np.round(dithered / lsb)) < 1e-9)      # on the output grid
    err = (dithered - floating[~passes]) / lsb
    assert np.sqrt(np.mean(err ** 2)) > 0.3                  # with dither in it, not just rounding
