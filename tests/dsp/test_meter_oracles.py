"""The meter against independent meters on music-like material.

Oracles: ffmpeg's ``ebur128`` filter (integrated, LRA, true peak via 192 kHz resampling) and
pyloudnorm with its exact BS.1770 filter (``filter_class="DeMan"``; integrated only).
Tolerances from the issue: integrated within 0.1 LU of both, true peak within 0.2 dB and LRA
within 1 LU of ffmpeg.
"""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from dsp.meter import LoudnessMeter
from dsp.programme import render_programme
from tests.signals import ffmpeg_ebur128


def _measure(x: np.ndarray, rate: int) -> dict:
    m = LoudnessMeter(rate, x.shape[1])
    m.process(x)
    return m.readings()


def _written(tmp_path, name: str, x: np.ndarray, rate: int) -> tuple:
    """Write ``x`` as 32-bit float WAV and read it back, so every meter sees the same samples."""
    path = tmp_path / name
    sf.write(path, x, rate, subtype="FLOAT")
    y, _ = sf.read(path, dtype="float64", always_2d=True)
    return path, y


def _hot_master(x: np.ndarray) -> np.ndarray:
    """A loud, clipped "master": flat-topped waveforms whose reconstruction overshoots between samples."""
    return np.clip(x * 4.0, -1.0, 1.0) * 0.95


MATERIAL = [
    # (name, rate, seed, seconds, hot)
    ("mix-48k", 48000, 0, 60, False),
    ("mix-44k1", 44100, 1, 45, False),
    ("mix-96k", 96000, 2, 30, False),
    ("hot-48k", 48000, 3, 30, True),
    ("hot-44k1", 44100, 4, 30, True),
]


@pytest.mark.parametrize("name, rate, seed, seconds, hot", MATERIAL, ids=[m[0] for m in MATERIAL])
def test_music_like_material_matches_ffmpeg_and_pyloudnorm(tmp_path, name, rate, seed, seconds, hot):
    x = render_programme(seconds, rate, seed=seed)
    if hot:
        x = _hot_master(x)
    path, x = _written(tmp_path, f"{name}.wav", x, rate)
    ours = _measure(x, rate)
    ff = ffmpeg_ebur128(path, tmp_path)
    pyln = pyloudnorm.Meter(rate, filter_class="DeMan").integrated_loudness(x)

    assert ours["integrated_lufs"] == pytest.approx(ff["integrated_lufs"], abs=0.1)
    assert ours["integrated_lufs"] == pytest.approx(pyln, abs=0.1)
    assert ours["true_peak_dbtp"] == pytest.approx(ff["true_peak_dbtp"], abs=0.2)
    assert ours["loudness_range_lu"] == pytest.approx(ff["loudness_range_lu"], abs=1.0)
    if hot:  # the material really has inter-sample peaks, so true peak is being tested
        assert ours["true_peak_dbtp"] > ours["sample_peak_dbfs"] + 0.3


def test_surround_51_matches_ffmpeg(tmp_path):
    """5.1 (L R C LFE Ls Rs): LFE excluded, surrounds weighted 1.41, as ffmpeg's filter does."""
    rate = 48000
    a = render_programme(20, rate, seed=5)
    b = render_programme(20, rate, seed=6)
    x = np.column_stack([a[:, 0], a[:, 1], 0.5 * (a[:, 0] + a[:, 1]), b[:, 0], 0.7 * b[:, 0], 0.7 * b[:, 1]])
    path, x = _written(tmp_path, "surround.wav", x, rate)
    ours = _measure(x, rate)
    ff = ffmpeg_ebur128(path, tmp_path)
    assert ours["integrated_lufs"] == pytest.approx(ff["integrated_lufs"], abs=0.1)
    # and the LFE really is ignored: silencing it changes nothing
    x2 = x.copy()
    x2[:, 3] = 0.0
    assert _measure(x2, rate)["integrated_lufs"] == pytest.approx(ours["integrated_lufs"], abs=1e-9)
