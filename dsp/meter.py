"""A streaming ITU-R BS.1770-4 / EBU R128 loudness and true-peak meter.

One meter object serves a live stream (the engine meters every audio block) and a file (the
``analyze`` command feeds it block by block). Everything it knows lives in two preallocated
1-D arrays, ``f`` (float64) and ``i`` (int64): configuration (K-weighting coefficients, channel
weights, interpolator taps, window lengths) at the front, running state after it. That makes
the kernel :func:`meter_process` a plain function of ``(x, f, i)`` that other numba code, such
as the mastering chain's kernel, can call once per block without touching Python.

How the measurements are kept exact and bounded:

* Loudness is computed on a fixed grid of 100 ms hops counted in samples since the last reset,
  never on block boundaries. Momentary (400 ms) and short-term (3 s) windows, the gating blocks
  of the integrated loudness and the short-term values for the loudness range are all built
  from whole hops, so the readings are identical for any partition of the same signal.
* Integrated loudness and loudness range need every gating block since the start. Instead of a
  growing list the meter keeps two histograms (0.01 LU bins from -70 to +30 LUFS) holding the
  count *and the exact energy sum* of the blocks in each bin. Means are therefore exact; only
  the relative gate decides per bin (a bin is kept when its mean is above the gate), and the
  percentiles of the loudness range are read as the mean of the bin holding that rank. The
  error is bounded by the bin width, far inside the EBU tolerances.
* True peak oversamples 4x below 88.2 kHz, 2x at 88.2/96 kHz and uses the sample peak from
  176.4 kHz up (see :mod:`dsp.truepeak`); the original samples are always included.

Readings: :func:`meter_readings` fills a small float array (NaN = undefined); the Python class
turns that into the dict documented in docs/interfaces.md.
"""

from __future__ import annotations

import math

import numpy as np

from dsp import aot
from dsp.jit import njit
from dsp.kweighting import kweighting_coefficients
from dsp.truepeak import TAPS_PER_PHASE, interpolator_phases, oversampling_factor

# Windows, counted in 100 ms hops.
MOMENTARY_HOPS = 4
SHORT_TERM_HOPS = 30
CORRELATION_HOPS = 4

# Gates (BS.1770-4 integrated loudness, EBU Tech 3342 loudness range).
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
LRA_RELATIVE_GATE_LU = -20.0
LRA_LOW_PERCENTILE = 0.10
LRA_HIGH_PERCENTILE = 0.95

# Gating histograms: bins of HIST_BIN_LU from ABSOLUTE_GATE_LUFS up to HIST_TOP_LUFS (louder clamps to the top bin).
HIST_BIN_LU = 0.01
HIST_TOP_LUFS = 30.0
HIST_BINS = int(round((HIST_TOP_LUFS - ABSOLUTE_GATE_LUFS) / HIST_BIN_LU))

# True-peak work is done in chunks of this many frames (scratch space inside ``f``).
TP_CHUNK = 256

# States of the K-weighting filters smaller than this are set to zero at each hop boundary, so
# that a stream fading into digital silence never runs on denormal numbers.
DENORMAL_FLOOR = 1e-30

LUFS_OFFSET = -0.691

# The layout constants below live in this file on purpose: numba bakes globals into the compiled
# kernels and its on-disk cache is invalidated only when *this* file changes, so constants read by
# the kernels must not move to another module.

# ---- layout of ``i`` -------------------------------------------------------------------------
# configuration
I_CHANNELS = 0  # channel count
I_HOP = 1  # samples per 100 ms hop
I_FACTOR = 2  # true-peak oversampling factor (1 = sample peak only)
I_TAPS = 3  # interpolator taps per phase
I_TRUE_PEAK = 4  # 1 when true peak is measured
I_O_WEIGHTS = 5  # offsets into f ...
I_O_TPCOEF = 6
I_O_FILTER = 7
I_O_ACC = 8
I_O_RING = 9
I_O_CORR_ACC = 10
I_O_CORR_RING = 11
I_O_SPEAK = 12
I_O_TPEAK = 13
I_O_TPHIST = 14
I_O_SCRATCH = 15
I_O_HIST_INT = 16
I_O_HIST_ST = 17
I_O_COUNT_INT = 18  # offsets into i
I_O_COUNT_ST = 19
I_F_DYNAMIC = 20  # where the running state starts in f
I_DYNAMIC = 24  # where the running state starts in i
# running state
I_HOP_POS = 24  # samples into the current hop
I_HOPS = 25  # hops completed since reset
I_FRAMES = 26  # frames processed since reset
I_HEADER = 32

