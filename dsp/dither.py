"""Word-length reduction with TPDF dither and optional error-feedback noise shaping.

Dither only makes sense when the output really is quantised, so the chain applies it only
when told the output word length (``Chain.set_output_bits``); float output is never dithered.
The quantiser rounds to the integer grid itself, so the file writer's own conversion is exact.

Noise shaping: ``d = x - sum_j c_j e[n-1-j]; y = Q(d + tpdf); e = y - d``, so the output's
error is ``H(z) e`` with the noise transfer function ``H(z) = 1 - sum_j c_j z^-(j+1)``. A shaping
filter is designed for a sample rate (one designed for 44.1 kHz puts its noise hump at 15-20 kHz;
at 96 kHz that response lands at 30-44 kHz and its in-band part is no longer the one intended),
so :func:`shaping_coefficients` picks one per rate:

* 44.1 kHz: SoX's 5-tap Lipshitz set; 48 kHz: SoX's 9-tap "modified E-weighted" set. Both trade
  more noise at 15-22 kHz (where hearing is least sensitive) for less at 1-6 kHz.
* 88.2 and 96 kHz: our own 9-tap sets. Above 20 kHz there is room the audible band does not
  use, so the noise goes there. Each is the order-9 prediction-error filter (Yule-Walker) of the
  weight ``W(f) = A(f)^2`` (IEC 61672 A-weighting, normalised to 1 at 1 kHz) for 0-20 kHz and
  ``3e-4`` (-35 dB) above: it minimises the integral of ``W |H|^2`` with ``h[0] = 1``, which makes
  ``H`` minimum phase (all zeros inside the unit circle; largest radius 0.92 / 0.94), and the
  small weight above 20 kHz is what bounds the noise pushed up there. In 20 Hz-20 kHz the noise
  is 13.5 / 14.2 dB below flat TPDF unweighted and 16.6 / 17.4 dB below A-weighted; the total
  noise power is +11.8 / +10.7 dB (Lipshitz at 44.1 kHz: +12.2 dB), peaking at +16.7 / +14.8 dB
  near Nyquist.

The added error is never more than ``1.5 sum_j |h_j|`` LSB (TPDF +-1 plus rounding +-0.5 through
the FIR ``H``): at most 14.3 LSB at 88.2 kHz (``sum |h| = 9.55``), 14.0 at 44.1 kHz, 11.8 at
96 kHz, 7.5 at 48 kHz; at 16 bits that is below -67 dBFS, far inside the limiter's 0.15 dB
margin under any ceiling, and the quantiser clamps at full scale anyway (with the fed-back
error clamped, so a clamped sample cannot destabilise the loop).

What is already on the output grid is left as it is: once :data:`BLANK_AFTER` frames in a row
reach the dither with both samples on the grid of the output word length (:func:`on_grid`), the
chain passes them unchanged instead of adding dither noise (and clears the shaping filter's
error memory) until the first sample off the grid. Such samples need no rounding, so there is
no error to decorrelate. Two cases matter:

* digital silence (0.0 is on every grid): a master's leading and trailing silence, and the gaps
  of a gapless album, are true digital black, which delivery checks look for; the noise would
  only have been there at -130 LUFS (mastering dithers offer the same, e.g. iZotope Ozone's
  "auto blank");
* audio nothing has changed: a 16-bit file through `transparent` written at 16 bits (or at 24),
  or a 24-bit input through the box bypassed, comes out bit for bit where the limiter is idle,
  instead of re-dithered (+-1 LSB on about a quarter of the samples).

Processed audio is never on the grid (any gain, filter or limiting moves it off), nor is music
exactly 0.0 for that long, and a decaying tail is dithered down to where it really is zero.
"""

from __future__ import annotations

import math

import numpy as np

from dsp.jit import njit

MAX_TAPS = 9
# exact-zero samples (both channels) after which the output is blanked: 93 ms at 44.1 kHz,
# 85 ms at 48 kHz, 43 ms at 96 kHz; long against any zero crossing, short against a gap
BLANK_AFTER = 4096
# SoX's 5-tap Lipshitz filter for 44.1 kHz
LIPSHITZ_44K = (2.033, -2.165, 1.959, -1.590, 0.6149)
# SoX's 9-tap "modified E-weighted" filter, designed around 46 kHz (used at 48 kHz)
E_WEIGHTED_48K = (1.662, -1.263, 0.4827, -0.2913, 0.1268, -0.1124, 0.03252, -0.01265, -0.03524)
# ours for 88.2 and 96 kHz (see the module docstring for the design): noise moved above 20 kHz
SHAPED_88K2 = (2.338, -2.4072, 0.85918, 0.7317, -0.86389, -0.086957, 0.6785, -0.47754, 0.10299)
SHAPED_96K = (2.27, -2.0339, 0.30999, 0.85996, -0.41851, -0.42575, 0.41235, 0.017572, -0.11336)
# what the user gets from dither.mode = "shaped" at each supported rate (docs, schema help)
SHAPING_BY_RATE = {
    44100: ("Lipshitz 5-tap", LIPSHITZ_44K),
    48000: ("modified E-weighted 9-tap", E_WEIGHTED_48K),
    88200: ("A-weighted 9-tap, noise above 20 kHz", SHAPED_88K2),
    96000: ("A-weighted 9-tap, noise above 20 kHz", SHAPED_96K),
}


