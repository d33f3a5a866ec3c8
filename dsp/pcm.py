"""Float samples to little-endian PCM words, exactly as libsndfile converts them (the WAV writer's kernels).

Why: ``masterbox master`` wrote its 24-bit output through libsndfile (``soundfile``), whose
conversion costs this machine ~7 ns per sample: ~0.2 s of CPU per pass for a 5-minute stereo
file. These kernels do the same conversion in a fraction of a nanosecond, and with them (and
``firmware/wav_writer.py``) ``master`` does not import soundfile for WAV in, WAV out.

The arithmetic is libsndfile's (1.2, ``pcm.c``, the clipping double-to-PCM converters that
``soundfile`` writes with): the sample times 2^31, values at or beyond full scale clipped to
the largest/smallest 32-bit word, the rest rounded to the nearest integer (ties to even, as
``lrint``), and the word's top 16 or 24 bits kept, i.e. a floor at the target word length.
For the chain's quantised output (multiples of 2^-15 or 2^-23 within full scale) that is the
integer itself. NaN becomes the smallest word, as ``lrint`` gives it on x86.
``tests/test_wav_writer.py`` compares the bytes with libsndfile's for every value class.
"""

from __future__ import annotations

import numpy as np

from dsp.jit import njit

SCALE = 2147483648.0        # 2^31
BOTTOM = -2147483648


@njit(cache=True)
def _word(x):
    """The 32-bit word libsndfile makes of sample ``x`` (clipped, rounded to nearest, NaN lowest)."""
    v = min(max(x * SCALE, -SCALE), 2147483647.0)
    return np.int64(np.rint(v)) if v == v else BOTTOM


@njit(cache=True)
def pcm16_le(y, out):
    """``y`` (frames, channels) C-contiguous float64 into ``out`` (uint8, 2 bytes per sample, interleaved)."""
    flat = y.reshape(-1)
    for k in range(flat.shape[0]):
        w = _word(flat[k])
        out[2 * k] = (w >> 16) & 0xFF
        out[2 * k + 1] = (w >> 24) & 0xFF


@njit(cache=True)
def pcm24_le(y, out):
    """``y`` (frames, channels) C-contiguous float64 into ``out`` (uint8, 3 bytes per sample, interleaved)."""
    flat = y.reshape(-1)
    for k in range(flat.shape[0]):
        w = _word(flat[k])
        out[3 * k] = (w >> 8) & 0xFF
        out[3 * k + 1] = (w >> 16) & 0xFF
        out[3 * k + 2] = (w >> 24) & 0xFF


def warm() -> None:
    """Compile (or load from the numba cache) both kernels for their one signature."""
    y = np.zeros((1, 2))
    pcm16_le(y, np.zeros(4, dtype=np.uint8))
    pcm24_le(y, np.zeros(6, dtype=np.uint8))
