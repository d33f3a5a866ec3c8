"""dsp.programme as metering material: deterministic, music-like levels, stereo, fast enough."""

from __future__ import annotations

import time

import numpy as np
import pyloudnorm
import pytest

from dsp.programme import render_programme


def test_deterministic_and_shaped():
    a = render_programme(5.0, 44100, seed=3)
    assert a.shape == (220500, 2) and a.dtype == np.float64 and a.flags.c_contiguous
    assert np.array_equal(a, render_programme(5.0, 44100, seed=3))
    assert not np.array_equal(a, render_programme(5.0, 44100, seed=4))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_levels_look_like_an_unmastered_mix(seed):
    """Peaks -1..-3 dBFS, loudness and crest of a mix before mastering, a real stereo image,
    and a loudness that moves between sections (measured with pyloudnorm, not our meter)."""
    rate = 48000
    x = render_programme(40.0, rate, seed=seed)
    peak_db = 20 * np.log10(np.abs(x).max())
    assert -3.0 <= peak_db <= -1.0
    meter = pyloudnorm.Meter(rate, filter_class="DeMan")
    loudness = meter.integrated_loudness(x)
    assert -22.0 < loudness < -12.0
    assert 10.0 < peak_db - loudness < 20.0  # PLR of a dynamic mix
    corr = np.corrcoef(x[:, 0], x[:, 1])[0, 1]
    assert 0.3 < corr < 0.995
    sections = [meter.integrated_loudness(x[k : k + 4 * rate]) for k in range(0, 40 * rate, 4 * rate)]
    assert max(sections) - min(sections) > 2.0
    spectrum = np.abs(np.fft.rfft(x[: 8 * rate, 0]))
    freqs = np.fft.rfftfreq(8 * rate, 1 / rate)
    highs = spectrum[(freqs > 5000) & (freqs < 15000)].sum() / spectrum.sum()
    assert highs > 0.01  # cymbals and harmonics, not only bass


def test_renders_much_faster_than_real_time():
    render_programme(1.0, 48000, seed=0)
    t = time.process_time()  # CPU time: less sensitive to other load on a shared machine
    render_programme(30.0, 48000, seed=1)
    assert time.process_time() - t < 3.0  # 10x real time at least (typically 100x)