# ---- layout of ``f`` -------------------------------------------------------------------------
F_RATE = 0
F_KW = 1  # shelf b0 b1 b2 a1 a2, high-pass b0 b1 b2 a1 a2
F_TP_BOUND = 11  # largest sum of |taps| over the interpolator phases (with a rounding margin)
F_HEADER = 16
# running scalars (relative to f's dynamic start)
D_MAX_MOMENTARY = 0  # largest momentary mean square seen (0 = none)
D_MAX_SHORT_TERM = 1
D_SCALARS = 8

# ---- readings array --------------------------------------------------------------------------
R_MOMENTARY = 0
R_SHORT_TERM = 1
R_INTEGRATED = 2
R_LRA = 3
R_SAMPLE_PEAK = 4
R_TRUE_PEAK = 5
R_MAX_MOMENTARY = 6
R_MAX_SHORT_TERM = 7
R_PLR = 8
R_CORRELATION = 9
R_LRA_LOW = 10
R_LRA_HIGH = 11
N_READINGS = 12

READING_KEYS = (
    "momentary_lufs",
    "short_term_lufs",
    "integrated_lufs",
    "loudness_range_lu",
    "sample_peak_dbfs",
    "true_peak_dbtp",
    "max_momentary_lufs",
    "max_short_term_lufs",
    "plr_db",
    "correlation",
    "lra_low_lufs",
    "lra_high_lufs",
)

SURROUND_WEIGHT = 1.41


def channel_weights(channels: int) -> list[float]:
    """BS.1770 channel weights by channel count, in WAV/SMPTE channel order.

    1: mono; 2: L R; 3: L R C; 5: L R C Ls Rs; 6: L R C LFE Ls Rs (LFE excluded). Any other
    count weighs every channel 1.0 (pass ``weights=`` to the meter for other layouts).
    """
    if channels < 1:
        raise ValueError("a meter needs at least one channel")
    if channels == 5:
        return [1.0, 1.0, 1.0, SURROUND_WEIGHT, SURROUND_WEIGHT]
    if channels == 6:
        return [1.0, 1.0, 1.0, 0.0, SURROUND_WEIGHT, SURROUND_WEIGHT]
    return [1.0] * channels


