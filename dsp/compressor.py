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

from dsp import multiband_design
from dsp.jit import njit

# Gain reduction in dB (>= 0) the static curve asks for at a level; the maths is
# :func:`dsp.multiband_design.static_gr_db`, where the Chain page draws the curve from too.
static_gr_db = njit(cache=True)(multiband_design.static_gr_db)


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
