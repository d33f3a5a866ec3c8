"""firmware/wav_writer.py writes what libsndfile writes, byte for byte.

The oracle is libsndfile itself (``soundfile``), writing the same samples to a file of the
same layout: every 16-bit word, a sweep of 24-bit words, off-grid values (its flooring),
rounding ties, full scale and beyond, infinities and NaN, odd data lengths (the pad byte),
mono and stereo, and output written in uneven blocks.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from firmware.wav_writer import WavWriter


def samples(bits: int, channels: int, rng) -> np.ndarray:
    q = 2.0 ** (bits - 1)
    words = np.arange(-q, q) if bits == 16 else rng.integers(-q, q, 200_000).astype(float)
    special = np.array([0.0, -0.0, 1.0, -1.0, 1.0 - 2 ** -40, -1.0 - 2 ** -40, 1.5, -7.0, np.inf, -np.inf, np.nan,
                        0.5 / 2 ** 31, 1.5 / 2 ** 31, 2.5 / 2 ** 31, -0.5 / 2 ** 31, -1.5 / 2 ** 31,
                        (2 ** 31 - 0.5) / 2 ** 31, (2 ** 31 - 0.75) / 2 ** 31])
    x = np.concatenate([words / q,                                   # the chain's quantised output
                        (words[:50_000] + rng.uniform(-1, 1, 50_000)) / q,   # between the words
                        (np.floor(words[:20_000] * 2 ** (32 - bits)) + 0.5) / 2 ** 31,  # ties at 2^-31
                        rng.uniform(-1.3, 1.3, 50_000), special])
    n = len(x) // channels * channels
    return x[:n].reshape(-1, channels)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("bits", [16, 24])
def test_the_bytes_are_libsndfiles(tmp_path, bits, channels):
    rng = np.random.default_rng(bits + channels)
    x = samples(bits, channels, rng)
    ours, theirs = tmp_path / "ours.wav", tmp_path / "theirs.wav"
    with WavWriter(ours, 44100, channels, bits) as w:
        i = 0
        for n in rng.integers(0, 30_000, 1000):          # uneven blocks, some empty
            w.write(x[i:i + n])
            i += n
            if i >= len(x):
                break
        w.write(x[i:])
    sf.write(theirs, x, 44100, subtype=f"PCM_{bits}", format="WAV")
    a, b = ours.read_bytes(), theirs.read_bytes()
    assert len(a) == len(b)
    assert a[:44] == b[:44]
    diff = np.flatnonzero(np.frombuffer(a, np.uint8) != np.frombuffer(b, np.uint8))
    assert diff.size == 0, f"{diff.size} bytes differ, first at {diff[:5]}"


@pytest.mark.parametrize("rate", [8000, 44100, 48000, 96000, 384000])
@pytest.mark.parametrize("frames", [0, 1, 3, 4096])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("bits", [16, 24])
def test_headers_and_odd_lengths_are_libsndfiles(tmp_path, bits, channels, frames, rate):
    x = np.random.default_rng(frames).uniform(-1, 1, (frames, channels))
    with WavWriter(tmp_path / "ours.wav", rate, channels, bits) as w:
        w.write(x)
    sf.write(tmp_path / "theirs.wav", x, rate, subtype=f"PCM_{bits}", format="WAV")
    assert (tmp_path / "ours.wav").read_bytes() == (tmp_path / "theirs.wav").read_bytes()
    back, r = sf.read(tmp_path / "ours.wav", always_2d=True)
    assert r == rate and back.shape == (frames, channels)


def test_a_non_contiguous_block_and_bad_shapes(tmp_path):
    x = np.random.default_rng(1).uniform(-1, 1, (1000, 2))
    with WavWriter(tmp_path / "mono.wav", 48000, 1, 24) as w:
        w.write(x[:, :1])                               # the renderer's mono view
        with pytest.raises(ValueError, match="expected"):
            w.write(x)
    sf.write(tmp_path / "theirs.wav", x[:, :1], 48000, subtype="PCM_24")
    assert (tmp_path / "mono.wav").read_bytes() == (tmp_path / "theirs.wav").read_bytes()
    with pytest.raises(ValueError, match="bits"):
        WavWriter(tmp_path / "x.wav", 48000, 2, 32)
