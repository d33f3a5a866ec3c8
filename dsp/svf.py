"""The EQ bands as trapezoidal state-variable filters (Andrew Simper, Cytomic, 2013).

Same responses as the RBJ cookbook biquads (both are the prewarped bilinear transform of the
same analog prototypes; the tests check the impulse responses agree to 1e-9), but a better
structure for a knob that moves: the gain of a bell or shelf is mostly in the output mix
(``m0, m1, m2``), and the two integrator states are physical quantities that stay valid when
the coefficients change. A transposed-direct-form biquad re-designed while a low shelf's gain
glides leaves its states scaled for the old coefficients and clicks (measured: a 6 dB move of a
40 Hz high shelf produced a step 70x larger than the signal's own curvature).

Coefficients per band: ``g, k, a1, a2, a3, m0, m1, m2`` (8 floats) for the end of the current
sub-block, then the 8 it started from (the filter glides between them sample by sample);
state per channel: ``ic1eq, ic2eq``.

The chain's other tunable filters (subsonic high-pass, crossover, mono bass) are Butterworth
sections of the same filter (:func:`hold`, :func:`gain_ramp`, :func:`section`, :func:`step`): one
coefficient set per frequency in the same layout, shared by every section at that frequency,
whose integrator gain glides sample by sample. One section gives its high-, band- and low-pass
(and so its all-pass) from the same two states, which the crossover uses to run six sections
where it ran eight biquads.
"""

from __future__ import annotations

from dsp import eq_design
from dsp.jit import njit
from dsp.smoothing import fade

NCOEF = 8
FLUSH = 1e-30


_band = njit(cache=True)(eq_design.svf_band)
tone_as_band = njit(cache=True)(eq_design.tone_as_band)


@njit(cache=True)
def flush(v):
    """0 for a state too small to matter: a decaying state would otherwise become denormal (slow)."""
    return 0.0 if abs(v) < FLUSH else v


@njit(cache=True)
def design(c, row, kind, freq, gain_db, q, rate):
    """Band ``kind`` (``eq_design`` shape constants) into ``c[row]``; the maths is :func:`eq_design.svf_band`."""
    g, k, m0, m1, m2 = _band(kind, freq, gain_db, q, rate)
    a1 = 1.0 / (1.0 + g * (g + k))
    a2 = g * a1
    a3 = g * a2
    c[row, 0] = g
    c[row, 1] = k
    c[row, 2] = a1
    c[row, 3] = a2
    c[row, 4] = a3
    c[row, 5] = m0
    c[row, 6] = m1
    c[row, 7] = m2


@njit(cache=True)
def _steady(a1, a2, a3, m0, m1, m2):
    """The band as a state-space filter, for coefficients that stand still.

    With ``v3 = x - ic2eq``, ``v1 = a1 ic1eq + a2 v3``, ``v2 = ic2eq + a2 ic1eq + a3 v3``:
    ``y = m0 x + m1 v1 + m2 v2 = d x + c1 ic1eq + c2 ic2eq`` and the updates
    ``ic1eq' = 2 v1 - ic1eq = p11 ic1eq + p12 ic2eq + q1 x``,
    ``ic2eq' = 2 v2 - ic2eq = p22 ic2eq + p21 ic1eq + q2 x``. The same filter with the same
    states (so a glide can start from them), in 13 operations per sample instead of 19, and
    each new state one multiply and two adds away from the old ones instead of five
    operations (the recursion is what a run of samples waits on). Equal within rounding.
    Returns (d, c1, c2, p11, p12, p21, p22, q1, q2).
    """
    return (m0 + m1 * a2 + m2 * a3, m1 * a1 + m2 * a2, m2 - m1 * a2 - m2 * a3,
            2.0 * a1 - 1.0, -2.0 * a2, 2.0 * a2, 1.0 - 2.0 * a3, 2.0 * a2, 2.0 * a3)


@njit(cache=True)
def _steady_step(x, s1, s2, k):
    """One sample through the state-space form ``k`` of :func:`_steady`: (y, ic1eq', ic2eq')."""
    d, c1, c2, p11, p12, p21, p22, q1, q2 = k
    return (d * x + c1 * s1) + c2 * s2, p11 * s1 + (p12 * s2 + q1 * x), p22 * s2 + (p21 * s1 + q2 * x)