def build_state(rate: float, channels: int, true_peak: bool = True, weights=None) -> tuple[np.ndarray, np.ndarray]:
    """Allocate and configure the ``(f, i)`` state arrays of a meter (see the layout constants)."""
    rate = float(rate)
    if not rate >= 8000:
        raise ValueError(f"unsupported sample rate {rate} Hz (the meter needs at least 8000 Hz)")
    weights = channel_weights(channels) if weights is None else [float(w) for w in weights]
    if len(weights) != channels:
        raise ValueError(f"{len(weights)} weights given for {channels} channels")
    factor = oversampling_factor(rate) if true_peak else 1
    assert factor in (1, 2, 4), "the true-peak kernel implements 2x and 4x"
    taps = TAPS_PER_PHASE
    phases = interpolator_phases(factor, taps)

    # f: configuration first, running state after F_DYNAMIC.
    o = F_HEADER
    o_weights = o
    o += channels
    o_tpcoef = o
    o += phases.size
    f_dynamic = o
    o += D_SCALARS
    o_filter = o
    o += 4 * channels
    o_acc = o
    o += channels
    o_ring = o
    o += SHORT_TERM_HOPS
    o_corr_acc = o
    o += 3
    o_corr_ring = o
    o += 3 * CORRELATION_HOPS
    o_speak = o
    o += channels
    o_tpeak = o
    o += channels
    o_tphist = o
    o += channels * (taps - 1)
    o_scratch = o
    o += (taps - 1 + TP_CHUNK) + 3 * TP_CHUNK  # history + chunk, three phase outputs
    o_hist_int = o
    o += HIST_BINS
    o_hist_st = o
    o += HIST_BINS
    f = np.zeros(o)
    f[F_RATE] = rate
    f[F_KW : F_KW + 10] = kweighting_coefficients(rate)
    f[o_weights : o_weights + channels] = weights
    f[o_tpcoef : o_tpcoef + phases.size] = phases.ravel()
    if phases.size:
        f[F_TP_BOUND] = np.abs(phases).sum(axis=1).max() * (1.0 + 1e-9)

    i = np.zeros(I_HEADER + 2 * HIST_BINS, dtype=np.int64)
    i[I_CHANNELS] = channels
    i[I_HOP] = int(round(rate / 10.0))
    i[I_FACTOR] = factor
    i[I_TAPS] = taps
    i[I_TRUE_PEAK] = 1 if true_peak else 0
    i[I_O_WEIGHTS] = o_weights
    i[I_O_TPCOEF] = o_tpcoef
    i[I_O_FILTER] = o_filter
    i[I_O_ACC] = o_acc
    i[I_O_RING] = o_ring
    i[I_O_CORR_ACC] = o_corr_acc
    i[I_O_CORR_RING] = o_corr_ring
    i[I_O_SPEAK] = o_speak
    i[I_O_TPEAK] = o_tpeak
    i[I_O_TPHIST] = o_tphist
    i[I_O_SCRATCH] = o_scratch
    i[I_O_HIST_INT] = o_hist_int
    i[I_O_HIST_ST] = o_hist_st
    i[I_O_COUNT_INT] = I_HEADER
    i[I_O_COUNT_ST] = I_HEADER + HIST_BINS
    i[I_F_DYNAMIC] = f_dynamic
    return f, i


# ---- kernels -----------------------------------------------------------------------------------


@njit(cache=True)
def _loudness_of(mean_square):
    """LUFS of a weighted mean square; NaN for silence (and for NaN input)."""
    if mean_square > 0.0:
        return LUFS_OFFSET + 10.0 * math.log10(mean_square)
    return math.nan


@njit(cache=True)
def _histogram_add(f, i, o_sum, o_count, mean_square):
    """Count one gating block (or short-term value) if it passes the absolute gate."""
    level = _loudness_of(mean_square)
    if not level > ABSOLUTE_GATE_LUFS:  # also drops NaN
        return
    pos = (level - ABSOLUTE_GATE_LUFS) / HIST_BIN_LU
    b = HIST_BINS - 1
    if pos < HIST_BINS - 1:
        b = int(pos)
    f[o_sum + b] += mean_square
    i[o_count + b] += 1


@njit(cache=True)
def _window_mean_square(f, i, hops_back):
    """Mean square over the last ``hops_back`` completed hops (the caller checks they exist)."""
    o_ring = i[I_O_RING]
    hops = i[I_HOPS]
    s = 0.0
    for k in range(hops_back):
        s += f[o_ring + (hops - 1 - k) % SHORT_TERM_HOPS]
    return s / (hops_back * i[I_HOP])


# Public name for other kernels: K-weighted, channel-weighted mean square of the last ``hops_back``
# completed 100 ms hops (1 <= hops_back <= min(hops completed, SHORT_TERM_HOPS); i[I_HOPS] says how many).
window_mean_square = _window_mean_square


@njit(cache=True)
def hop_energy(f, i, back):
    """K-weighted, channel-weighted energy (sum of squares) of one completed 100 ms hop: the last
    one for ``back`` 0 (0 <= back < min(hops completed, SHORT_TERM_HOPS))."""
    return f[i[I_O_RING] + (i[I_HOPS] - 1 - back) % SHORT_TERM_HOPS]


