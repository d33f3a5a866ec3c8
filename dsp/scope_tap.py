"""The analyser tap: the audio loop's copy of each block into the spectrum ring, as one compiled call.

The web UI's spectrum analyser needs the last fraction of a second of audio, before and after the
chain. The engine keeps it in a small ring of float32 samples inside a memory-mapped file
(:mod:`firmware.scope_shm`); the control process reads that file and does the analysis
(:mod:`firmware.spectrum`), so the audio loop's whole share of the analyser is this copy: no FFT,
no lock, no allocation, and nothing at all to wait on when nobody is looking.

Like :mod:`dsp.capture_copy` it only moves samples; it lives in dsp/ with the other numba kernels
(plain arrays and scalars in, no I/O). The engine's chain loader compiles or loads it with
:func:`warm` off the loop; until then the loop skips the tap.
"""

from __future__ import annotations

import numpy as np

from dsp.jit import njit


@njit(cache=True)
def tap_block(ring, head, x, y):
    """Append x (input, columns 0-1) and y (output, columns 2-3) to ``ring`` (float32, (frames, 4)).

    ``head[0]`` counts the frames ever written; the block goes to rows ``head[0] % frames``
    onwards (wrapping) and ``head[0]`` is advanced only after the samples are stored, so a reader
    that takes ``head`` first and copies the rows behind it sees whole samples.
    """
    cap = ring.shape[0]
    n = y.shape[0]
    w = head[0] % cap
    for k in range(n):
        ring[w, 0] = x[k, 0]
        ring[w, 1] = x[k, 1]
        ring[w, 2] = y[k, 0]
        ring[w, 3] = y[k, 1]
        w += 1
        if w == cap:
            w = 0
    head[0] += n


def warm():
    """Compile or load :func:`tap_block` for the engine's one signature; returns it."""
    ring = np.zeros((8, 4), dtype=np.float32)
    head = np.zeros(1, dtype=np.int64)
    block = np.zeros((3, 2))
    tap_block(ring, head, block, block)
    return tap_block
