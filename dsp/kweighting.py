"""K-weighting (ITU-R BS.1770 pre-filter) coefficients for any sample rate.

BS.1770 publishes the two biquads only at 48 kHz. To meter at 44.1, 88.2, 96 or 192 kHz with
the same frequency response we go back to the analog prototypes behind that table (the
re-derivation libebur128 uses: a high shelf and a second-order high-pass) and map them to the
requested rate with the bilinear transform, prewarped at each filter's corner frequency. At
48 kHz this reproduces the published table to rounding error, which the tests check.

Plain math only: the coefficients are computed once per meter and stored in its state array.
"""

from __future__ import annotations

import math

# Analog prototype of the shelving stage ("stage 1": models the head's acoustic effect).
SHELF_F0_HZ = 1681.974450955533
SHELF_GAIN_DB = 3.999843853973347
SHELF_Q = 0.7071752369554196
SHELF_VB_EXPONENT = 0.4996667741545416

# Analog prototype of the high-pass stage ("stage 2": the RLB weighting curve).
HIGHPASS_F0_HZ = 38.13547087602444
HIGHPASS_Q = 0.5003270373238773


def shelf_coefficients(rate: float) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """``(b, a)`` of the high-shelf stage at ``rate`` Hz, normalised so ``a[0] == 1``."""
    k = math.tan(math.pi * SHELF_F0_HZ / rate)
    vh = 10.0 ** (SHELF_GAIN_DB / 20.0)
    vb = vh**SHELF_VB_EXPONENT
    a0 = 1.0 + k / SHELF_Q + k * k
    b = ((vh + vb * k / SHELF_Q + k * k) / a0, 2.0 * (k * k - vh) / a0, (vh - vb * k / SHELF_Q + k * k) / a0)
    a = (1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / SHELF_Q + k * k) / a0)
    return b, a


def _highpass_a0(rate: float) -> float:
    k = math.tan(math.pi * HIGHPASS_F0_HZ / rate)
    return 1.0 + k / HIGHPASS_Q + k * k


def highpass_coefficients(rate: float) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """``(b, a)`` of the high-pass stage at ``rate`` Hz.

    The BS.1770 table leaves the numerator at ``[1, -2, 1]`` instead of scaling it by
    ``1/a0``, which gives the 48 kHz filter a pass-band gain of +0.043 dB that the standard's
    -0.691 dB calibration absorbs. Keeping ``[1, -2, 1]`` at other rates (as libebur128 and
    ffmpeg do) would change that gain with the rate (+0.02 dB at 96 kHz). We scale the
    numerator by ``a0(48 kHz) / a0(rate)`` instead, so every rate has the 48 kHz table's
    response, gain included; at 48 kHz the factor is exactly 1.
    """
    a0 = _highpass_a0(rate)
    k = math.tan(math.pi * HIGHPASS_F0_HZ / rate)
    g = _highpass_a0(48000.0) / a0
    b = (g, -2.0 * g, g)
    a = (1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / HIGHPASS_Q + k * k) / a0)
    return b, a


def kweighting_coefficients(rate: float) -> list[float]:
    """The ten numbers the meter kernel reads: shelf ``b0 b1 b2 a1 a2`` then high-pass ``b0 b1 b2 a1 a2``."""
    if not rate > 2 * SHELF_F0_HZ:
        raise ValueError(f"sample rate {rate} Hz is too low for K-weighting")
    (sb, sa), (hb, ha) = shelf_coefficients(rate), highpass_coefficients(rate)
    return [sb[0], sb[1], sb[2], sa[1], sa[2], hb[0], hb[1], hb[2], ha[1], ha[2]]
