"""Parameter smoothing on a fixed sub-block grid.

The chain advances every parameter toward its target once per ``SUB`` samples, counted from
the start of the stream, never from the start of a block: the output is then the same however
the host cuts the stream into blocks. Continuous parameters glide with a one-pole of the
schema's ``smooth_ms`` (in the log domain for log-curve parameters such as frequencies, so a
sweep moves evenly in octaves). Gains computed from the smoothed values are interpolated
linearly across the sub-block (see ``ramp``), so they never step.
"""

from __future__ import annotations

import math

import numpy as np

from dsp.jit import njit

SUB = 64  # samples per sub-block: coefficients are redesigned at most this often (1.3 ms at 48 kHz)


def alphas(params, rate: float) -> np.ndarray:
    """Per-parameter one-pole step for one sub-block (1.0 = jump at the next sub-block)."""
    out = np.ones(len(params))
    for k, p in enumerate(params):
        if p.smooth_ms > 0:
            out[k] = 1.0 - math.exp(-SUB / (p.smooth_ms * 1e-3 * rate))
    return out


@njit(cache=True)
def advance(tgt, cur, alpha, islog):
    """One sub-block step of every parameter toward its target; snaps when within rounding.

    Returns True when any value moved (the caller can skip re-deriving everything otherwise).
    """
    moved = False
    for k in range(tgt.shape[0]):
        t = tgt[k]
        c = cur[k]
        if c == t:
            continue
        moved = True
        a = alpha[k]
        if a >= 1.0:
            c = t
        elif islog[k] > 0.5 and c > 0.0 and t > 0.0:
            c = c * (t / c) ** a
        else:
            c = c + (t - c) * a
        if abs(t - c) <= 1e-9 * (abs(t) + 1.0):   # within 1e-9 of the range's units near 0
            c = t
        cur[k] = c
    return moved


@njit(cache=True)
def toward(value, target, step):
    """Move ``value`` linearly toward ``target`` by at most ``step`` (switch crossfades)."""
    if value < target:
        return min(value + step, target)
    return max(value - step, target)


@njit(cache=True)
def fade(u):
    """The crossfade weight at ``u`` (0..1) along a switch's linear ramp: smoothstep, 3u^2 - 2u^3.

    Its slope is 0 where the fade starts and ends, so the weight has no corners: a linear fade
    between two differently filtered versions of the signal starts and stops with a kink, which
    splashes a click's worth of high frequencies. Exactly 0 and 1 at the ends."""
    return u * u * (3.0 - 2.0 * u)
