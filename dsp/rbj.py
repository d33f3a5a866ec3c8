"""Biquad coefficient design (RBJ "Audio EQ Cookbook" forms), callable from numba kernels.

Every designer writes normalised coefficients ``b0, b1, b2, a1, a2`` (a0 divided out) into a
row of a float64 array. The chain runs no biquads any more (since 2026-11-24 every tunable
filter is a state-variable filter, :mod:`dsp.svf`, whose coefficients can glide sample by
sample); it takes the Butterworth Q's from here, and the tests check the cookbook shapes, which
the state-variable filters reproduce, against scipy. The functions also run in plain Python.
"""

from __future__ import annotations

import math

# The filter shapes are defined with the EQ's design maths, which needs no numba.
from dsp.eq_design import ALLPASS, BELL, HIGH_CUT, HIGH_SHELF, LOW_CUT, LOW_SHELF, TILT  # noqa: F401
from dsp.jit import njit

BUTTER_Q = 1.0 / math.sqrt(2.0)
# 4th-order Butterworth as two biquads (pole pairs at 22.5 and 67.5 degrees)
BUTTER4_Q = (1.0 / (2.0 * math.cos(math.pi / 8.0)), 1.0 / (2.0 * math.cos(3.0 * math.pi / 8.0)))


@njit(cache=True)
def _store(c, row, b0, b1, b2, a0, a1, a2):
    inv = 1.0 / a0
    c[row, 0] = b0 * inv
    c[row, 1] = b1 * inv
    c[row, 2] = b2 * inv
    c[row, 3] = a1 * inv
    c[row, 4] = a2 * inv


@njit(cache=True)
def design(c, row, kind, freq, gain_db, q, rate):
    """Design one biquad of ``kind`` into ``c[row]``.

    ``freq`` is clamped below Nyquist so a 20 kHz band at 44.1 kHz stays stable. Tilt is a
    high shelf at ``freq`` with the whole response lowered by half the gain, so it pivots
    around ``freq``: +g/2 dB at the top, -g/2 dB at the bottom.
    """
    f = min(max(freq, 1.0), 0.49 * rate)
    w0 = 2.0 * math.pi * f / rate
    cw = math.cos(w0)
    sw = math.sin(w0)
    alpha = sw / (2.0 * q)
    if kind == BELL:
        A = 10.0 ** (gain_db / 40.0)
        _store(c, row, 1.0 + alpha * A, -2.0 * cw, 1.0 - alpha * A, 1.0 + alpha / A, -2.0 * cw, 1.0 - alpha / A)
    elif kind == LOW_SHELF or kind == HIGH_SHELF or kind == TILT:
        A = 10.0 ** (gain_db / 40.0)
        sa = 2.0 * math.sqrt(A) * alpha
        if kind == LOW_SHELF:
            b0 = A * ((A + 1.0) - (A - 1.0) * cw + sa)
            b1 = 2.0 * A * ((A - 1.0) - (A + 1.0) * cw)
            b2 = A * ((A + 1.0) - (A - 1.0) * cw - sa)
            a0 = (A + 1.0) + (A - 1.0) * cw + sa
            a1 = -2.0 * ((A - 1.0) + (A + 1.0) * cw)
            a2 = (A + 1.0) + (A - 1.0) * cw - sa
        else:
            b0 = A * ((A + 1.0) + (A - 1.0) * cw + sa)
            b1 = -2.0 * A * ((A - 1.0) + (A + 1.0) * cw)
            b2 = A * ((A + 1.0) + (A - 1.0) * cw - sa)
            a0 = (A + 1.0) - (A - 1.0) * cw + sa
            a1 = 2.0 * ((A - 1.0) - (A + 1.0) * cw)
            a2 = (A + 1.0) - (A - 1.0) * cw - sa
        if kind == TILT:
            g = 1.0 / A  # A = 10^(gain/40): divide by it to drop the response by gain/2 dB
            b0 *= g
            b1 *= g
            b2 *= g
        _store(c, row, b0, b1, b2, a0, a1, a2)
    elif kind == LOW_CUT:
        _store(c, row, (1.0 + cw) / 2.0, -(1.0 + cw), (1.0 + cw) / 2.0, 1.0 + alpha, -2.0 * cw, 1.0 - alpha)
    elif kind == HIGH_CUT:
        _store(c, row, (1.0 - cw) / 2.0, 1.0 - cw, (1.0 - cw) / 2.0, 1.0 + alpha, -2.0 * cw, 1.0 - alpha)
    else:  # ALLPASS
        _store(c, row, 1.0 - alpha, -2.0 * cw, 1.0 + alpha, 1.0 + alpha, -2.0 * cw, 1.0 - alpha)