@njit(cache=True)
def _coefs(c, row):
    """The end-of-sub-block set a1, a2, a3, m0, m1, m2 of band ``row``."""
    return c[row, 2], c[row, 3], c[row, 4], c[row, 5], c[row, 6], c[row, 7]


@njit(cache=True)
def glide(c, row):
    """True when band ``row`` is moving: its sub-block start set ``c[row, 8:]`` differs from the end set."""
    for j in range(NCOEF):
        if c[row, j] != c[row, NCOEF + j]:
            return True
    return False


@njit(cache=True)
def wire(c, row):
    """True when band ``row`` passes the signal unchanged (output mix 1, 0, 0) and is not moving."""
    return c[row, 5] == 1.0 and c[row, 6] == 0.0 and c[row, 7] == 0.0 and not glide(c, row)


@njit(cache=True)
def run2_to(src, dst, m, c, row, z, pos, sub):
    """Band ``row`` on both channels of src[:m] into dst[:m] (may be the same array).

    ``c[row, :8]`` is the set for the end of the sub-block, ``c[row, 8:]`` the one it started
    with; while they differ the coefficients glide linearly per sample (``pos`` = position of
    src[0] in the sub-block of ``sub`` samples), so a moving knob never steps the output.
    """
    a1, a2, a3, m0, m1, m2 = _coefs(c, row)
    l1 = z[row, 0, 0]
    l2 = z[row, 0, 1]
    r1 = z[row, 1, 0]
    r2 = z[row, 1, 1]
    if glide(c, row):
        w = 1.0 / sub
        for n in range(m):
            f = (pos + n + 1) * w
            a1 = c[row, 10] + (c[row, 2] - c[row, 10]) * f
            a2 = c[row, 11] + (c[row, 3] - c[row, 11]) * f
            a3 = c[row, 12] + (c[row, 4] - c[row, 12]) * f
            m0 = c[row, 13] + (c[row, 5] - c[row, 13]) * f
            m1 = c[row, 14] + (c[row, 6] - c[row, 14]) * f
            m2 = c[row, 15] + (c[row, 7] - c[row, 15]) * f
            xl = src[n, 0]
            xr = src[n, 1]
            vl3 = xl - l2
            vr3 = xr - r2
            vl1 = a1 * l1 + a2 * vl3
            vr1 = a1 * r1 + a2 * vr3
            vl2 = l2 + a2 * l1 + a3 * vl3
            vr2 = r2 + a2 * r1 + a3 * vr3
            l1 = 2.0 * vl1 - l1
            r1 = 2.0 * vr1 - r1
            l2 = 2.0 * vl2 - l2
            r2 = 2.0 * vr2 - r2
            dst[n, 0] = m0 * xl + m1 * vl1 + m2 * vl2
            dst[n, 1] = m0 * xr + m1 * vr1 + m2 * vr2
    else:
        k = _steady(a1, a2, a3, m0, m1, m2)
        for n in range(m):
            yl, l1, l2 = _steady_step(src[n, 0], l1, l2, k)
            yr, r1, r2 = _steady_step(src[n, 1], r1, r2, k)
            dst[n, 0] = yl
            dst[n, 1] = yr
    z[row, 0, 0] = flush(l1)
    z[row, 0, 1] = flush(l2)
    z[row, 1, 0] = flush(r1)
    z[row, 1, 1] = flush(r2)