@njit(cache=True)
def _end_of_hop(f, i):
    """Close a 100 ms hop: store its energy, update windows, maxima and histograms."""
    nch = i[I_CHANNELS]
    o_w = i[I_O_WEIGHTS]
    o_acc = i[I_O_ACC]
    energy = 0.0
    for c in range(nch):
        energy += f[o_w + c] * f[o_acc + c]
        f[o_acc + c] = 0.0
    hops = i[I_HOPS]
    f[i[I_O_RING] + hops % SHORT_TERM_HOPS] = energy
    o_ca = i[I_O_CORR_ACC]
    o_cr = i[I_O_CORR_RING] + 3 * (hops % CORRELATION_HOPS)
    for k in range(3):
        f[o_cr + k] = f[o_ca + k]
        f[o_ca + k] = 0.0
    o_z = i[I_O_FILTER]
    for k in range(4 * nch):
        if abs(f[o_z + k]) < DENORMAL_FLOOR:
            f[o_z + k] = 0.0
    hops += 1
    i[I_HOPS] = hops
    i[I_HOP_POS] = 0
    d = i[I_F_DYNAMIC]
    if hops >= MOMENTARY_HOPS:
        m = _window_mean_square(f, i, MOMENTARY_HOPS)
        if m > f[d + D_MAX_MOMENTARY]:
            f[d + D_MAX_MOMENTARY] = m
        _histogram_add(f, i, i[I_O_HIST_INT], i[I_O_COUNT_INT], m)
    if hops >= SHORT_TERM_HOPS:
        s = _window_mean_square(f, i, SHORT_TERM_HOPS)
        if s > f[d + D_MAX_SHORT_TERM]:
            f[d + D_MAX_SHORT_TERM] = s
        _histogram_add(f, i, i[I_O_HIST_ST], i[I_O_COUNT_ST], s)


@njit(cache=True)
def _kweight_segment(x, f, i, start, end):
    """K-weight frames ``start:end`` (all inside one hop), accumulate energies and sample peaks."""
    if i[I_CHANNELS] == 2:
        _kweight_stereo(x, f, i, start, end)
        return
    nch = i[I_CHANNELS]
    sb0, sb1, sb2, sa1, sa2 = f[F_KW], f[F_KW + 1], f[F_KW + 2], f[F_KW + 3], f[F_KW + 4]
    hb0, hb1, hb2, ha1, ha2 = f[F_KW + 5], f[F_KW + 6], f[F_KW + 7], f[F_KW + 8], f[F_KW + 9]
    o_z = i[I_O_FILTER]
    o_acc = i[I_O_ACC]
    o_pk = i[I_O_SPEAK]
    for c in range(nch):
        z = o_z + 4 * c
        s1, s2, h1, h2 = f[z], f[z + 1], f[z + 2], f[z + 3]
        acc = f[o_acc + c]
        peak = f[o_pk + c]
        for n in range(start, end):
            v = x[n, c]
            a = abs(v)
            if a > peak:
                peak = a
            # Transposed direct form II, shelf then high-pass.
            y = sb0 * v + s1
            s1 = sb1 * v - sa1 * y + s2
            s2 = sb2 * v - sa2 * y
            w = hb0 * y + h1
            h1 = hb1 * y - ha1 * w + h2
            h2 = hb2 * y - ha2 * w
            acc += w * w
        f[z], f[z + 1], f[z + 2], f[z + 3] = s1, s2, h1, h2
        f[o_acc + c] = acc
        f[o_pk + c] = peak
    if nch >= 2:
        o_ca = i[I_O_CORR_ACC]
        ll, rr, lr = f[o_ca], f[o_ca + 1], f[o_ca + 2]
        for n in range(start, end):
            l_ = x[n, 0]
            r_ = x[n, 1]
            ll += l_ * l_
            rr += r_ * r_
            lr += l_ * r_
        f[o_ca], f[o_ca + 1], f[o_ca + 2] = ll, rr, lr


