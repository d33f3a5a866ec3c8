"""Three-band Linkwitz-Riley (LR4) split whose bands sum to an all-pass.

LR4 = two cascaded 2nd-order Butterworth sections (Q = 1/sqrt 2). A low/high pair at one
frequency sums to the 2nd-order all-pass at that frequency, exactly, also after the bilinear
transform (same denominator). For three bands the low band also goes through the all-pass of
the upper split, so::

    low + mid + high = AP(f_hi) * LP4(f_lo) + HP4(f_lo) * (LP4(f_hi) + HP4(f_hi))
                     = AP(f_hi) * AP(f_lo)

a flat magnitude. The dry path of the parallel (dry/wet) mix goes through the same two
all-passes, so mixing dry and wet never comb-filters.

Biquad rows used (in the chain's coefficient table, starting at ``base``):
0,1 LP(f_lo)  2,3 HP(f_lo)  4,5 LP(f_hi)  6,7 HP(f_hi)  8 AP(f_hi) on the low band,
9 AP(f_lo) and 10 AP(f_hi) on the dry path.
"""

from __future__ import annotations

from numba import njit

from dsp import (
    biquad,
    kernel_cache,  # noqa: F401  (stale-cache protection; before any kernel)
    rbj,
)

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
    biquad.run2_pair_to(s, lo, m, c, base + 0, z)
    biquad.run2(lo, m, c, base + 8, z)
    biquad.run2_pair_to(s, hi, m, c, base + 2, z)
    biquad.run2_pair_to(hi, mid, m, c, base + 4, z)
    biquad.run2_pair_to(hi, hi, m, c, base + 6, z)
    biquad.run2_pair_to(s, dry, m, c, base + 9, z)


@njit(cache=True)
def clear(z, base):
    for k in range(ROWS):
        biquad.clear(z, base + k)
