"""The analyser tap: the audio loop's copy of each block for the spectrum analyser, as compiled calls.

The web UI's spectrum analyser needs the last fraction of a second of audio, before and after the
chain. The control process reads it from a memory-mapped file (:mod:`firmware.scope_shm`) and does
the analysis (:mod:`firmware.spectrum`). Two copies get it there:

* :func:`tap_block`, in the audio loop: the block, in and out, into a ring in the engine's own
  locked memory. That is the loop's whole share of the analyser: no FFT, no lock, no allocation.
* :func:`publish`, in the meter publisher thread (25 Hz): what the loop appended since the last
  time, from that ring into the same rows of the file's ring, *without the interpreter lock*.

Why not let the loop write the file's ring directly (as it did at first): a shared mapping of a
file on a disk filesystem is write-protected again after every writeback, and the next write to
each of its pages faults into the filesystem (ext4 starts a journal handle, which can wait for a
commit). That is a wait on something other than the device, which the loop must never do.
Measured here (`tap_block` into a 48 kHz ring every 0.5 ms for 10 s, ``sync`` every 50 ms to force
writebacks): at most 642 us with the file on ext4 (3 calls over 500 us) against 236 us on tmpfs;
with the kernel's own writeback (every 5 s) 120 against 82 us. An A/B of the JACK-paced 60 s test
(two rounds each) did not separate the two (2 and 0 xruns against 1 and 0: the host's own stalls
dominate), so this is a hazard removed, not a measured cure. The publisher can afford such a
wait, and waits without the GIL, so the loop never waits for it either. (On the box the file is
on tmpfs, ``/run/masterbox``; in development, the demo and CI it is not.)

Like :mod:`dsp.capture_copy` these only move samples; they live in dsp/ with the other numba kernels
(plain arrays and scalars in, no I/O). The engine's chain loader compiles or loads them with
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


PUBLISH_STEP = 4096    # rows: firmware.scope_shm.MAX_BLOCK must be at least this


@njit(cache=True, nogil=True)
def publish(src, src_head, dst, dst_head, done):
    """Copy the rows of ``src`` written since frame ``done[0]`` into the same rows of ``dst``.

    ``src`` and ``dst`` are rings of the same shape; ``src_head[0]`` counts the frames the loop has
    written (:func:`tap_block`), and ``dst_head[0]`` follows the copy at least every
    :data:`PUBLISH_STEP` rows (a reader of ``dst`` trusts the rows behind its head, and the rows
    being written are never more than that ahead of it). After a stall longer than the ring, only
    the newest ring's worth is copied.
    """
    cap = src.shape[0]
    head = src_head[0]
    start = done[0]
    if head - start > cap:
        start = head - cap
    r = start % cap
    for f in range(start, head):
        dst[r, 0] = src[r, 0]
        dst[r, 1] = src[r, 1]
        dst[r, 2] = src[r, 2]
        dst[r, 3] = src[r, 3]
        r += 1
        if r == cap:
            r = 0
        if (f + 1 - start) % PUBLISH_STEP == 0:
            dst_head[0] = f + 1
    dst_head[0] = head
    done[0] = head


def warm():
    """Compile or load :func:`tap_block` and :func:`publish` for the engine's one signature each;
    returns ``(tap_block, publish)``."""
    ring = np.zeros((8, 4), dtype=np.float32)
    other = np.zeros((8, 4), dtype=np.float32)
    head = np.zeros(1, dtype=np.int64)
    mark = np.zeros(1, dtype=np.int64)
    done = np.zeros(1, dtype=np.int64)
    block = np.zeros((3, 2))
    tap_block(ring, head, block, block)
    publish(ring, head, other, mark, done)
    return tap_block, publish
