"""Running biquads over short chunks of a stereo buffer, for the chain kernel.

Transposed direct form II: two state values per filter and channel, well behaved when the
coefficients glide (the chain redesigns them every sub-block while a parameter moves).

Both channels run in the same loop (and :func:`run2_pair` runs two cascaded sections): a
biquad is a serial recursion, so one chain keeps the CPU waiting on its own multiply-adds;
two or four independent chains interleaved fill that time for free.

States that fall below 1e-30 are flushed to zero at the end of each run: after loud material
fades to silence a decaying IIR state would otherwise reach denormal numbers, which the CPU
handles up to a hundred times slower.
"""

from __future__ import annotations

from dsp.jit import njit

FLUSH = 1e-30


@njit(cache=True)
def _flush(v):
    return 0.0 if abs(v) < FLUSH else v


flush = _flush  # public name for kernels that run their own sections (crossover.split)


@njit(cache=True)
def section(x, z1, z2, b0, b1, b2, a1, a2):
    """One step of one section, the arithmetic of :func:`run2_to`: (y, new z1, new z2).

    For kernels that run several sections (or a section and other work) in one loop over the
    samples, so the CPU overlaps their recursions."""
    y = b0 * x + z1
    return y, b1 * x - a1 * y + z2, b2 * x - a2 * y


@njit(cache=True)
def run2_to(src, dst, m, c, row, z):
    """dst[:m] = biquad ``row`` applied to both channels of src[:m] (src may be dst)."""
    b0 = c[row, 0]
    b1 = c[row, 1]
    b2 = c[row, 2]
    a1 = c[row, 3]
    a2 = c[row, 4]
    l1 = z[row, 0, 0]
    l2 = z[row, 0, 1]
    r1 = z[row, 1, 0]
    r2 = z[row, 1, 1]
    for n in range(m):
        xl = src[n, 0]
        xr = src[n, 1]
        yl = b0 * xl + l1
        yr = b0 * xr + r1
        l1 = b1 * xl - a1 * yl + l2
        r1 = b1 * xr - a1 * yr + r2
        l2 = b2 * xl - a2 * yl
        r2 = b2 * xr - a2 * yr
        dst[n, 0] = yl
        dst[n, 1] = yr
    z[row, 0, 0] = _flush(l1)
    z[row, 0, 1] = _flush(l2)
    z[row, 1, 0] = _flush(r1)
    z[row, 1, 1] = _flush(r2)


@njit(cache=True)
def run2(buf, m, c, row, z):
    """Biquad ``row`` on both channels of buf[:m], in place."""
    run2_to(buf, buf, m, c, row, z)


@njit(cache=True)
def run2_pair_to(src, dst, m, c, row, z):
    """Sections ``row`` then ``row + 1`` on both channels (e.g. an LR4 half), src -> dst."""
    b0 = c[row, 0]
    b1 = c[row, 1]
    b2 = c[row, 2]
    a1 = c[row, 3]
    a2 = c[row, 4]
    d0 = c[row + 1, 0]
    d1 = c[row + 1, 1]
    d2 = c[row + 1, 2]
    e1 = c[row + 1, 3]
    e2 = c[row + 1, 4]
    l1 = z[row, 0, 0]
    l2 = z[row, 0, 1]
    r1 = z[row, 1, 0]
    r2 = z[row, 1, 1]
    p1 = z[row + 1, 0, 0]
    p2 = z[row + 1, 0, 1]
    q1 = z[row + 1, 1, 0]
    q2 = z[row + 1, 1, 1]
    for n in range(m):
        xl = src[n, 0]
        xr = src[n, 1]
        yl = b0 * xl + l1
        yr = b0 * xr + r1
        l1 = b1 * xl - a1 * yl + l2
        r1 = b1 * xr - a1 * yr + r2
        l2 = b2 * xl - a2 * yl
        r2 = b2 * xr - a2 * yr
        wl = d0 * yl + p1
        wr = d0 * yr + q1
        p1 = d1 * yl - e1 * wl + p2
        q1 = d1 * yr - e1 * wr + q2
        p2 = d2 * yl - e2 * wl
        q2 = d2 * yr - e2 * wr
        dst[n, 0] = wl
        dst[n, 1] = wr
    z[row, 0, 0] = _flush(l1)
    z[row, 0, 1] = _flush(l2)
    z[row, 1, 0] = _flush(r1)
    z[row, 1, 1] = _flush(r2)
    z[row + 1, 0, 0] = _flush(p1)
    z[row + 1, 0, 1] = _flush(p2)
    z[row + 1, 1, 0] = _flush(q1)
    z[row + 1, 1, 1] = _flush(q2)


@njit(cache=True)
def run1(buf, ch, m, c, row, z):
    """Biquad ``row`` on one channel of buf[:m], in place (state z[row, ch])."""
    b0 = c[row, 0]
    b1 = c[row, 1]
    b2 = c[row, 2]
    a1 = c[row, 3]
    a2 = c[row, 4]
    s1 = z[row, ch, 0]
    s2 = z[row, ch, 1]
    for n in range(m):
        x = buf[n, ch]
        y = b0 * x + s1
        s1 = b1 * x - a1 * y + s2
        s2 = b2 * x - a2 * y
        buf[n, ch] = y
    z[row, ch, 0] = _flush(s1)
    z[row, ch, 1] = _flush(s2)


@njit(cache=True)
def clear(z, row):
    for ch in range(z.shape[1]):
        z[row, ch, 0] = 0.0
        z[row, ch, 1] = 0.0
