"""Band compressor pieces: the soft-knee static curve and the attack/release smoother.

The static curve is the usual quadratic soft knee (Giannoulis, Massberg & Reiss 2012):
below ``T - W/2`` nothing happens, above ``T + W/2`` the slope is ``1/R``, in between a
parabola joins the two. The smoother works on the gain reduction in dB with separate attack
and release one-pole coefficients ("branching" smoothing), so attack and release are true
time constants: after a step the reduction reaches 63 % of its final value in the attack time.

The chain runs the gain computer and the smoother once per sub-block (``smoothing.SUB``, 64
samples) with the one-pole coefficients raised to the power SUB, and glides the gain linearly
across the sub-block. Same time constants, same static curve, one logarithm and one exponential
per band per sub-block instead of per sample.

The detector is the band's peak (both channels: stereo-linked) held over the last half cycle of
the lowest note the band carries: the largest of the last ``hold_subblocks`` sub-block peaks.
Why: a peak detector that lets go within a cycle follows the waveform of a low note, and a
gain that follows the waveform is distortion. With the peak of each 64-sample sub-block alone,
a 40 Hz tone compressed by the `loud` preset's low band came out with its third harmonic at
-50 dB (a 200 Hz tone in the mid band -66 dB); with the hold, under -140 dB. The hold covers
a half cycle of 20 Hz in the low band (25 ms), of an octave under the lower split in the mid
band (7 ms at 140 Hz) and in the high band (one sub-block, i.e. no hold, for every split the
schema allows at 44.1/48 kHz: de-essing lets go as fast as before). The release starts when the
hold ends; the attack is unchanged (a new peak enters the hold at once), one sub-block (1.3 ms
at 48 kHz) after it.
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


PEAK_RING = 128         # sub-block peaks remembered per band: 25 ms up to 327 kHz
LOW_BAND_EDGE_HZ = 20.0  # the lowest note the low band's detector holds for


@njit(cache=True)
def hold_subblocks(lowest_hz, rate, sub):
    """Sub-blocks of ``sub`` samples that span half a cycle of ``lowest_hz`` (1..PEAK_RING).

    Any stretch of half a cycle of a tone holds one of its peaks, so a detector that keeps the
    largest peak of that long sees a steady level for a steady tone."""
    half_cycle = 0.5 * rate / max(lowest_hz, 1.0)
    return max(1, min(PEAK_RING, int(math.ceil(half_cycle / sub))))


@njit(cache=True)
def held_peak(ring, start, newest, peak, hold):
    """Store ``peak`` (the sub-block just ended) at ``ring[start + newest]`` of a PEAK_RING-long
    ring and return the largest of the last ``hold`` peaks stored."""
    ring[start + newest] = peak
    level = peak
    for k in range(1, hold):
        v = ring[start + (newest - k + PEAK_RING) % PEAK_RING]
        if v > level:
            level = v
    return level


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
