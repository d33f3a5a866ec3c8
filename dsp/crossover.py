"""Three-band Linkwitz-Riley (LR4) split whose bands sum to an all-pass.

LR4 = two cascaded 2nd-order Butterworth sections (Q = 1/sqrt 2). A low/high pair at one
frequency sums to the 2nd-order all-pass at that frequency, exactly, also after the bilinear
transform (same denominator). For three bands the low band also goes through the all-pass of
the upper split, so::

    low + mid + high = AP(f_hi) * LP4(f_lo) + HP4(f_lo) * (LP4(f_hi) + HP4(f_hi))
                     = AP(f_hi) * AP(f_lo)

a flat magnitude. The dry path of the parallel (dry/wet) mix has the same two all-passes, so
mixing dry and wet never comb-filters.

Fewer filters than the textbook layout, by the same identity: the split computes
``h = HP4(f_lo)``, ``hi = HP4(f_hi) h`` and ``AP(f_hi) h``, and takes ``mid = AP(f_hi) h - hi``
(= LP4(f_hi) h) and ``dry = lo + AP(f_hi) h`` (= the two all-passes of the input): 8 sections
per channel instead of 11, all in one loop over the samples so the CPU overlaps their
recursions. Equal to the 11-section form within rounding (~1e-16 of full scale).

Biquad rows used (in the chain's coefficient table, starting at ``base``):
0,1 LP(f_lo)  2,3 HP(f_lo)  6,7 HP(f_hi)  8 AP(f_hi) on the low band, 10 AP(f_hi) on
HP4(f_lo); rows 4, 5 (LP(f_hi)) and 9 (AP(f_lo)) are designed but no longer run.
"""

from __future__ import annotations

from dsp import (
    biquad,
    rbj,
)
from dsp.jit import njit

ROWS = 11
_Q = 0.7071067811865476


@njit(cache=True)
def design(c, base, f_lo, f_hi, rate):
    rbj.design(c, base + 0, rbj.HIGH_CUT, f_lo, 0.0, _Q, rate)
    rbj.design(c, base + 2, rbj.LOW_CUT, f_lo, 0.0, _Q, rate)
    rbj.design(c, base + 4, rbj.HIGH_CUT, f_hi, 0.0, _Q, rate)
    rbj.design(c, base + 6, rbj.LOW_CUT, f_hi, 0.0, _Q, rate)
    rbj.design(c, base + 8, rbj.ALLPASS, f_hi, 0.0, _Q, rate)
    rbj.design(c, base + 9, rbj.ALLPASS, f_lo, 0.0, _Q, rate)
    rbj.design(c, base + 10, rbj.ALLPASS, f_hi, 0.0, _Q, rate)
    for k in (1, 3, 5, 7):
        for j in range(5):
            c[base + k, j] = c[base + k - 1, j]


@njit(cache=True)
def split(s, lo, mid, hi, dry, m, c, z, base):
    """Split ``s[:m]`` (stereo) into ``lo``, ``mid``, ``hi`` and the phase-matched ``dry``."""
    rows = (base + 0, base + 1, base + 8, base + 2, base + 3, base + 6, base + 7, base + 10)
    # coefficients and states into locals: r<k> is the k-th row of ``rows``
    b00, b01, b02, a01, a02 = c[rows[0], 0], c[rows[0], 1], c[rows[0], 2], c[rows[0], 3], c[rows[0], 4]
    b10, b11, b12, a11, a12 = c[rows[1], 0], c[rows[1], 1], c[rows[1], 2], c[rows[1], 3], c[rows[1], 4]
    b20, b21, b22, a21, a22 = c[rows[2], 0], c[rows[2], 1], c[rows[2], 2], c[rows[2], 3], c[rows[2], 4]
    b30, b31, b32, a31, a32 = c[rows[3], 0], c[rows[3], 1], c[rows[3], 2], c[rows[3], 3], c[rows[3], 4]
    b40, b41, b42, a41, a42 = c[rows[4], 0], c[rows[4], 1], c[rows[4], 2], c[rows[4], 3], c[rows[4], 4]
    b50, b51, b52, a51, a52 = c[rows[5], 0], c[rows[5], 1], c[rows[5], 2], c[rows[5], 3], c[rows[5], 4]
    b60, b61, b62, a61, a62 = c[rows[6], 0], c[rows[6], 1], c[rows[6], 2], c[rows[6], 3], c[rows[6], 4]
    b70, b71, b72, a71, a72 = c[rows[7], 0], c[rows[7], 1], c[rows[7], 2], c[rows[7], 3], c[rows[7], 4]
    for ch in range(2):
        u0, v0 = z[rows[0], ch, 0], z[rows[0], ch, 1]
        u1, v1 = z[rows[1], ch, 0], z[rows[1], ch, 1]
        u2, v2 = z[rows[2], ch, 0], z[rows[2], ch, 1]
        u3, v3 = z[rows[3], ch, 0], z[rows[3], ch, 1]
        u4, v4 = z[rows[4], ch, 0], z[rows[4], ch, 1]
        u5, v5 = z[rows[5], ch, 0], z[rows[5], ch, 1]
        u6, v6 = z[rows[6], ch, 0], z[rows[6], ch, 1]
        u7, v7 = z[rows[7], ch, 0], z[rows[7], ch, 1]
        for n in range(m):
            x = s[n, ch]
            y, u0, v0 = biquad.section(x, u0, v0, b00, b01, b02, a01, a02)
            y, u1, v1 = biquad.section(y, u1, v1, b10, b11, b12, a11, a12)
            low, u2, v2 = biquad.section(y, u2, v2, b20, b21, b22, a21, a22)
            h, u3, v3 = biquad.section(x, u3, v3, b30, b31, b32, a31, a32)
            h, u4, v4 = biquad.section(h, u4, v4, b40, b41, b42, a41, a42)
            y, u5, v5 = biquad.section(h, u5, v5, b50, b51, b52, a51, a52)
            high, u6, v6 = biquad.section(y, u6, v6, b60, b61, b62, a61, a62)
            ap, u7, v7 = biquad.section(h, u7, v7, b70, b71, b72, a71, a72)
            lo[n, ch] = low
            mid[n, ch] = ap - high
            hi[n, ch] = high
            dry[n, ch] = low + ap
        z[rows[0], ch, 0], z[rows[0], ch, 1] = biquad.flush(u0), biquad.flush(v0)
        z[rows[1], ch, 0], z[rows[1], ch, 1] = biquad.flush(u1), biquad.flush(v1)
        z[rows[2], ch, 0], z[rows[2], ch, 1] = biquad.flush(u2), biquad.flush(v2)
        z[rows[3], ch, 0], z[rows[3], ch, 1] = biquad.flush(u3), biquad.flush(v3)
        z[rows[4], ch, 0], z[rows[4], ch, 1] = biquad.flush(u4), biquad.flush(v4)
        z[rows[5], ch, 0], z[rows[5], ch, 1] = biquad.flush(u5), biquad.flush(v5)
        z[rows[6], ch, 0], z[rows[6], ch, 1] = biquad.flush(u6), biquad.flush(v6)
        z[rows[7], ch, 0], z[rows[7], ch, 1] = biquad.flush(u7), biquad.flush(v7)


@njit(cache=True)
def clear(z, base):
    for k in range(ROWS):
        biquad.clear(z, base + k)
