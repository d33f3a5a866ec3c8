"""Mixing a reference track into the box's output: the "REF" button of the Live page.

Mastering engineers judge a master against a commercial record they trust, switching between the
two at the same loudness. The engine keeps the reference (already at the device's rate, 32-bit
float) in memory and, while REF is on, plays it in place of the master. This kernel is the part
that runs in the audio loop, once per block, only while the reference is on or fading:

* the switch is a raised-cosine crossfade of ``fade_samples`` (the engine's 50 ms, the same as its
  start-up fade), so switching never clicks;
* the reference's gain (its level match) glides with a one-pole of a few milliseconds, so a new
  match never steps;
* the reference advances only while it is heard, and wraps to its start at its end, so switching
  back and forth walks through it as a listener expects.

It takes plain arrays and scalars, allocates nothing and releases the interpreter lock.
"""

from __future__ import annotations

import math

import numpy as np

from dsp.jit import njit

# fields of the kernel's state array
S_FADE = 0      # 0 = all master, 1 = all reference (position on the crossfade, linear)
S_GAIN = 1      # the reference's gain now (linear), gliding toward the requested one
S_POS = 2       # the next frame of the reference to play (a whole number)
STATE_LEN = 3


@njit(cache=True, nogil=True)
def mix(y, ref, state, on, gain, fade_samples, gain_coef):
    """Crossfade ``y`` (frames, 2) toward ``ref`` (frames, 2, float32) times ``gain``, in place.

    ``on`` says which way the crossfade moves; ``state`` (:data:`STATE_LEN` float64) carries the
    fade position, the gliding gain and the reference position from block to block. With the
    fade at 0 and ``on`` false, ``y`` is left exactly as it was.
    """
    n = y.shape[0]
    frames = ref.shape[0]
    fade = state[S_FADE]
    g = state[S_GAIN]
    pos = int(state[S_POS])
    step = 1.0 / fade_samples if on else -1.0 / fade_samples
    if pos >= frames:
        pos = 0
    if fade <= 0.0:
        g = gain                # not heard yet: a new match takes effect at once
    for i in range(n):
        fade = min(1.0, max(0.0, fade + step))
        if fade <= 0.0:
            continue            # the master alone; the reference waits where it was
        g += (gain - g) * gain_coef
        w = 1.0 if fade >= 1.0 else 0.5 - 0.5 * math.cos(math.pi * fade)
        r0 = ref[pos, 0] * g
        r1 = ref[pos, 1] * g
        y[i, 0] += w * (r0 - y[i, 0])
        y[i, 1] += w * (r1 - y[i, 1])
        pos += 1
        if pos >= frames:
            pos = 0
    state[S_FADE] = fade
    state[S_GAIN] = g
    state[S_POS] = pos


def new_state(gain: float = 1.0) -> np.ndarray:
    """A state array: all master, at the reference's start."""
    s = np.zeros(STATE_LEN)
    s[S_GAIN] = gain
    return s


def warm():
    """Load (or compile) :func:`mix` for the engine's one signature; returns it.

    The engine's reference is a read-only array over a mapped file, which numba types apart from a
    writable one: warming with a writable array would leave a compile for the loop's first call.
    """
    ref = np.zeros((3, 2), dtype=np.float32)
    ref.setflags(write=False)
    mix(np.zeros((4, 2)), ref, new_state(), True, 1.0, 2.0, 0.5)
    return mix