@njit(cache=True)
def _kweight_stereo(x, f, i, start, end):
    """The stereo case of :func:`_kweight_segment` in one pass: the two channels' filter
    recursions interleave (twice the instruction-level parallelism) and the correlation sums
    ride along. Same operations in the same order per channel, so the same numbers."""
    sb0, sb1, sb2, sa1, sa2 = f[F_KW], f[F_KW + 1], f[F_KW + 2], f[F_KW + 3], f[F_KW + 4]
    hb0, hb1, hb2, ha1, ha2 = f[F_KW + 5], f[F_KW + 6], f[F_KW + 7], f[F_KW + 8], f[F_KW + 9]
    z = i[I_O_FILTER]
    o_acc = i[I_O_ACC]
    o_pk = i[I_O_SPEAK]
    o_ca = i[I_O_CORR_ACC]
    ls1, ls2, lh1, lh2 = f[z], f[z + 1], f[z + 2], f[z + 3]
    rs1, rs2, rh1, rh2 = f[z + 4], f[z + 5], f[z + 6], f[z + 7]
    lacc, racc = f[o_acc], f[o_acc + 1]
    lpk, rpk = f[o_pk], f[o_pk + 1]
    ll, rr, lr = f[o_ca], f[o_ca + 1], f[o_ca + 2]
    for n in range(start, end):
        lv = x[n, 0]
        rv = x[n, 1]
        a = abs(lv)
        if a > lpk:
            lpk = a
        a = abs(rv)
        if a > rpk:
            rpk = a
        ll += lv * lv
        rr += rv * rv
        lr += lv * rv
        ly = sb0 * lv + ls1
        ry = sb0 * rv + rs1
        ls1 = sb1 * lv - sa1 * ly + ls2
        rs1 = sb1 * rv - sa1 * ry + rs2
        ls2 = sb2 * lv - sa2 * ly
        rs2 = sb2 * rv - sa2 * ry
        lw = hb0 * ly + lh1
        rw = hb0 * ry + rh1
        lh1 = hb1 * ly - ha1 * lw + lh2
        rh1 = hb1 * ry - ha1 * rw + rh2
        lh2 = hb2 * ly - ha2 * lw
        rh2 = hb2 * ry - ha2 * rw
        lacc += lw * lw
        racc += rw * rw
    f[z], f[z + 1], f[z + 2], f[z + 3] = ls1, ls2, lh1, lh2
    f[z + 4], f[z + 5], f[z + 6], f[z + 7] = rs1, rs2, rh1, rh2
    f[o_acc], f[o_acc + 1] = lacc, racc
    f[o_pk], f[o_pk + 1] = lpk, rpk
    f[o_ca], f[o_ca + 1], f[o_ca + 2] = ll, rr, lr


@njit(cache=True)
def _abs_max(a, n):
    """max |a[:n]|, with four independent running maxima (a single one is latency-bound)."""
    m0 = 0.0
    m1 = 0.0
    m2 = 0.0
    m3 = 0.0
    k = 0
    while k + 4 <= n:
        m0 = max(m0, abs(a[k]))
        m1 = max(m1, abs(a[k + 1]))
        m2 = max(m2, abs(a[k + 2]))
        m3 = max(m3, abs(a[k + 3]))
        k += 4
    while k < n:
        m0 = max(m0, abs(a[k]))
        k += 1
    return max(max(m0, m1), max(m2, m3))


