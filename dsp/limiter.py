"""True-peak lookahead limiter: the last stage that changes the signal.

The guarantee (output true peak <= ceiling) comes from the construction, not from a clipper:

1. Detection: the peak around each sample is the max of the sample itself and the 8x
   (4x at 88.2 kHz and above) interpolated values up to the next sample, both channels
   (the gain is stereo-linked so the image does not move). Windowed-sinc polyphase FIR.
   Twice the oversampling BS.1770 asks of a meter: on a 4x grid a peak of content near
   0.45 fs can fall between grid points and read up to 0.55 dB low, and a limiter that
   under-reads overshoots by exactly that much (measured: +0.2 dB on white noise at 44.1 kHz).
   Every FIR interpolator under-reads content within a few percent of Nyquist (white noise
   driven into the limiter, or the limiter's own gain changes on dense material); each
   detected peak is padded by ``HF_GUARD`` times the fourth difference around it, a high-pass
   that is 16 at Nyquist, 4 at fs/4 and negligible where music peaks. Measured on heavily
   driven music it costs 0.02 LU; it keeps white noise at +24 dBFS under the ceiling also by
   an ideal (FFT, periodic-sinc) reconstruction, not only by 4x/16x polyphase meters; pure
   tones at fs/4 are held about 1 dB lower than they need to be.
2. Required gain ``r = min(1, c / peak)`` with ``c`` 0.15 dB under the ceiling.
3. A sliding minimum of ``r`` over ``HOLD`` samples (monotonic deque, O(1) per sample), and
   a second one over ``HOLD`` + ``RELEASE_HOLD_S`` (the automatic release's hold, below).
4. Release in the dB domain: instant attack, one-pole release; in automatic mode a slow
   component tracks sustained reduction (slow attack, slow release) and the fast one rides
   the peaks above it, so transients recover quickly and dense passages do not pump. The
   sum is never less than the required reduction. In automatic mode the fast component
   rides the longer minimum: it starts to release only ``RELEASE_HOLD_S`` after the last
   peak that asked for it. Why: a sustained low note (a bass line, a kick's tail) asks for
   gain at every half cycle, and a gain that recovers between those peaks follows the
   waveform, which is distortion (a 40 Hz sine limited by 7 dB: THD+N -37 dB without the
   hold, under -140 dB with it; bench/bench_limiter_sound.py). 20 ms covers half a cycle
   down to 25 Hz; it costs 0.03 LU of loudness on driven music. The slow component keeps
   the short minimum, so an isolated transient does not leave a long dip behind it.
   What the slow component gains as it attacks it takes over from the fast one (the fast
   one drops by as much), so the sum does not grow with it. Why: the slow component attacks
   (100 ms) toward the short minimum, which follows the waveform, so on a sustained note it
   ripples a little at twice the note's frequency. The fast one, riding what the slow one
   leaves of the reduction needed, could follow that only while its release was faster than
   the slow attack; with a longer release it kept its reduction while the slow one added
   more, and the sum carried the ripple onto the gain (a 40 Hz sine limited by 7 dB: THD+N
   -69 dB at 150 ms, -70 dB at 500 ms, under -140 dB at 100 ms) and went deeper than needed
   when a sustained passage began (1.0 dB more than it needs at 150 ms, 3.6 dB at 500 ms).
   Now under -140 dB and no extra dip at every release; recovery after a transient is as
   before and driven music as loud or louder (at most +0.07 LU, at +12 dB and 500 ms;
   measured 2026-11-24).
5. Two cascaded moving averages (lengths ``L1`` and ``L2``): a smooth attack that is
   complete by the time the peak comes out of the delay line.

If ``G[j]`` is the averaged gain at detector time ``j``, it is a weighted mean of held gains
over ``[j-S, j]`` (``S = L1 + L2 - 2``), each of which is <= ``r[m]`` for every ``m`` in its
hold window; applying ``G[j]`` to the signal delayed by ``D = S + K`` makes every output sample
within ``K`` samples of a detected peak (both sides) carry a gain <= the gain that peak asked
for. ``HOLD = S + 2K + 2``. The interpolator needs ``NT/2`` future samples, so the latency is
``NT/2 + D``. A final sample clamp at the ceiling is a seat belt that normal material never
touches.
"""

from __future__ import annotations

import math

import numpy as np

from dsp.jit import njit

