"""Three-band Linkwitz-Riley (LR4) split whose bands sum to an all-pass.

LR4 = two cascaded 2nd-order Butterworth sections (Q = 1/sqrt 2). A low/high pair at one
frequency sums to the 2nd-order all-pass at that frequency, exactly, also after the bilinear
transform (same denominator). For three bands the low band also goes through the all-pass of
the upper split, so::

    low + mid + high = AP(f_hi) * LP4(f_lo) + HP4(f_lo) * (LP4(f_hi) + HP4(f_hi))
                     = AP(f_hi) * AP(f_lo)

a flat magnitude. The dry path of the parallel (dry/wet) mix has the same two all-passes, so
mixing dry and wet never comb-filters.

The sections are trapezoidal state-variable filters (:mod:`dsp.svf`), whose coefficients glide
sample by sample when a split frequency moves: biquads redesigned every sub-block stepped the
output at each redesign (zipper lines at multiples of fs/64, -40 dB re an 80 Hz tone for a move
of the upper split). One state-variable section gives its low-, high- and all-pass at once, so
the split runs six sections per channel:

    A  (f_lo) on x:            lp1, hp1
    B  (f_lo) on lp1:          LP4(f_lo) x
    C  (f_lo) on hp1:          h = HP4(f_lo) x
    D  (f_hi) on B's output:   its all-pass: the low band
    E  (f_hi) on h:            its high-pass hh and all-pass AP(f_hi) h
    F  (f_hi) on hh:           hi = HP4(f_hi) h

and takes ``mid = AP(f_hi) h - hi`` (= LP4(f_hi) h) and ``dry = lo + AP(f_hi) h`` (the two
all-passes of the input). Coefficient sets (rows of the chain's table, svf layout, from ``row``):
0 f_lo, 1 f_hi. Sections (states, from ``zrow``): A..F as 0..5.
"""

from __future__ import annotations

from dsp import eq_design, svf
from dsp.jit import njit

SETS = 2
SECTIONS = 6
_Q = 0.7071067811865476


@njit(cache=True)
def design(c, row, f_lo, f_hi, rate, fresh):
    """Both sets for the end of this sub-block, after the caller held them (:func:`dsp.svf.hold`: the
    glide starts where the last ended), unless ``fresh`` (nothing to glide from)."""
    svf.design(c, row, eq_design.LOW_CUT, f_lo, 0.0, _Q, rate)
    svf.design(c, row + 1, eq_design.LOW_CUT, f_hi, 0.0, _Q, rate)
    if fresh:
        svf.hold(c, row)
        svf.hold(c, row + 1)


@njit(cache=True)
def _one(x, a1, a2, b1, b2, c1, c2, d1, d2, e1, e2, f1, f2, lc, hc, k2):
    """One sample of one channel through sections A..F: (low, mid, high, dry) and the twelve new states."""
    hp1, _, lp1, a1, a2 = svf.step(x, a1, a2, lc)
    _, _, low, b1, b2 = svf.step(lp1, b1, b2, lc)
    h, _, _, c1, c2 = svf.step(hp1, c1, c2, lc)
    _, bp, _, d1, d2 = svf.step(low, d1, d2, hc)
    low = low - k2 * bp
    hh, bp, _, e1, e2 = svf.step(h, e1, e2, hc)
    ap = h - k2 * bp
    high, _, _, f1, f2 = svf.step(hh, f1, f2, hc)
    return low, ap - high, high, low + ap, a1, a2, b1, b2, c1, c2, d1, d2, e1, e2, f1, f2


@njit(cache=True)
def split(s, lo, mid, hi, dry, m, c, row, z, zrow, pos, sub):
    """Split ``s[:m]`` (stereo) into ``lo``, ``mid``, ``hi`` and the phase-matched ``dry``.

    ``pos``: where s[0] is in the ``sub``-sample sub-block, along which the sets glide. Both
    channels in one loop: their recursions overlap, and a glide's per-sample designs serve both.
    """
    lg0, ldg = svf.gain_ramp(c, row, pos, sub)
    hg0, hdg = svf.gain_ramp(c, row + 1, pos, sub)
    k = c[row, 1]
    kh = c[row + 1, 1]
    k2 = 2.0 * kh
    lc = svf.section(lg0, k)
    hc = svf.section(hg0, kh)
    moving = ldg != 0.0 or hdg != 0.0
    a1, a2, b1, b2, c1, c2, d1, d2, e1, e2, f1, f2 = _load(z, zrow, 0)
    A1, A2, B1, B2, C1, C2, D1, D2, E1, E2, F1, F2 = _load(z, zrow, 1)
    for n in range(m):
        if moving:
            t = pos + n + 1.0
            lc = svf.section(lg0 + ldg * t, k)
            hc = svf.section(hg0 + hdg * t, kh)
        lo[n, 0], mid[n, 0], hi[n, 0], dry[n, 0], a1, a2, b1, b2, c1, c2, d1, d2, e1, e2, f1, f2 = _one(
            s[n, 0], a1, a2, b1, b2, c1, c2, d1, d2, e1, e2, f1, f2, lc, hc, k2)
        lo[n, 1], mid[n, 1], hi[n, 1], dry[n, 1], A1, A2, B1, B2, C1, C2, D1, D2, E1, E2, F1, F2 = _one(
            s[n, 1], A1, A2, B1, B2, C1, C2, D1, D2, E1, E2, F1, F2, lc, hc, k2)
    _store(z, zrow, 0, a1, a2, b1, b2, c1, c2, d1, d2, e1, e2, f1, f2)
    _store(z, zrow, 1, A1, A2, B1, B2, C1, C2, D1, D2, E1, E2, F1, F2)


@njit(cache=True)
def _load(z, zrow, ch):
    """The six sections' states of channel ``ch``: ic1eq, ic2eq of A, then of B .. F."""
    return (z[zrow, ch, 0], z[zrow, ch, 1], z[zrow + 1, ch, 0], z[zrow + 1, ch, 1],
            z[zrow + 2, ch, 0], z[zrow + 2, ch, 1], z[zrow + 3, ch, 0], z[zrow + 3, ch, 1],
            z[zrow + 4, ch, 0], z[zrow + 4, ch, 1], z[zrow + 5, ch, 0], z[zrow + 5, ch, 1])


@njit(cache=True)
def _store(z, zrow, ch, a1, a2, b1, b2, c1, c2, d1, d2, e1, e2, f1, f2):
    """The six sections' states of channel ``ch`` back, flushed (:func:`dsp.svf.flush`)."""
    z[zrow, ch, 0], z[zrow, ch, 1] = svf.flush(a1), svf.flush(a2)
    z[zrow + 1, ch, 0], z[zrow + 1, ch, 1] = svf.flush(b1), svf.flush(b2)
    z[zrow + 2, ch, 0], z[zrow + 2, ch, 1] = svf.flush(c1), svf.flush(c2)
    z[zrow + 3, ch, 0], z[zrow + 3, ch, 1] = svf.flush(d1), svf.flush(d2)
    z[zrow + 4, ch, 0], z[zrow + 4, ch, 1] = svf.flush(e1), svf.flush(e2)
    z[zrow + 5, ch, 0], z[zrow + 5, ch, 1] = svf.flush(f1), svf.flush(f2)


@njit(cache=True)
def clear(z, zrow):
    for k in range(SECTIONS):
        svf.clear(z, zrow + k)
