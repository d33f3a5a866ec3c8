"""The multiband compressor's static maths, in plain Python: one copy for the kernel and the screen.

Why a module of its own (as :mod:`dsp.eq_design` for the EQ): the chain compiles
:func:`static_gr_db` with numba (:mod:`dsp.compressor`), while the Chain page, served by the
control process that never imports numba, draws each band's static curve and where the bands
split from the same functions (:func:`multiband_response`, numpy only). What the page shows is
what the box does.

The split is :mod:`dsp.crossover`'s: Linkwitz-Riley 4th order, i.e. two cascaded Butterworth
sections (trapezoidal state-variable filters: the bilinear transform of the analog sections),
warped at the split frequency ``fc``. So at a frequency
``f`` the digital sections respond as the analog ones at ``w = tan(pi f / rate) / tan(pi fc / rate)``,
and the magnitudes are exact, not an analog approximation::

    |LP4| = 1 / (1 + w^4)          |HP4| = w^4 / (1 + w^4)

The low band is LP4(f_lo) (times an all-pass), the mid band HP4(f_lo) LP4(f_hi), the high band
HP4(f_lo) HP4(f_hi).
"""

from __future__ import annotations

import math

LEVEL_FLOOR_DB = -60.0   # the static curves are drawn from here (the lowest threshold) to 0 dBFS
CURVE_LEVELS = 121       # one point every 0.5 dB


def static_gr_db(level_db, threshold_db, ratio, knee_db):
    """Gain reduction in dB (>= 0) the static curve asks for at a detector level of ``level_db``.

    The quadratic soft knee of Giannoulis, Massberg & Reiss (2012): nothing below ``T - W/2``,
    a slope of ``1 - 1/R`` above ``T + W/2``, a parabola joining the two.
    """
    over = level_db - threshold_db
    slope = 1.0 - 1.0 / ratio
    if knee_db > 0.0 and 2.0 * abs(over) <= knee_db:
        t = over + knee_db * 0.5
        return slope * t * t / (2.0 * knee_db)
    if over <= 0.0:
        return 0.0
    return slope * over


def band_magnitudes(f_lo: float, f_hi: float, rate: int, freqs):
    """``(low, mid, high)``: each band's linear magnitude at ``freqs`` (below Nyquist), split at ``f_lo``, ``f_hi``."""
    import numpy as np

    t = np.tan(np.pi * np.asarray(freqs, dtype=float) / rate)

    def lp4(fc):
        w4 = (t / math.tan(math.pi * fc / rate)) ** 4
        return 1.0 / (1.0 + w4)

    lo_lp, hi_lp = lp4(f_lo), lp4(f_hi)
    return lo_lp, (1.0 - lo_lp) * hi_lp, (1.0 - lo_lp) * (1.0 - hi_lp)


def band_curve(values: dict, band: str, levels_db):
    """``(out_db, gr_db)`` of one band for a steady signal in it at ``levels_db`` (its peak, dBFS).

    What the chain does to it: the static curve (no reduction once the band is bypassed), the
    band's makeup, then the parallel mix against the dry signal in amplitude (the two are in
    phase: the dry path has the bands' all-passes). A band muted by another band's solo keeps
    only the dry part. With the multiband off the band passes unchanged.
    """
    import numpy as np

    from dsp import schema

    levels = np.asarray(levels_db, dtype=float)
    p = f"mb.{band}."
    if not values["mb.on"]:
        return levels.copy(), np.zeros(len(levels))
    if values[p + "bypass"]:
        gr = np.zeros(len(levels))
        wet = np.ones(len(levels))
    else:
        gr = np.array([static_gr_db(x, values[p + "threshold_db"], values[p + "ratio"], values[p + "knee_db"])
                       for x in levels])
        wet = 10.0 ** ((values[p + "makeup_db"] - gr) / 20.0)
    soloed = [b for b in schema.MB_BANDS if values[f"mb.{b}.solo"]]
    if soloed and band not in soloed:
        wet = np.zeros(len(levels))
    mix = values["mb.mix"] / 100.0
    gain = np.maximum(mix * wet + (1.0 - mix), 1e-6)        # a muted band at 100 % wet: -120 dB, finite
    return levels + 20.0 * np.log10(gain), gr


def multiband_response(values: dict, rate: int, freqs, levels_db) -> dict:
    """What the Chain page draws: the bands' magnitudes (dB) at ``freqs`` and their static curves at ``levels_db``."""
    import numpy as np

    from dsp import schema

    freqs = np.asarray(freqs, dtype=float)
    freqs = freqs[(freqs > 0.0) & (freqs < rate / 2.0)]
    mags = band_magnitudes(values["mb.xover_low"], values["mb.xover_high"], rate, freqs)
    bands = {}
    for band, mag in zip(schema.MB_BANDS, mags, strict=True):
        out_db, gr_db = band_curve(values, band, levels_db)
        bands[band] = {"split_db": 20.0 * np.log10(np.maximum(mag, 1e-12)), "out_db": out_db, "gr_db": gr_db}
    return {"freqs": freqs, "levels_db": np.asarray(levels_db, dtype=float), "bands": bands}


def curve_levels():
    """The detector levels a static curve is drawn at: ``LEVEL_FLOOR_DB`` .. 0 dBFS in 0.5 dB steps."""
    import numpy as np

    return np.linspace(LEVEL_FLOOR_DB, 0.0, CURVE_LEVELS)