@njit(cache=True)
def _true_peak(x, f, i):
    """Track the largest interpolated |x| per channel (the in-between phases of the oversampler).

    A chunk is skipped when it provably cannot raise the channel's peak: no interpolated value
    exceeds (sum of |taps|) x (largest |sample| feeding it), so when that bound is below the
    peak already known (true or sample peak, which the true peak includes anyway), the
    filtering would change nothing. On music most chunks are skipped; the result is exact.
    """
    factor = i[I_FACTOR]
    frames = x.shape[0]
    if factor < 2 or frames == 0:
        return
    nch = i[I_CHANNELS]
    taps = i[I_TAPS]
    hist_len = taps - 1
    o_s = i[I_O_SCRATCH]
    buf = f[o_s : o_s + hist_len + TP_CHUNK]
    o_acc = o_s + hist_len + TP_CHUNK
    acc1 = f[o_acc : o_acc + TP_CHUNK]
    acc2 = f[o_acc + TP_CHUNK : o_acc + 2 * TP_CHUNK]
    acc3 = f[o_acc + 2 * TP_CHUNK : o_acc + 3 * TP_CHUNK]
    o_c = i[I_O_TPCOEF]
    coef = f[o_c : o_c + (factor - 1) * taps]
    gain_bound = f[F_TP_BOUND]
    for c in range(nch):
        hist = i[I_O_TPHIST] + c * hist_len
        for k in range(hist_len):
            buf[k] = f[hist + k]
        peak = f[i[I_O_TPEAK] + c]
        known = max(peak, f[i[I_O_SPEAK] + c])
        start = 0
        while start < frames:
            n_chunk = min(TP_CHUNK, frames - start)
            for n in range(n_chunk):
                buf[hist_len + n] = x[start + n, c]
            window_max = _abs_max(buf, hist_len + n_chunk)
            if not window_max * gain_bound <= known:  # (NaN input: compute, don't skip)
                if factor == 4:
                    # The three in-between phases in one pass over the taps (each input read once).
                    for n in range(n_chunk):
                        acc1[n] = 0.0
                        acc2[n] = 0.0
                        acc3[n] = 0.0
                    for k in range(taps):
                        c1 = coef[k]
                        c2 = coef[taps + k]
                        c3 = coef[2 * taps + k]
                        for n in range(n_chunk):
                            b = buf[k + n]
                            acc1[n] += c1 * b
                            acc2[n] += c2 * b
                            acc3[n] += c3 * b
                    for n in range(n_chunk):
                        a = max(abs(acc1[n]), abs(acc2[n]), abs(acc3[n]))
                        if a > peak:
                            peak = a
                else:  # factor 2: the one in-between phase
                    for n in range(n_chunk):
                        acc1[n] = 0.0
                    for k in range(taps):
                        c1 = coef[k]
                        for n in range(n_chunk):
                            acc1[n] += c1 * buf[k + n]
                    for n in range(n_chunk):
                        a = abs(acc1[n])
                        if a > peak:
                            peak = a
                if peak > known:
                    known = peak
            for k in range(hist_len):
                buf[k] = buf[n_chunk + k]
            start += n_chunk
        for k in range(hist_len):
            f[hist + k] = buf[k]
        f[i[I_O_TPEAK] + c] = peak


@njit(cache=True, nogil=True)
def meter_process(x, f, i):
    """Meter a block ``x`` (float64, shape (frames, channels)) into the state ``(f, i)``.

    Any number of frames, including 0. Allocates nothing; safe to call from another kernel
    once per block.
    """
    frames = x.shape[0]
    hop = i[I_HOP]
    start = 0
    while start < frames:
        pos = i[I_HOP_POS]
        end = min(frames, start + hop - pos)
        _kweight_segment(x, f, i, start, end)
        i[I_HOP_POS] = pos + (end - start)
        if i[I_HOP_POS] == hop:
            _end_of_hop(f, i)
        start = end
    _true_peak(x, f, i)
    i[I_FRAMES] += frames


@njit(cache=True)
def meter_reset(f, i):
    """Forget everything measured and heard; keep the configuration. Allocates nothing.

    For a meter about to measure a new stream. In the middle of a stream use
    :func:`meter_restart`.
    """
    f[i[I_F_DYNAMIC] :] = 0.0
    i[I_DYNAMIC:] = 0


@njit(cache=True)
def meter_restart(f, i):
    """Forget everything measured, but not the last samples heard. Allocates nothing.

    Why: a user resets the meters while the programme plays. The K-weighting filters and the
    true-peak interpolator hold the signal's recent past; zeroing them would make the stream
    restart with a step from silence, and the interpolator reads a step from silence to a
    sample near full scale as an inter-sample peak up to ~1 dB higher than the signal has (a
    limited master at -1 dBTP read -0.3 dBTP after a reset). Everything the readings are made
    of (hop energies, windows, maxima, peaks, histograms) starts again; the filters' memory is
    carried over, as it is from one block to the next.
    """
    nch = i[I_CHANNELS]
    o_filter = i[I_O_FILTER]
    o_tphist = i[I_O_TPHIST]
    f[i[I_F_DYNAMIC] : o_filter] = 0.0
    f[o_filter + 4 * nch : o_tphist] = 0.0
    f[o_tphist + nch * (i[I_TAPS] - 1) :] = 0.0
    i[I_DYNAMIC:] = 0