def shaping_coefficients(rate: float) -> np.ndarray:
    """Error-feedback taps for ``rate`` (zero-padded to MAX_TAPS); all zeros means flat TPDF
    (any rate without a filter designed for it: shaping at the wrong rate is worse than none)."""
    c = np.zeros(MAX_TAPS)
    for r, (_, taps) in SHAPING_BY_RATE.items():
        if abs(rate - r) < 1:
            c[: len(taps)] = taps
    return c


_S12 = np.uint64(12)
_S25 = np.uint64(25)
_S27 = np.uint64(27)
_S11 = np.uint64(11)
_S32 = np.uint64(32)
_M32 = np.uint64(0xFFFFFFFF)
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
def tpdf(rng, ch):
    """One triangular value in (-1, 1) LSB from channel ``ch``'s generator: two 32-bit uniforms
    from one draw. One generator per channel keeps the sequence independent of block sizes."""
    x = rng[ch]
    x ^= x >> _S12
    x ^= x << _S25
    x ^= x >> _S27
    rng[ch] = x
    v = x * _MUL
    hi = float(v >> _S32)
    lo = float(v & _M32)
    return (hi + lo) * (1.0 / 4294967296.0) - 1.0


@njit(cache=True)
def _step(v, scale, top, r):
    """Round ``v`` (in LSB units, shaped error subtracted) plus ``r`` (dither + 0.5) down, clamped."""
    y = np.floor(v + r)
    if y > top:
        y = top
    elif y < -scale:
        y = -scale
    return y


@njit(cache=True)
def _clamp_err(e):
    # a clipped sample must not feed a huge error back into the loop
    if e > 4.0:
        return 4.0
    if e < -4.0:
        return -4.0
    return e


@njit(cache=True)
def on_grid(v, scale):
    """True when ``v`` is exactly a value of the output word length (codes -scale .. scale - 1,
    ``scale`` = 2 ** (bits - 1)): rounding it changes nothing, so it needs no dither."""
    a = v * scale
    return a == math.floor(a) and -scale <= a < scale


@njit(cache=True)
def quantise(buf, start, stop, bits, shaped, coef, err, rng):
    """Dither and round ``buf[start:stop]`` (both channels) to ``bits`` in place.

    ``err`` (channels, MAX_TAPS) holds the past quantisation errors for shaping (newest first);
    ``rng`` one uint64 xorshift state per channel. The two channels run in one loop: the
    error feedback is a serial recursion per channel, so interleaving two independent ones
    keeps the CPU busy while each waits on its own result (same arithmetic, same numbers).
    """
    scale = 2.0 ** (bits - 1)
    inv = 1.0 / scale
    top = scale - 1.0
    if shaped:
        c0, c1, c2, c3, c4 = coef[0], coef[1], coef[2], coef[3], coef[4]
        c5, c6, c7, c8 = coef[5], coef[6], coef[7], coef[8]
        e0, e1, e2, e3, e4 = err[0, 0], err[0, 1], err[0, 2], err[0, 3], err[0, 4]
        e5, e6, e7, e8 = err[0, 5], err[0, 6], err[0, 7], err[0, 8]
        f0, f1, f2, f3, f4 = err[1, 0], err[1, 1], err[1, 2], err[1, 3], err[1, 4]
        f5, f6, f7, f8 = err[1, 5], err[1, 6], err[1, 7], err[1, 8]
        for n in range(start, stop):
            # the newest error enters last: it is the only term on the serial path
            d = (buf[n, 0] * scale - (c8 * e8 + c7 * e7 + c6 * e6 + c5 * e5 + c4 * e4
                                      + c3 * e3 + c2 * e2 + c1 * e1)) - c0 * e0
            g = (buf[n, 1] * scale - (c8 * f8 + c7 * f7 + c6 * f6 + c5 * f5 + c4 * f4
                                      + c3 * f3 + c2 * f2 + c1 * f1)) - c0 * f0
            y = _step(d, scale, top, tpdf(rng, 0) + 0.5)
            z = _step(g, scale, top, tpdf(rng, 1) + 0.5)
            e = _clamp_err(y - d)
            f = _clamp_err(z - g)
            e8, e7, e6, e5, e4, e3, e2, e1, e0 = e7, e6, e5, e4, e3, e2, e1, e0, e
            f8, f7, f6, f5, f4, f3, f2, f1, f0 = f7, f6, f5, f4, f3, f2, f1, f0, f
            buf[n, 0] = y * inv
            buf[n, 1] = z * inv
        err[0, 0], err[0, 1], err[0, 2], err[0, 3], err[0, 4] = e0, e1, e2, e3, e4
        err[0, 5], err[0, 6], err[0, 7], err[0, 8] = e5, e6, e7, e8
        err[1, 0], err[1, 1], err[1, 2], err[1, 3], err[1, 4] = f0, f1, f2, f3, f4
        err[1, 5], err[1, 6], err[1, 7], err[1, 8] = f5, f6, f7, f8
    else:
        for n in range(start, stop):
            buf[n, 0] = _step(buf[n, 0] * scale, scale, top, tpdf(rng, 0) + 0.5) * inv
            buf[n, 1] = _step(buf[n, 1] * scale, scale, top, tpdf(rng, 1) + 0.5) * inv
