"""Listening modes of the box's output: stereo, mono, side, left or right on both speakers.

A mastering engineer checks a master in mono (does the bass or the lead vocal vanish when the
sides cancel?), listens to the side channel alone (what the width control and the reverbs put
there) and to each channel alone. Monitor controllers (the Dangerous Monitor ST, SPL's MTC) have
a switch for each. The box sits between the desk and the recorder, so its output *is* the
monitor feed; these modes act on that output only, after the capture and analyser taps and after
the reference track, so recordings and meters stay the stereo master's and a reference is checked
in mono like the master.

Each mode is a 2 x 2 matrix on (L, R)::

    out_L = ll * L + lr * R
    out_R = rl * L + rr * R

``mono`` is (L + R) / 2 on both sides (a centred sound keeps its level), ``side`` (L - R) / 2 on
both, ``left``/``right`` one channel on both. The matrix is scaled by ``gain``: the **As streamed**
preview (:mod:`firmware.streaming`) plays the master at the level a streaming service would.
Changing the mode or the gain moves every coefficient from where it stands to the new matrix
along a raised cosine of ``fade_samples``, so a switch never clicks, even one that arrives in the
middle of another. In ``stereo`` at unity gain with no fade under way the kernel does not touch
the samples at all (the output is bit for bit the master).

The kernel takes plain arrays and scalars, allocates nothing and releases the interpreter lock.
"""

from __future__ import annotations

import math

import numpy as np

from dsp.jit import njit
from dsp.schema import MONITOR_MODES

MODES = MONITOR_MODES           # the names, in the order of the table's rows (the kernel's ``mode``)

# one row per mode, in MODES order: (ll, lr, rl, rr)
_TABLE = np.array([
    (1.0, 0.0, 0.0, 1.0),       # stereo
    (0.5, 0.5, 0.5, 0.5),       # mono
    (0.5, -0.5, 0.5, -0.5),     # side
    (1.0, 0.0, 1.0, 0.0),       # left
    (0.0, 1.0, 0.0, 1.0),       # right
])
assert len(_TABLE) == len(MODES)

# fields of the kernel's state array
S_FROM = 0      # 4 coefficients the current fade started from
S_TO = 4        # 4 coefficients it goes to (the mode asked for last)
S_T = 8         # position on the fade: 0 = at S_FROM, 1 = at S_TO
STATE_LEN = 9


@njit(cache=True, nogil=True)
def listen(y, state, mode, fade_samples, gain):
    """Apply mode number ``mode`` (an index into :data:`MODES`) times ``gain`` (linear) to ``y``
    (frames, 2) in place, fading to that matrix from the last one.

    Returns False when the output is plain stereo at unity gain and nothing moves, so the caller
    may skip the next call until the mode or the gain changes again.
    """
    ll = _TABLE[mode, 0] * gain
    lr = _TABLE[mode, 1] * gain
    rl = _TABLE[mode, 2] * gain
    rr = _TABLE[mode, 3] * gain
    t = state[S_T]
    if ll != state[S_TO] or lr != state[S_TO + 1] or rl != state[S_TO + 2] or rr != state[S_TO + 3]:
        # a new mode: the fade starts from wherever the coefficients stand now
        w = 1.0 if t >= 1.0 else 0.5 - 0.5 * math.cos(math.pi * t)
        for k in range(4):
            state[S_FROM + k] += w * (state[S_TO + k] - state[S_FROM + k])
        state[S_TO] = ll
        state[S_TO + 1] = lr
        state[S_TO + 2] = rl
        state[S_TO + 3] = rr
        t = 0.0
    plain = ll == 1.0 and lr == 0.0 and rl == 0.0 and rr == 1.0
    if t >= 1.0 and plain:
        return False
    a0 = state[S_FROM]
    b0 = state[S_FROM + 1]
    c0 = state[S_FROM + 2]
    d0 = state[S_FROM + 3]
    step = 1.0 / fade_samples
    a, b, c, d = ll, lr, rl, rr
    for i in range(y.shape[0]):
        if t < 1.0:
            t = min(1.0, t + step)
            w = 1.0 if t >= 1.0 else 0.5 - 0.5 * math.cos(math.pi * t)
            a = a0 + w * (ll - a0)
            b = b0 + w * (lr - b0)
            c = c0 + w * (rl - c0)
            d = d0 + w * (rr - d0)
        left = y[i, 0]
        right = y[i, 1]
        y[i, 0] = a * left + b * right
        y[i, 1] = c * left + d * right
    state[S_T] = t
    return not (t >= 1.0 and plain)


def new_state() -> np.ndarray:
    """A state array: plain stereo, no fade under way."""
    s = np.zeros(STATE_LEN)
    s[S_FROM:S_FROM + 4] = _TABLE[0]
    s[S_TO:S_TO + 4] = _TABLE[0]
    s[S_T] = 1.0
    return s


def warm():
    """Load (or compile) :func:`listen` for the engine's one signature; returns it."""
    listen(np.zeros((4, 2)), new_state(), 1, 2.0, 1.0)
    return listen