@njit(cache=True)
def meter_follow(f, i, f_src, i_src):
    """Carry on the loudness measurement of another meter (same rate and channels) from where it is.

    Why: the chain's level-matched bypass needs the loudness of the processed signal while the
    output meter hears the bypass; a meter started on the processed signal when the bypass begins
    takes over the output meter's K-weighting filters, the hop under way and its last 3 s of hop
    energies, so its short-term window is whole from the first sample. Peaks, maxima and the
    integrated and range histograms are not carried over. Allocates nothing.
    """
    nch = i[I_CHANNELS]
    for k in range(4 * nch):
        f[i[I_O_FILTER] + k] = f_src[i_src[I_O_FILTER] + k]
    for c in range(nch):
        f[i[I_O_ACC] + c] = f_src[i_src[I_O_ACC] + c]
    for k in range(SHORT_TERM_HOPS):
        f[i[I_O_RING] + k] = f_src[i_src[I_O_RING] + k]
    i[I_HOP_POS] = i_src[I_HOP_POS]
    i[I_HOPS] = i_src[I_HOPS]


@njit(cache=True)
def _integrated(f, i):
    """Gated integrated loudness from the block histogram (NaN when no block passes the gates)."""
    o_sum = i[I_O_HIST_INT]
    o_n = i[I_O_COUNT_INT]
    total = 0.0
    count = 0
    for b in range(HIST_BINS):
        total += f[o_sum + b]
        count += i[o_n + b]
    if count == 0:
        return math.nan
    gate = total / count * 10.0 ** (RELATIVE_GATE_LU / 10.0)
    total = 0.0
    count = 0
    for b in range(HIST_BINS):
        n = i[o_n + b]
        if n > 0 and f[o_sum + b] / n > gate:
            total += f[o_sum + b]
            count += n
    if count == 0:
        return math.nan
    return _loudness_of(total / count)


@njit(cache=True)
def _bin_at_rank(f, i, o_sum, o_n, first, rank):
    """Loudness (bin mean) of the value of 0-based ``rank`` among bins ``first`` upwards."""
    seen = 0
    for b in range(first, HIST_BINS):
        n = i[o_n + b]
        seen += n
        if seen > rank:
            return _loudness_of(f[o_sum + b] / n)
    return math.nan


@njit(cache=True)
def _loudness_range(f, i, out):
    """EBU Tech 3342 loudness range and its low/high percentiles into ``out``."""
    o_sum = i[I_O_HIST_ST]
    o_n = i[I_O_COUNT_ST]
    total = 0.0
    count = 0
    for b in range(HIST_BINS):
        total += f[o_sum + b]
        count += i[o_n + b]
    if count == 0:
        return
    gate = total / count * 10.0 ** (LRA_RELATIVE_GATE_LU / 10.0)
    first = HIST_BINS
    kept = 0
    for b in range(HIST_BINS):
        n = i[o_n + b]
        if n > 0 and f[o_sum + b] / n > gate:
            if b < first:
                first = b
            kept += n
    if kept == 0:
        return
    low = _bin_at_rank(f, i, o_sum, o_n, first, int((kept - 1) * LRA_LOW_PERCENTILE + 0.5))
    high = _bin_at_rank(f, i, o_sum, o_n, first, int((kept - 1) * LRA_HIGH_PERCENTILE + 0.5))
    out[R_LRA_LOW] = low
    out[R_LRA_HIGH] = high
    out[R_LRA] = high - low


@njit(cache=True)
def _db(amplitude):
    if amplitude > 0.0:
        return 20.0 * math.log10(amplitude)
    return math.nan