@njit(cache=True)
def run1(buf, ch, m, c, row, z, pos, sub):
    """Band ``row`` on one channel of buf[:m], in place (state z[row, ch]); glides like run2_to."""
    s1 = z[row, ch, 0]
    s2 = z[row, ch, 1]
    moving = glide(c, row)
    w = 1.0 / sub
    a1, a2, a3, m0, m1, m2 = _coefs(c, row)
    if not moving:
        k = _steady(a1, a2, a3, m0, m1, m2)
        for n in range(m):
            buf[n, ch], s1, s2 = _steady_step(buf[n, ch], s1, s2, k)
        z[row, ch, 0] = flush(s1)
        z[row, ch, 1] = flush(s2)
        return
    for n in range(m):
        if moving:
            f = (pos + n + 1) * w
            a1 = c[row, 10] + (c[row, 2] - c[row, 10]) * f
            a2 = c[row, 11] + (c[row, 3] - c[row, 11]) * f
            a3 = c[row, 12] + (c[row, 4] - c[row, 12]) * f
            m0 = c[row, 13] + (c[row, 5] - c[row, 13]) * f
            m1 = c[row, 14] + (c[row, 6] - c[row, 14]) * f
            m2 = c[row, 15] + (c[row, 7] - c[row, 15]) * f
        x = buf[n, ch]
        v3 = x - s2
        v1 = a1 * s1 + a2 * v3
        v2 = s2 + a2 * s1 + a3 * v3
        buf[n, ch] = m0 * x + m1 * v1 + m2 * v2
        s1 = 2.0 * v1 - s1
        s2 = 2.0 * v2 - s2
    z[row, ch, 0] = flush(s1)
    z[row, ch, 1] = flush(s2)


@njit(cache=True)
def run_ms(s, m, c, row, z, ch, f0, df, pos):
    """Band ``row`` on the mid (``ch`` 0) or side (1) of s[:m] in place, coefficients standing still,
    crossfaded in by ``f0 + df * (pos + n + 1)``: the chain's mid/side band in one pass.

    The same numbers as converting to mid/side, :func:`run1` on one of them, converting back and
    the chain's crossfade, each over the whole chunk; one loop lets the CPU do the conversions
    while it waits on the filter's recursion. State: z[row, ch].
    """
    k = _steady(*_coefs(c, row))
    s1 = z[row, ch, 0]
    s2 = z[row, ch, 1]
    for n in range(m):
        left = s[n, 0]
        right = s[n, 1]
        mid = 0.5 * (left + right)
        side = 0.5 * (left - right)
        y, s1, s2 = _steady_step(mid if ch == 0 else side, s1, s2, k)
        if ch == 0:
            mid = y
        else:
            side = y
        f = fade(f0 + df * (pos + n + 1))
        s[n, 0] = left + f * ((mid + side) - left)
        s[n, 1] = right + f * ((mid - side) - right)
    z[row, ch, 0] = flush(s1)
    z[row, ch, 1] = flush(s2)


# -- gliding sections for the subsonic filter, the crossover and the mono bass -------------------
@njit(cache=True)
def hold(c, row):
    """The glide of the next sub-block starts where this one ended (and stays there unless redesigned)."""
    for j in range(NCOEF):
        c[row, NCOEF + j] = c[row, j]


@njit(cache=True)
def gain_ramp(c, row, pos, sub):
    """(g0, dg): the integrators' gain of set ``row`` at sample n of a chunk that starts at ``pos``
    of a ``sub``-sample sub-block is ``g0 + dg * (pos + n + 1)``, from the start set's to the end set's.

    The same value for a sample however the sub-block is cut into chunks (block-size invariance);
    ``dg`` is exactly 0 when the set stands still.
    """
    g0 = c[row, NCOEF]
    return g0, (c[row, 0] - g0) * (1.0 / sub)


@njit(cache=True)
def section(g, k):
    """The per-sample constants of a section of damping ``k`` at integrator gain ``g``, for :func:`step`:
    (g, k + g, d, 2 g, g^2, 2 g^2) with ``d = 1 / (1 + g (g + k))``, bit for bit the ``a1`` of :func:`design`.

    A gliding section gets them from its gain at each sample: an exact design at every sample."""
    g1 = g + k
    gg = g * g
    return g, g1, 1.0 / (1.0 + g * g1), g + g, gg, gg + gg


