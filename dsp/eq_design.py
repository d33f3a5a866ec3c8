"""The EQ bands' design maths, in plain Python: one copy for the kernels and for the curve on screen.

Why a module of its own: the chain's EQ kernel (:mod:`dsp.svf`) compiles :func:`svf_band` with
numba, while the web UI, which runs in the control process and must never import numba, draws
the EQ's response from the very same function (:func:`eq_response`, numpy only). So what the
Chain page shows is what the box does, and the maths exists once.

A band is Andrew Simper's trapezoidal state-variable filter. With ``g``, ``k`` and the output mix
``m0, m1, m2`` from :func:`svf_band`, its response is the bilinear transform of the analog

    H(s) = m0 + (m1 s + m2) / (s^2 + k s + 1),    s = j tan(pi f / rate) / g,

which is the RBJ cookbook biquad of the same shape (the tests check both against scipy).
"""

from __future__ import annotations

import math

# Filter shapes. The first six match ``schema.EQ_TYPES`` by position.
BELL, LOW_SHELF, HIGH_SHELF, LOW_CUT, HIGH_CUT, TILT = 0, 1, 2, 3, 4, 5
ALLPASS = 6

TONE_Q = 0.5   # the tone control's tilt: two real poles, the gentlest second-order slope, no bump


def tone_as_band(tone_db):
    """The tone control (``eq.tone_db``) as a band of :func:`svf_band`: ``(kind, gain_db, q)``.

    A tilt spanning twice ``tone_db``: the treble goes up by ``tone_db`` and the bass down by as
    much, the pivot stays put. At 0 dB the band's output mix is exactly ``1, 0, 0`` (a wire).
    """
    return TILT, 2.0 * tone_db, TONE_Q


def svf_band(kind, freq, gain_db, q, rate):
    """``(g, k, m0, m1, m2)`` of one band: the integrators' gain, the damping and the output mix.

    ``freq`` is clamped below Nyquist so a 20 kHz band at 44.1 kHz stays stable. Tilt is the high
    shelf lowered by half its gain, so it pivots around ``freq``.
    """
    f = min(max(freq, 1.0), 0.49 * rate)
    t = math.tan(math.pi * f / rate)
    A = 10.0 ** (gain_db / 40.0)
    k = 1.0 / q
    if kind == BELL:
        g = t
        k = 1.0 / (q * A)
        m0, m1, m2 = 1.0, k * (A * A - 1.0), 0.0
    elif kind == LOW_SHELF:
        g = t / math.sqrt(A)
        m0, m1, m2 = 1.0, k * (A - 1.0), A * A - 1.0
    elif kind == HIGH_SHELF or kind == TILT:
        g = t * math.sqrt(A)
        m0, m1, m2 = A * A, k * (1.0 - A) * A, 1.0 - A * A
        if kind == TILT:  # the shelf lowered by half its gain: pivots around f
            m0 /= A
            m1 /= A
            m2 /= A
    elif kind == LOW_CUT:
        g = t
        m0, m1, m2 = 1.0, -k, -1.0
    elif kind == HIGH_CUT:
        g = t
        m0, m1, m2 = 0.0, 0.0, 1.0
    else:  # ALLPASS
        g = t
        m0, m1, m2 = 1.0, -2.0 * k, 0.0
    return g, k, m0, m1, m2


def band_response(kind, freq, gain_db, q, rate, freqs):
    """Complex response of one band at ``freqs`` (Hz, below ``rate / 2``), as the kernel runs it."""
    import numpy as np

    g, k, m0, m1, m2 = svf_band(kind, freq, gain_db, q, rate)
    s = 1j * np.tan(np.pi * np.asarray(freqs, dtype=float) / rate) / g
    return m0 + (m1 * s + m2) / (s * s + k * s + 1.0)


CURVE_POINTS = 241   # 20 Hz .. 20 kHz, 80 points per decade: smooth at any width a page draws


def log_frequencies(n: int = CURVE_POINTS, lo: float = 20.0, hi: float = 20000.0):
    """``n`` frequencies spaced evenly on a log axis from ``lo`` to ``hi`` (what a curve is drawn on)."""
    import numpy as np

    return np.geomspace(lo, hi, n)


def eq_response(values: dict, rate: int, freqs) -> dict:
    """The EQ stage's magnitude response (dB) for schema ``values``, on the mid and the side channel.

    The six bands, then the tone control (on both channels). A band placed ``stereo`` acts on
    left and right alike, hence on mid and side alike; a ``mid`` or ``side`` band on that channel
    alone. Bands that are off are left out. Frequencies at or above Nyquist are dropped (the
    band's response is not defined there).
    """
    import numpy as np

    from dsp import schema

    freqs = np.asarray(freqs, dtype=float)
    freqs = freqs[(freqs > 0.0) & (freqs < rate / 2.0)]
    mid = np.ones(len(freqs), dtype=complex)
    side = np.ones(len(freqs), dtype=complex)
    for n in range(1, schema.EQ_BANDS + 1):
        p = f"eq{n}."
        if not values[p + "on"]:
            continue
        h = band_response(schema.EQ_TYPES.index(values[p + "type"]), values[p + "freq"], values[p + "gain_db"],
                          values[p + "q"], rate, freqs)
        place = values[p + "place"]
        if place in ("stereo", "mid"):
            mid = mid * h
        if place in ("stereo", "side"):
            side = side * h
    if values["eq.tone_db"] != 0.0:
        kind, gain_db, q = tone_as_band(values["eq.tone_db"])
        h = band_response(kind, values["eq.tone_freq"], gain_db, q, rate, freqs)
        mid = mid * h
        side = side * h
    floor = 1e-12   # a cut's zero at DC would be -inf dB; keep the number finite for JSON

    def db(h):
        return 20.0 * np.log10(np.maximum(np.abs(h), floor))

    return {"freqs": freqs, "mid_db": db(mid), "side_db": db(side)}
