"""Band compressor pieces: the soft-knee static curve and the attack/release smoother.

The static curve is the usual quadratic soft knee (Giannoulis, Massberg & Reiss 2012):
below ``T - W/2`` nothing happens, above ``T + W/2`` the slope is ``1/R``, in between a
parabola joins the two. The smoother works on the gain reduction in dB with separate attack
and release one-pole coefficients ("branching" smoothing), so attack and release are true
time constants: after a step the reduction reaches 63 % of its final value in the attack time.

The chain runs the gain computer and the smoother once per sub-block (``smoothing.SUB``, 64
samples) on the peak of the previous sub-block (both channels: stereo-linked), with the
one-pole coefficients raised to the power SUB, and glides the gain linearly across the
sub-block. Same time constants, same static curve, one logarithm and one exponential per band
per sub-block instead of per sample; the price is one sub-block (1.3 ms at 48 kHz) more
reaction time, a peak hold any mastering compressor has anyway.
"""

from __future__ import annotations

import math

from dsp.jit import njit


@njit(cache=True)
def static_gr_db(level_db, threshold_db, ratio, knee_db):
    """Gain reduction in dB (>= 0) the static curve asks for at ``level_db``."""
    over = level_db - threshold_db
    slope = 1.0 - 1.0 / ratio
    if knee_db > 0.0 and 2.0 * abs(over) <= knee_db:
        t = over + knee_db * 0.5
        return slope * t * t / (2.0 * knee_db)
    if over <= 0.0:
        return 0.0
    return slope * over


def static_curve_formula(level_db: float, threshold_db: float, ratio: float, knee_db: float) -> float:
    """Output level in dB for a steady input level; the textbook piecewise formula (tests' oracle)."""
    x, T, R, W = level_db, threshold_db, ratio, knee_db
    if 2 * (x - T) < -W:
        return x
    if W > 0 and 2 * abs(x - T) <= W:
        return x + (1 / R - 1) * (x - T + W / 2) ** 2 / (2 * W)
    return T + (x - T) / R


@njit(cache=True)
def coefficient(time_ms, rate):
    """One-pole coefficient for a time constant in ms at ``rate`` (0 < c < 1)."""
    return math.exp(-1000.0 / (max(time_ms, 1e-3) * rate))


@njit(cache=True)
def smooth_gr(env, target, a_attack, a_release):
    """One step of the branching smoother on gain reduction in dB."""
    if target > env:
        return a_attack * env + (1.0 - a_attack) * target
    env = a_release * env + (1.0 - a_release) * target
    return env if env > 1e-9 else 0.0