TAPS = 24                 # interpolator taps per phase (flat within 0.04 dB to 0.4 fs)
KAISER_BETA = 5.0
MARGIN_DB = 0.15          # internal target below the ceiling (covers the interpolator's under-read)
LOOKAHEAD_S = 1.2e-3      # attack length (the two moving averages together)
K_LOW = 2
RELEASE_HOLD_S = 20e-3    # automatic release: the fast release waits this long after a peak
DB_TO_NEG_LN = -math.log(10.0) / 20.0   # 10**(-dB/20) == exp(dB * this)
HF_GUARD = 0.04          # share of |fourth difference| added to each detected peak (see process)
GROUP = 8                # detection decides per group of this many samples whether to oversample
NEAR = 4                 # taps around the interpolated point that the per-sample bound computes exactly
assert TAPS <= 3 * GROUP  # a detection window spans at most the current group and the three before


def geometry(rate: float) -> np.ndarray:
    """Integer layout of the limiter at ``rate``: [TAPS, PHASES, L1, L2, HOLD, LATENCY, DELAY_SIZE, K,
    LONG_HOLD] (LONG_HOLD: HOLD and the automatic release's hold)."""
    phases = 8
    k = K_LOW if rate < 88200 - 1 else 2 * K_LOW
    total = max(2 * int(round(LOOKAHEAD_S * rate / 2.0)), 4)
    l1 = total // 2
    l2 = total - l1
    s = l1 + l2 - 2
    hold = s + 2 * k + 2
    latency = TAPS // 2 + s + k
    long_hold = hold + int(round(RELEASE_HOLD_S * rate))
    return np.array([TAPS, phases, l1, l2, hold, latency, latency + 1, k, long_hold], dtype=np.int64)


def interpolator(phases: int, taps: int = TAPS) -> np.ndarray:
    """Fractional-delay FIRs (phases-1, taps): row j-1 gives the value at m + j/phases.

    The window of ``taps`` past samples ends at m + taps/2; sample m is at index taps/2 - 1.
    Kaiser-windowed sinc, each row normalised to unity DC gain.
    """
    out = np.zeros((phases - 1, taps))
    centre = taps // 2 - 1
    span = taps / 2.0 + 0.5
    grid = np.linspace(-span, span, 401)
    w = np.kaiser(401, KAISER_BETA)
    for j in range(1, phases):
        t = np.arange(taps) - centre - j / phases       # tap position relative to the wanted point
        h = np.sinc(t) * np.interp(t, grid, w)
        out[j - 1] = h / h.sum()
    return out


def _worst_gain(phase: np.ndarray) -> float:
    """Largest possible detected peak for samples of at most 1: the interpolator's worst case
    (sum of |taps|, or 1 for the sample itself) plus the HF guard's (|fourth difference| <= 16),
    padded for rounding. The detection skips samples whose reach times this stays under the
    target, so it must bound everything the detector adds up, or the skip would change results."""
    return float((max(1.0, np.abs(phase).sum(axis=1).max()) + 16.0 * HF_GUARD) * (1.0 + 1e-9))


