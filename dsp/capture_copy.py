"""The capture ring's block copy as one compiled call (the audio loop's share of a capture).

It lives in dsp/ with the other numba kernels (plain arrays and scalars in, no I/O), although it only
moves samples: firmware/capture_writer.py owns the ring and calls it.

Why: :meth:`firmware.capture_writer.CaptureSession.push` copied a block into the ring with numpy
slicing, two taps and a possible wrap: about six numpy calls and a dozen view objects per block,
2.3 us warm and 3.2 us with cold caches (p99 19.5 us) on the 2-core test machine, on every block
of a capture. One numba call does the same copy in 0.6 / 1.1 us (p99 6.5 us)
(``bench/bench_glide.py``, docs/reliability.md "Load").

The kernel is compiled (or loaded from numba's cache) by :func:`warm`, which the engine's chain
loader calls off the loop; until then ``push`` keeps the numpy copy, so the loop never compiles.
It is only ever called with the engine's own C-contiguous float64 arrays (one signature).
"""

from __future__ import annotations

import numpy as np

from dsp.jit import njit


@njit(cache=True)
def copy_block(ring, start, x, y, in_col, out_col):
    """x[:n] into ring columns in_col, in_col + 1 and y[:n] into out_col, out_col + 1 (a column < 0:
    that tap is not recorded), from row ``start``, wrapping at the ring's end."""
    cap = ring.shape[0]
    w = start
    for n in range(y.shape[0]):
        if in_col >= 0:
            ring[w, in_col] = x[n, 0]
            ring[w, in_col + 1] = x[n, 1]
        if out_col >= 0:
            ring[w, out_col] = y[n, 0]
            ring[w, out_col + 1] = y[n, 1]
        w += 1
        if w == cap:
            w = 0


def warm():
    """Compile or load :func:`copy_block` for the engine's one signature; returns it."""
    ring = np.zeros((4, 4))
    block = np.zeros((3, 2))
    copy_block(ring, 2, block, block, 0, 2)
    return copy_block
