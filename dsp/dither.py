"""Word-length reduction with TPDF dither and optional error-feedback noise shaping.

Dither only makes sense when the output really is quantised, so the chain applies it only
when told the output word length (``Chain.set_output_bits``); float output is never dithered.
The quantiser rounds to the integer grid itself, so the file writer's own conversion is exact.

Noise shaping: ``d = x - sum_j c_j e[n-1-j]; y = Q(d + tpdf); e = y - d``. The shaping
filters are designed for a sample rate; one designed for 44.1 kHz pushes noise into the
audible band at 96 kHz, so :func:`shaping_coefficients` picks per rate and falls back to
flat TPDF where no suitable set exists.
"""

from __future__ import annotations

import numpy as np
from numba import njit

MAX_TAPS = 9
# SoX's 5-tap Lipshitz filter for 44.1 kHz
LIPSHITZ_44K = (2.033, -2.165, 1.959, -1.590, 0.6149)
# SoX's 9-tap "modified E-weighted" filter, designed around 46 kHz (used at 48 kHz)
E_WEIGHTED_48K = (1.662, -1.263, 0.4827, -0.2913, 0.1268, -0.1124, 0.03252, -0.01265, -0.03524)


def shaping_coefficients(rate: float) -> np.ndarray:
    """Error-feedback taps for ``rate`` (zero-padded to MAX_TAPS); all zeros means flat TPDF."""
    c = np.zeros(MAX_TAPS)
    if abs(rate - 44100) < 1:
        c[: len(LIPSHITZ_44K)] = LIPSHITZ_44K
    elif abs(rate - 48000) < 1:
        c[: len(E_WEIGHTED_48K)] = E_WEIGHTED_48K
    return c


_S12 = np.uint64(12)
_S25 = np.uint64(25)
_S27 = np.uint64(27)
_S11 = np.uint64(11)
_MUL = np.uint64(2685821657736338717)


@njit(cache=True)
def uniform(rng):
    """xorshift64* step on the uint64 state ``rng[0]``; returns a uniform value in [-0.5, 0.5)."""
    x = rng[0]
    x ^= x >> _S12
    x ^= x << _S25
    x ^= x >> _S27
    rng[0] = x
    v = (x * _MUL) >> _S11
    return float(v) * (1.0 / 9007199254740992.0) - 0.5


@njit(cache=True)
def quantise(buf, start, stop, bits, shaped, coef, err, rng):
    """Dither and round ``buf[start:stop]`` (both channels) to ``bits`` in place.

    ``err`` (channels, MAX_TAPS) holds the past quantisation errors for shaping.
    """
    scale = 2.0 ** (bits - 1)
    inv = 1.0 / scale
    top = scale - 1.0
    for n in range(start, stop):
        for ch in range(buf.shape[1]):
            x = buf[n, ch] * scale
            if shaped:
                fb = 0.0
                for j in range(MAX_TAPS):
                    fb += coef[j] * err[ch, j]
                d = x - fb
            else:
                d = x
            tpdf = uniform(rng) + uniform(rng)
            y = np.floor(d + tpdf + 0.5)
            if y > top:
                y = top
            elif y < -scale:
                y = -scale
            if shaped:
                e = y - d
                # a clipped sample must not feed a huge error back into the loop
                if e > 4.0:
                    e = 4.0
                elif e < -4.0:
                    e = -4.0
                for j in range(MAX_TAPS - 1, 0, -1):
                    err[ch, j] = err[ch, j - 1]
                err[ch, 0] = e
            buf[n, ch] = y * inv