@njit(cache=True)
def step(x, s1, s2, sc):
    """One sample through a section with the constants ``sc`` of :func:`section`:
    (high-pass, band-pass, low-pass, ic1eq', ic2eq').

    The same filter and the same two integrator states as :func:`run1` (Zavalishin's arrangement
    of the trapezoidal SVF): ``hp = (x - (k + g) s1 - s2) d``, ``bp = s1 + g hp``, ``lp = s2 + g bp``,
    ``s1' = 2 bp - s1``, ``s2' = 2 lp - s2``, with the states' updates written out from ``hp`` so
    that the input is two operations from the high-pass and four from the others: a cascade of
    sections (the crossover runs four in a row) then costs about what biquads did, where the
    form of :func:`run1` cost a third more (the crossover's six sections: 21.7 against 16.0 ns per
    stereo frame, the old eight biquads 15.6; 2026-11-24). The states are the integrators'
    (analog) states, valid whatever the coefficients do next: that is why these glide without a
    step. The all-pass is ``x - 2 k bp``. Outputs a caller does not use are never computed (LLVM
    inlines the call and drops them).
    """
    g, g1, d, g2, gg, gg2 = sc
    hp = (x - (g1 * s1 + s2)) * d
    return hp, s1 + g * hp, (s2 + g * s1) + gg * hp, s1 + g2 * hp, (s2 + g2 * s1) + gg2 * hp


@njit(cache=True)
def clear(z, row):
    """Section ``row`` at rest on every channel."""
    for ch in range(z.shape[1]):
        z[row, ch, 0] = 0.0
        z[row, ch, 1] = 0.0


@njit(cache=True)
def highpass2_to(src, dst, m, c, row, z, zrow, pos, sub):
    """dst[:m] = the high-pass of set ``row`` (states z[zrow]) on both channels of src[:m] (may be dst)."""
    g0, dg = gain_ramp(c, row, pos, sub)
    k = c[row, 1]
    sc = section(g0, k)
    moving = dg != 0.0
    l1, l2, r1, r2 = z[zrow, 0, 0], z[zrow, 0, 1], z[zrow, 1, 0], z[zrow, 1, 1]
    for n in range(m):
        if moving:
            sc = section(g0 + dg * (pos + n + 1.0), k)
        hl, _, _, l1, l2 = step(src[n, 0], l1, l2, sc)
        hr, _, _, r1, r2 = step(src[n, 1], r1, r2, sc)
        dst[n, 0] = hl
        dst[n, 1] = hr
    z[zrow, 0, 0], z[zrow, 0, 1] = flush(l1), flush(l2)
    z[zrow, 1, 0], z[zrow, 1, 1] = flush(r1), flush(r2)


@njit(cache=True)
def highpass4_to(src, dst, m, c, row, z, zrow, pos, sub):
    """dst[:m] = the high-passes of sets ``row`` then ``row + 1`` (states z[zrow], z[zrow + 1]) on
    both channels of src[:m]: a 4th-order high-pass in one loop, so the CPU overlaps the two
    sections' recursions (each alone keeps it waiting on its own arithmetic)."""
    g0, dg = gain_ramp(c, row, pos, sub)
    h0, dh = gain_ramp(c, row + 1, pos, sub)
    k = c[row, 1]
    kk = c[row + 1, 1]
    sa = section(g0, k)
    sb = section(h0, kk)
    moving = dg != 0.0 or dh != 0.0
    l1, l2, r1, r2 = z[zrow, 0, 0], z[zrow, 0, 1], z[zrow, 1, 0], z[zrow, 1, 1]
    p1, p2, q1, q2 = z[zrow + 1, 0, 0], z[zrow + 1, 0, 1], z[zrow + 1, 1, 0], z[zrow + 1, 1, 1]
    for n in range(m):
        if moving:
            t = pos + n + 1.0
            sa = section(g0 + dg * t, k)
            sb = section(h0 + dh * t, kk)
        hl, _, _, l1, l2 = step(src[n, 0], l1, l2, sa)
        hr, _, _, r1, r2 = step(src[n, 1], r1, r2, sa)
        hl, _, _, p1, p2 = step(hl, p1, p2, sb)
        hr, _, _, q1, q2 = step(hr, q1, q2, sb)
        dst[n, 0] = hl
        dst[n, 1] = hr
    z[zrow, 0, 0], z[zrow, 0, 1] = flush(l1), flush(l2)
    z[zrow, 1, 0], z[zrow, 1, 1] = flush(r1), flush(r2)
    z[zrow + 1, 0, 0], z[zrow + 1, 0, 1] = flush(p1), flush(p2)
    z[zrow + 1, 1, 0], z[zrow + 1, 1, 1] = flush(q1), flush(q2)
