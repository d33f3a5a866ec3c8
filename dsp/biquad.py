"""Running biquads over short chunks of a stereo buffer, for the chain kernel.

Transposed direct form II: two state values per filter and channel, well behaved when the
coefficients glide (the chain redesigns them every sub-block while a parameter moves).
States that fall below 1e-30 are flushed to zero at the end of each run: after loud material
fades to silence a decaying IIR state would otherwise reach denormal numbers, which the CPU
handles up to a hundred times slower.
"""

from __future__ import annotations

from numba import njit

FLUSH = 1e-30


@njit(cache=True)
def run(buf, ch, start, stop, c, row, z):
    """Filter ``buf[start:stop, ch]`` in place with coefficients ``c[row]`` and state ``z[row, ch]``."""
    b0 = c[row, 0]
    b1 = c[row, 1]
    b2 = c[row, 2]
    a1 = c[row, 3]
    a2 = c[row, 4]
    s1 = z[row, ch, 0]
    s2 = z[row, ch, 1]
    for n in range(start, stop):
        x = buf[n, ch]
        y = b0 * x + s1
        s1 = b1 * x - a1 * y + s2
        s2 = b2 * x - a2 * y
        buf[n, ch] = y
    if abs(s1) < FLUSH:
        s1 = 0.0
    if abs(s2) < FLUSH:
        s2 = 0.0
    z[row, ch, 0] = s1
    z[row, ch, 1] = s2


@njit(cache=True)
def run_to(src, dst, ch, start, stop, c, row, z):
    """Like :func:`run` but reads ``src`` and writes ``dst`` (which may be the same array)."""
    b0 = c[row, 0]
    b1 = c[row, 1]
    b2 = c[row, 2]
    a1 = c[row, 3]
    a2 = c[row, 4]
    s1 = z[row, ch, 0]
    s2 = z[row, ch, 1]
    for n in range(start, stop):
        x = src[n, ch]
        y = b0 * x + s1
        s1 = b1 * x - a1 * y + s2
        s2 = b2 * x - a2 * y
        dst[n, ch] = y
    if abs(s1) < FLUSH:
        s1 = 0.0
    if abs(s2) < FLUSH:
        s2 = 0.0
    z[row, ch, 0] = s1
    z[row, ch, 1] = s2


@njit(cache=True)
def clear(z, row):
    for ch in range(z.shape[1]):
        z[row, ch, 0] = 0.0
        z[row, ch, 1] = 0.0