def _far_gains(phase: np.ndarray) -> np.ndarray:
    """Per phase, the sum of |taps| outside the NEAR taps around the interpolated point
    (7 values; a 4x interpolator uses the first 3)."""
    out = np.zeros(7)
    c = phase.shape[1] // 2 - 1
    far = np.abs(phase).sum(axis=1) - np.abs(phase[:, c - NEAR // 2 + 1:c + NEAR // 2 + 1]).sum(axis=1)
    out[:len(far)] = far
    return out


def new_state(rate: float):
    """Preallocated state arrays for one stereo limiter (see :func:`process`)."""
    g = geometry(rate)
    taps, phases, l1, l2, hold, latency, dsize = (int(v) for v in g[:7])
    deques = hold + 1 + int(g[8]) + 1          # the short minimum's ring, then the long one's
    return {
        "geo": g,
        "phase": interpolator(phases, taps),
        "hist": np.zeros((2, 2 * taps)),
        "delay": np.zeros((2, dsize)),
        "dq_val": np.ones(deques),
        "dq_idx": np.zeros(deques, dtype=np.int64),
        "box1": np.ones(l1),
        "box2": np.ones(l2),
        "fs": np.concatenate(([0.0, 0.0, float(l1), float(l2), 1.0, _worst_gain(interpolator(phases, taps)),
                               0.0, 0.0, 0.0, 0.0], _far_gains(interpolator(phases, taps)))),
        "is": np.zeros(11, dtype=np.int64),
    }


def reset(st) -> None:
    """The state arrays of :func:`new_state` back at rest (from Python: :func:`rest` as plain Python,
    so no kernel is compiled or loaded for it)."""
    rest.py_func(st["hist"], st["delay"], st["dq_val"], st["dq_idx"], st["box1"], st["box2"], st["fs"], st["is"])


@njit(cache=True)
def rest(hist, delay, dq_val, dq_idx, box1, box2, fs, ist):
    """A limiter's state at rest: nothing in the delay line, no gain reduction held or smoothed.
    The chain calls it inside its kernel (a fault, the level-matched dry signal's limiter)."""
    hist[:] = 0.0
    delay[:] = 0.0
    dq_val[:] = 1.0
    dq_idx[:] = 0
    box1[:] = 1.0
    box2[:] = 1.0
    fs[0] = 0.0
    fs[1] = 0.0
    fs[2] = float(box1.shape[0])
    fs[3] = float(box2.shape[0])
    fs[4] = 1.0
    fs[6:10] = 0.0
    ist[:] = 0


@njit(cache=True, fastmath=True)
def _peak_4x(phase, hist, ch, off):
    """Largest |value| at the 3 interpolated points after the window's centre sample.

    One pass over the taps feeds every phase; fastmath lets LLVM vectorise the sums (finite
    data only). Takes the whole history and a channel index so no row view is made per call;
    the tap count is a compile-time constant and there is no branch, which is what lets LLVM
    inline and vectorise it (4x faster than the general form).
    """
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    for t in range(TAPS):
        v = hist[ch, off + t]
        a0 += phase[0, t] * v
        a1 += phase[1, t] * v
        a2 += phase[2, t] * v
    return max(abs(a0), abs(a1), abs(a2))


@njit(cache=True, fastmath=True)
def _peak_8x(phase, hist, ch, off):
    """Like :func:`_peak_4x` for the 7 interpolated points of 8x oversampling."""
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    a4 = 0.0
    a5 = 0.0
    a6 = 0.0
    for t in range(TAPS):
        v = hist[ch, off + t]
        a0 += phase[0, t] * v
        a1 += phase[1, t] * v
        a2 += phase[2, t] * v
        a3 += phase[3, t] * v
        a4 += phase[4, t] * v
        a5 += phase[5, t] * v
        a6 += phase[6, t] * v
    return max(max(abs(a0), abs(a1), abs(a2)), max(abs(a3), abs(a4), abs(a5)), abs(a6))


@njit(cache=True)
def _near_bound(hist, hp, phase, fs, reach, eight):
    """An upper bound of the sample's detected peak (both channels) that costs a sixth of it.

    Each interpolated value is computed exactly over the NEAR taps around its point; the
    other taps add at most ``reach`` (the largest |sample| of the window) times their sum of
    |taps| (``fs[10 + j]``). The sample itself and the HF guard are computed as the detector
    computes them. Padded by 1e-9 of ``reach`` for rounding: the detector's own sums can land
    a few ulps away from the exact values. On music driven into the limiter this leaves ~1 in
    15 of the samples a group-wide bound cannot clear for the full interpolator.
    """
    nph = 7 if eight else 3
    c = TAPS // 2 - 1
    lo = c - NEAR // 2 + 1
    best = 0.0
    for ch in range(2):
        x0 = hp + c
        a = abs(hist[ch, x0])
        for j in range(nph):
            v = 0.0
            for t in range(lo, lo + NEAR):
                v += phase[j, t] * hist[ch, hp + t]
            a = max(a, abs(v) + reach * fs[10 + j])
        a += HF_GUARD * abs(hist[ch, x0 - 2] - 4.0 * hist[ch, x0 - 1] + 6.0 * hist[ch, x0]
                            - 4.0 * hist[ch, x0 + 1] + hist[ch, x0 + 2])
        best = max(best, a)
    return best + reach * 1e-9


@njit(cache=True)
def _push_min(dq_val, dq_idx, off, cap, head, count, r, idx):
    """Append the required gain ``r`` of sample ``idx`` to the sliding minimum whose ring is
    ``dq_*[off:off + cap]`` (larger gains before it can never be the minimum again: dropped).
    Returns the new count."""
    while count > 0:
        tail = head + count - 1
        if tail >= cap:
            tail -= cap
        if dq_val[off + tail] >= r:
            count -= 1
        else:
            break
    tail = head + count
    if tail >= cap:
        tail -= cap
    dq_val[off + tail] = r
    dq_idx[off + tail] = idx
    return count + 1


@njit(cache=True)
def _expire(dq_idx, off, cap, head, count, oldest):
    """Drop the entries of that sliding minimum from before sample ``oldest``; (head, count)."""
    while count > 0 and dq_idx[off + head] < oldest:
        head += 1
        if head == cap:
            head = 0
        count -= 1
    return head, count


@njit(cache=True)
def process(buf, start, stop, target, clip, a_fast, auto, a_slow_att, a_slow_rel,
            geo, phase, hist, delay, dq_val, dq_idx, box1, box2, fs, ist, pk):
    """Limit ``buf[start:stop]`` (stereo) in place; the output is delayed by ``geo[5]`` samples.

    ``target`` is the linear level the detected true peak is held to, ``clip`` the ceiling
    for the final seat-belt clamp. ``a_*`` are one-pole coefficients (dB-domain release).
    ``fs``: slow env, fast env, sum1, sum2, smallest gain since last read, the detector's
    worst-case gain (constant, see :func:`_worst_gain`), the largest |sample| of each of the last
    three whole groups of GROUP samples (slot = group number % 3), of the current group so far,
    then per phase the sum of |taps| outside the NEAR ones (constants, see :func:`_near_bound`).
    ``ist``: hist pos, delay pos, deque head, deque count, sample index, box1 pos,
    box1 non-unity count, box2 pos, box2 non-unity count, long deque head, long deque count.
    ``dq_val``/``dq_idx`` hold the short minimum's ring (HOLD + 1) and then the long one's
    (LONG_HOLD + 1). ``pk``: scratch, at least stop - start.
    """
    taps = geo[0]
    eight = geo[1] == 8
    l1 = geo[2]
    l2 = geo[3]
    hold = geo[4]
    latency = geo[5]
    dsize = geo[6]
    cap = hold + 1
    long_hold = geo[8]
    cap2 = long_hold + 1      # the long deque's ring: dq_val[cap:cap + cap2]
    centre = taps // 2 - 1
    s_env = fs[0]
    f_env = fs[1]
    sum1 = fs[2]
    sum2 = fs[3]
    gmin = fs[4]
    hp = ist[0]
    dp = ist[1]
    head = ist[2]
    count = ist[3]
    idx = ist[4]
    i1 = ist[5]
    c1 = ist[6]
    i2 = ist[7]
    c2 = ist[8]
    head2 = ist[9]
    count2 = ist[10]
    inv1 = 1.0 / l1   # multiplies instead of two divisions per sample; all-ones windows are
    inv2 = 1.0 / l2   # handled apart so they still give exactly 1.0
    h_last = 1.0
    need = 0.0
    h2_last = 1.0
    need2 = 0.0
    # 1. detection in its own pass (a tight loop LLVM vectorises); history is a duplicated
    #    ring so the last `taps` samples are always contiguous. Samples are grouped by their
    #    index since the reset (GROUP per group): a window of `taps` samples ending in group G
    #    lies within groups G-3..G, and the largest |sample| of each is kept. When even the
    #    detector's worst case (fs[5] times that reach) stays under the target, no sample of
    #    the group can ask for gain: the oversampling is skipped and they read 0 (only
    #    `peak > target` matters below). The bound is exact, so results do not depend on it,
    #    nor on where blocks start.
    j = idx
    gmax = fs[9]
    g0 = start
    while g0 < stop:
        g1 = min(stop, g0 + GROUP - j % GROUP)
        for n in range(g0, g1):
            gmax = max(gmax, max(abs(buf[n, 0]), abs(buf[n, 1])))
        reach = max(max(fs[6], fs[7]), max(fs[8], gmax))
        compute = not (reach * fs[5] <= target)   # NaN: compute
        for n in range(g0, g1):
            for ch in range(2):
                v = buf[n, ch]
                hist[ch, hp] = v
                hist[ch, hp + taps] = v
            hp += 1
            if hp == taps:
                hp = 0
            peak = 0.0
            if compute and _near_bound(hist, hp, phase, fs, reach, eight) > target:
                for ch in range(2):
                    if eight:
                        a = max(abs(hist[ch, hp + centre]), _peak_8x(phase, hist, ch, hp))
                    else:
                        a = max(abs(hist[ch, hp + centre]), _peak_4x(phase, hist, ch, hp))
                    # content near Nyquist is where every FIR interpolator under-reads (and where
                    # a limiter's own gain changes put energy): pad the estimate by a share of the
                    # fourth difference around the centre, a high-pass that is 16 at Nyquist, 4 at
                    # fs/4 and next to nothing where music has its peaks
                    c0 = hp + centre
                    a += HF_GUARD * abs(hist[ch, c0 - 2] - 4.0 * hist[ch, c0 - 1] + 6.0 * hist[ch, c0]
                                        - 4.0 * hist[ch, c0 + 1] + hist[ch, c0 + 2])
                    if a > peak:
                        peak = a
            pk[n - start] = peak
        j += g1 - g0
        g0 = g1
        if j % GROUP == 0:
            fs[6 + (j // GROUP - 1) % 3] = gmax
            gmax = 0.0
    fs[9] = gmax
    for n in range(start, stop):
        peak = pk[n - start]
        for ch in range(2):
            delay[ch, dp] = buf[n, ch]
        # 2.-3. required gain, sliding minimum (gains of exactly 1 are not stored)
        if peak > target:
            r = target / peak
            count = _push_min(dq_val, dq_idx, 0, cap, head, count, r, idx)
            count2 = _push_min(dq_val, dq_idx, cap, cap2, head2, count2, r, idx)
        head, count = _expire(dq_idx, 0, cap, head, count, idx - hold + 1)
        head2, count2 = _expire(dq_idx, cap, cap2, head2, count2, idx - long_hold + 1)
        h = dq_val[head] if count > 0 else 1.0
        h2 = dq_val[cap + head2] if count2 > 0 else 1.0
        idx += 1
        # 4. release in dB
        if h != h_last:  # the held gain is piecewise constant: one logarithm per change
            h_last = h
            need = -20.0 * math.log10(h) if h < 1.0 else 0.0
        if auto:
            if need > s_env:
                # what the slow component gains it takes over from the fast one, so the sum does
                # not grow with it (a release slower than this attack would add the slow one's
                # ripple on a low note to the gain: distortion; see step 4 above)
                rise = (1.0 - a_slow_att) * (need - s_env)
                s_env += rise
                f_env = f_env * a_fast - rise
            else:
                s_env = a_slow_rel * s_env + (1.0 - a_slow_rel) * need
                if s_env < 1e-9:
                    s_env = 0.0
                f_env *= a_fast
            # the fast component rides the long minimum (the release's hold); never below the short
            if h2 != h2_last:
                h2_last = h2
                need2 = -20.0 * math.log10(h2) if h2 < 1.0 else 0.0
            ride = max(need, need2) - s_env
        else:
            s_env = 0.0
            ride = need
            f_env *= a_fast
        if ride > f_env:
            f_env = ride
        if f_env < 1e-9:
            f_env = 0.0
        total = s_env + f_env
        gr = math.exp(total * DB_TO_NEG_LN) if total > 0.0 else 1.0
        # 5. two moving averages
        old = box1[i1]
        box1[i1] = gr
        i1 += 1
        if i1 == l1:
            i1 = 0
        sum1 += gr - old
        c1 += (1 if gr < 1.0 else 0) - (1 if old < 1.0 else 0)
        if c1 == 0:
            sum1 = float(l1)
            a1 = 1.0
        else:
            a1 = sum1 * inv1
        old = box2[i2]
        box2[i2] = a1
        i2 += 1
        if i2 == l2:
            i2 = 0
        sum2 += a1 - old
        c2 += (1 if a1 < 1.0 else 0) - (1 if old < 1.0 else 0)
        if c2 == 0:
            sum2 = float(l2)
            g = 1.0
        else:
            g = sum2 * inv2
        if g > 1.0:
            g = 1.0
        if g < gmin:
            gmin = g
        # apply to the delayed signal
        rp = dp - latency
        if rp < 0:
            rp += dsize
        for ch in range(2):
            y = delay[ch, rp] * g
            if y > clip:
                y = clip
            elif y < -clip:
                y = -clip
            buf[n, ch] = y
        dp += 1
        if dp == dsize:
            dp = 0
    fs[0] = s_env
    fs[1] = f_env
    fs[2] = sum1
    fs[3] = sum2
    fs[4] = gmin
    ist[0] = hp
    ist[1] = dp
    ist[2] = head
    ist[3] = count
    ist[4] = idx
    ist[5] = i1
    ist[6] = c1
    ist[7] = i2
    ist[8] = c2
    ist[9] = head2
    ist[10] = count2
