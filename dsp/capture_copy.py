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

The writer's side, :func:`encode_rows`, turns ring rows into the file's bytes in one call that
releases the interpreter lock (``nogil``). The numpy encoding it replaces made six array calls
and their temporaries per write, each taking and dropping the GIL, every 20 ms for every tap; the
audio loop needs the GIL when its read returns, so each of those holds could delay the start of a
block (period margin; the loop keeps the GIL through the block itself, docs/reliability.md).
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


@njit(cache=True, nogil=True)
def encode_rows(ring, start, n, col, channels, width, out):
    """Rows ``start .. start + n`` (no wrap), columns ``col .. col + channels`` of ``ring`` into
    ``out`` (uint8) as interleaved little-endian samples of ``width`` bytes; returns the bytes written.

    The capture formats' two widths: 3, 24-bit PCM, ``rint(x * 2^23)`` clipped to the 24-bit range
    (ties to even), NaN as 0, the same bytes as :func:`firmware.capture_writer.encode`; 4, IEEE
    single precision.
    """
    k = 0
    if width == 3:
        for r in range(start, start + n):
            for c in range(col, col + channels):
                x = ring[r, c] * 8388608.0
                if x != x:
                    w = 0
                else:
                    w = np.int64(np.rint(min(max(x, -8388608.0), 8388607.0)))
                out[k] = w & 0xFF
                out[k + 1] = (w >> 8) & 0xFF
                out[k + 2] = (w >> 16) & 0xFF
                k += 3
    else:
        f = out.view(np.float32)
        for r in range(start, start + n):
            for c in range(col, col + channels):
                f[k] = np.float32(ring[r, c])
                k += 1
        k *= 4
    return k


def warm():
    """Compile or load :func:`copy_block` and :func:`encode_rows` for the engine's one signature
    each; returns ``(copy_block, encode_rows)``."""
    ring = np.zeros((4, 4))
    block = np.zeros((3, 2))
    copy_block(ring, 2, block, block, 0, 2)
    out = np.zeros(64, dtype=np.uint8)
    encode_rows(ring, 0, 2, 0, 2, 3, out)
    encode_rows(ring, 0, 2, 2, 2, 4, out)
    return copy_block, encode_rows
