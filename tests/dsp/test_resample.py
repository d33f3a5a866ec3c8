"""Sample-rate conversion (dsp.resample) against what a converter must do, measured with sines.

The oracle is the signal itself: a sine in the audio band comes out as the same sine (amplitude
and phase, fitted at the new rate), and a sine the lower rate cannot carry comes out as nothing.
The chunked stream must give the numbers of one whole-signal conversion.
"""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from dsp import resample as rs

PAIRS = [(96000, 44100), (44100, 48000), (48000, 96000), (88200, 44100), (48000, 32000)]


def tone(freq, rate, seconds=1.0, amp=0.5, phase=0.3):
    t = np.arange(int(seconds * rate)) / rate
    s = amp * np.sin(2 * np.pi * freq * t + phase)
    return np.ascontiguousarray(np.stack([s, -s], axis=1))


def fit(y, freq, rate):
    """Amplitude and phase of the sine at ``freq`` in ``y`` (least squares)."""
    t = np.arange(len(y)) / rate
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    (a, b), *_ = np.linalg.lstsq(basis, y, rcond=None)
    return float(np.hypot(a, b)), float(np.arctan2(b, a))


@pytest.mark.parametrize("rate_in,rate_out", PAIRS)
def test_chunked_stream_is_one_whole_conversion(rate_in, rate_out):
    x = np.random.default_rng(7).standard_normal((rate_in // 2 + 1234, 2)) * 0.1
    whole = soxr.resample(x, rate_in, rate_out, quality=rs.QUALITY)
    assert len(whole) == round(len(x) * rate_out / rate_in)      # the same duration, to the nearest frame
    for chunk in (999, 4096, 65536):
        assert np.array_equal(rs.resample(x, rate_in, rate_out, chunk), whole), chunk


@pytest.mark.parametrize("rate_in,rate_out", PAIRS)
def test_the_audio_band_passes_unchanged(rate_in, rate_out):
    """Flat within 0.01 dB and in phase (linear phase, delay compensated) up to 20 kHz (or 0.45 of
    the lower rate)."""
    top = min(20000.0, 0.45 * min(rate_in, rate_out))
    for f in (40.0, 1000.0, 9000.0, top):
        y = rs.resample(tone(f, rate_in), rate_in, rate_out)
        assert len(y) == rate_out
        mid = slice(rate_out // 4, 3 * rate_out // 4)           # away from the file's two ends
        amp, ph = fit(y[mid, 0], f, rate_out)
        t0 = (rate_out // 4) / rate_out
        want = (0.3 + 2 * np.pi * f * t0 + np.pi) % (2 * np.pi) - np.pi
        assert 20 * np.log10(amp / 0.5) == pytest.approx(0.0, abs=0.01), f
        assert abs((ph - want + np.pi) % (2 * np.pi) - np.pi) < 1e-4, f
        assert np.array_equal(y[:, 1], -y[:, 0])


@pytest.mark.parametrize("rate_in,rate_out", [p for p in PAIRS if p[1] < p[0]])
def test_what_the_new_rate_cannot_carry_is_removed_not_folded(rate_in, rate_out):
    """Tones between the new Nyquist frequency and the old one: at least 140 dB down at the output
    (measured: 178 dB or more)."""
    for f in (0.5 * rate_out + 300.0, 0.75 * rate_out, 0.48 * rate_in):
        y = rs.resample(tone(f, rate_in), rate_in, rate_out)
        mid = y[rate_out // 4: 3 * rate_out // 4, 0]
        level = 20 * np.log10(np.sqrt(np.mean(mid ** 2)) * np.sqrt(2) / 0.5)
        assert level < -140.0, (f, level)


@pytest.mark.parametrize("rate_in,rate_out", [p for p in PAIRS if p[1] > p[0]])
def test_upsampling_makes_no_images(rate_in, rate_out):
    """A 15 kHz tone raised to a higher rate: its image at rate_in - 15 kHz at least 140 dB down."""
    y = rs.resample(tone(15000.0, rate_in), rate_in, rate_out)
    mid = y[rate_out // 4: 3 * rate_out // 4, 0]
    amp, _ = fit(mid, rate_in - 15000.0, rate_out)
    assert 20 * np.log10(amp / 0.5) < -140.0
