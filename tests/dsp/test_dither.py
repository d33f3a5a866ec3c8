"""Dither: level and spectrum of the added noise, the word-length grid, never on float output."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from dsp import dither
from dsp.chain import Chain


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


@pytest.mark.parametrize("rate", [44100, 48000])
def test_noise_shaping_follows_its_filter(rate):
    n = 1 << 18
    x = _signal(n, rate)
    y = _quantise(x, 16, True, rate)
    e = (y - x)[:, 0] * 2.0 ** 15
    f, p = signal.welch(e, fs=rate, nperseg=4096)
    c = dither.shaping_coefficients(rate)
    ntf = np.concatenate([[1.0], -c])          # error = (1 - sum c_j z^-(j+1)) q
    _, h = signal.freqz(ntf, worN=f, fs=rate)
    want = 0.25 * np.abs(h) ** 2 * 2 / rate     # q: 1/4 LSB^2, one-sided PSD
    for lo, hi in ((1000, 4000), (4000, 8000), (12000, 16000), (17000, 20000)):
        band = (f >= lo) & (f < hi)
        got = 10 * np.log10(p[band].mean() / want[band].mean())
        assert abs(got) < 0.5, (lo, hi, got)
    # the point of shaping: much less noise where the ear is most sensitive than flat TPDF
    flat = 0.25 * 2 / rate
    mid = (f > 2000) & (f < 5000)
    assert 10 * np.log10(p[mid].mean() / flat) < -8


def test_shaping_falls_back_to_flat_at_high_rates():
    assert not np.any(dither.shaping_coefficients(96000))
    assert not np.any(dither.shaping_coefficients(88200))


def _run(chain, x):
    y = np.zeros_like(x)
    for i in range(0, len(x), 1024):
        chain.process(x[i:i + 1024], y[i:i + 1024])
    return y


def test_chain_dithers_only_when_the_output_is_quantised():
    rate = 48000
    x = np.ascontiguousarray(_signal(rate, rate))
    c = Chain(rate)
    c.set_values({"dither.mode": "tpdf"})
    y = _run(c, x)
    L = c.latency_samples
    assert np.array_equal(y[L:], x[:-L])                       # float output: untouched
    c = Chain(rate)
    c.set_values({"dither.mode": "tpdf"})
    c.set_output_bits(16)
    y = _run(c, x)
    lsb = 2.0 ** -15
    assert np.all(np.abs(y / lsb - np.round(y / lsb)) < 1e-9)
    assert np.sqrt(np.mean(((y[L:] - x[:-L]) / lsb) ** 2)) == pytest.approx(0.5, rel=0.05)
    c = Chain(rate)
    c.set_values({"dither.mode": "off"})
    c.set_output_bits(16)
    assert np.array_equal(_run(c, x)[L:], x[:-L])               # off means off
    # dither.bits = 16 on a 24-bit output quantises to 16 bits; a 16-bit output never to 24
    c = Chain(rate)
    c.set_values({"dither.mode": "tpdf", "dither.bits": "16"})
    c.set_output_bits(24)
    y = _run(c, x)
    assert np.all(np.abs(y / lsb - np.round(y / lsb)) < 1e-9)
    with pytest.raises(ValueError):
        c.set_output_bits(8)