@njit(cache=True)
def meter_readings(f, i, out):
    """Fill ``out`` (float64, length N_READINGS, indexed by R_*) from the state; NaN = undefined."""
    for k in range(N_READINGS):
        out[k] = math.nan
    hops = i[I_HOPS]
    d = i[I_F_DYNAMIC]
    nch = i[I_CHANNELS]
    if hops >= MOMENTARY_HOPS:
        out[R_MOMENTARY] = _loudness_of(_window_mean_square(f, i, MOMENTARY_HOPS))
        out[R_MAX_MOMENTARY] = _loudness_of(f[d + D_MAX_MOMENTARY])
    if hops >= SHORT_TERM_HOPS:
        out[R_SHORT_TERM] = _loudness_of(_window_mean_square(f, i, SHORT_TERM_HOPS))
        out[R_MAX_SHORT_TERM] = _loudness_of(f[d + D_MAX_SHORT_TERM])
    out[R_INTEGRATED] = _integrated(f, i)
    _loudness_range(f, i, out)
    speak = 0.0
    tpeak = 0.0
    for c in range(nch):
        speak = max(speak, f[i[I_O_SPEAK] + c])
        tpeak = max(tpeak, f[i[I_O_TPEAK] + c])
    out[R_SAMPLE_PEAK] = _db(speak)
    if i[I_TRUE_PEAK] == 1:
        out[R_TRUE_PEAK] = _db(max(speak, tpeak))
        out[R_PLR] = out[R_TRUE_PEAK] - out[R_INTEGRATED]
    if nch >= 2 and hops >= 1:
        ll = 0.0
        rr = 0.0
        lr = 0.0
        for k in range(min(hops, CORRELATION_HOPS)):
            o = i[I_O_CORR_RING] + 3 * k
            ll += f[o]
            rr += f[o + 1]
            lr += f[o + 2]
        if ll > 0.0 and rr > 0.0:
            out[R_CORRELATION] = lr / math.sqrt(ll * rr)


# ---- the object --------------------------------------------------------------------------------


class LoudnessMeter:
    """BS.1770-4 / R128 meter for ``channels`` channels at ``rate`` Hz.

    ``weights`` overrides the channel weights chosen from the channel count (see
    :func:`channel_weights`). ``true_peak=False`` skips the oversampler (true peak and PLR then
    read ``None``).
    """

    def __init__(self, rate: float, channels: int, true_peak: bool = True, weights=None):
        self.rate = float(rate)
        self.channels = int(channels)
        self.true_peak = bool(true_peak)
        self.f, self.i = build_state(self.rate, self.channels, self.true_peak, weights)
        self._out = np.empty(N_READINGS)
        # the JIT kernels, or their ahead-of-time build in kernel-only commands (dsp.aot says why)
        self._process = aot.kernel("meter_process", meter_process)
        self._readings = aot.kernel("meter_readings", meter_readings)
        self._reset = aot.kernel("meter_reset", meter_reset)
        self._restart = aot.kernel("meter_restart", meter_restart)
        # called once here, on the fresh state (where it changes nothing), so that the first
        # "reset meters" inside an audio loop neither compiles nor loads the kernel: the engine's
        # control-channel test caught a late block at the first reset otherwise
        self._restart(self.f, self.i)

    @property
    def oversampling(self) -> int:
        """The true-peak oversampling factor in use (1 = sample peak)."""
        return int(self.i[I_FACTOR])

    @property
    def frames(self) -> int:
        """Frames metered since construction or the last reset."""
        return int(self.i[I_FRAMES])

    def process(self, x) -> None:
        """Meter a block: float array of shape (frames, channels) (or (frames,) for mono)."""
        x = np.asarray(x)
        if x.ndim == 1 and self.channels == 1:
            x = x.reshape(-1, 1)
        if x.ndim != 2 or x.shape[1] != self.channels:
            raise ValueError(f"expected shape (frames, {self.channels}), got {x.shape}")
        if x.dtype != np.float64 or not x.flags.c_contiguous:
            x = np.ascontiguousarray(x, dtype=np.float64)
        self._process(x, self.f, self.i)

    def readings(self) -> dict:
        """The current readings (``None`` where undefined, e.g. silence or too little audio)."""
        self._readings(self.f, self.i, self._out)
        return {k: (None if math.isnan(v) else float(v)) for k, v in zip(READING_KEYS, self._out, strict=True)}

    def reset(self) -> None:
        """Start again as a new meter: for a new stream (see :meth:`restart` for the same one)."""
        self._reset(self.f, self.i)

    def restart(self) -> None:
        """Start the measurement again in the middle of a stream (the user's "reset meters").

        The readings start from nothing; the filters keep the signal's recent past, so the
        reset cannot itself show a true peak the signal does not have (:func:`meter_restart`).
        """
        self._restart(self.f, self.i)


def warm() -> None:
    """Compile (or load from the numba cache) every kernel of the meter."""
    m = LoudnessMeter(48000, 2)
    m.process(np.zeros((4800 * 5, 2)))
    m.readings()
    m.reset()
