"""The mastering chain: one numba call per block, the same for the box and for files.

Order: input (trim, polarity, subsonic high-pass, DC removal) -> 6-band EQ and tone -> 3-band
compressor (LR4, phase-aligned, parallel mix) -> stereo (mono bass, width, balance) ->
drive -> true-peak limiter -> dither. Meters on input and output; bypass crossfades to the
latency-aligned dry input, optionally level-matched to the processed loudness.

Everything the kernel touches is preallocated here; :meth:`Chain.process` makes exactly one
call into :func:`chain_kernel`. The stream is processed on a fixed grid of ``SUB``-sample
sub-blocks (counted from the start of the stream): parameters glide and filters are
redesigned at the grid points, so the output does not depend on how the host cuts blocks.
"""

from __future__ import annotations

import math

import numpy as np

from dsp import (
    aot,
    compressor,
    crossover,
    dither,
    eq_design,
    limiter,
    meter,
    rbj,
    schema,
    svf,
)
from dsp.jit import njit
from dsp.meter import LoudnessMeter, meter_process
from dsp.smoothing import SUB, advance, alphas, fade, toward

FADE_S = 0.010      # crossfade for switches and enumerations (click-free on/off, type change)
BYPASS_FADE_S = 0.030
LEVEL_MATCH_S = 0.5  # glide of the level-matching gain (on top of the meters' 3 s window)
LEVEL_MATCH_MAX_LOSS = 0.5  # the level match makes up at most 3 dB of what the matched dry signal's limiter takes
LEVEL_MATCH_SNAP = 1e-4  # level match turned off: the gain is 1 once it glided this close (-80 dB)
COMPARE_MIN_GAIN = 0.063  # the compare match turns a setting down by at most 24 dB
COMPARE_MIN_HOPS = 2      # the compare match measures new settings over at least 200 ms
BIG = 1.0e4         # input samples beyond +80 dBFS (or not finite) are treated as faults and zeroed
RNG_SEEDS = (0x9E3779B97F4A7C15, 0xD1B54A32D192ED03)   # dither generators, one per channel
MIN_ENERGY = 1e-9   # ~ -90 LUFS: below this the level match holds its last gain

_I = schema.INDEX
P_TRIM = _I["in.trim_db"]
P_INV_L = _I["in.invert_l"]
P_INV_R = _I["in.invert_r"]
P_HPF_SLOPE = _I["in.hpf_slope"]
P_HPF_FREQ = _I["in.hpf_freq"]
P_DC = _I["in.dc_block"]
P_EQ = _I["eq1.on"]  # six params per band: on, type, freq, gain_db, q, place
P_TONE = _I["eq.tone_db"]
P_TONE_F = _I["eq.tone_freq"]
P_MB_ON = _I["mb.on"]
P_XL = _I["mb.xover_low"]
P_XH = _I["mb.xover_high"]
P_MIX = _I["mb.mix"]
P_MB = _I["mb.low.threshold_db"]  # eight per band: thr, ratio, knee, att, rel, makeup, bypass, solo
P_WIDTH = _I["st.width"]
P_MONO = _I["st.mono_bass"]
P_MONO_F = _I["st.mono_freq"]
P_BAL = _I["st.balance"]
P_DRIVE = _I["out.drive_db"]
P_CEIL = _I["lim.ceiling_dbtp"]
P_REL = _I["lim.release_ms"]
P_AUTO = _I["lim.auto_release"]
P_DMODE = _I["dither.mode"]
P_DBITS = _I["dither.bits"]
P_LM = _I["ab.level_match"]


def _check_layout() -> None:
    """The kernel addresses band parameters by offset; make sure the schema still lays them out so."""
    for b in range(schema.EQ_BANDS):
        for k, name in enumerate(("on", "type", "freq", "gain_db", "q", "place")):
            assert _I[f"eq{b + 1}.{name}"] == P_EQ + 6 * b + k
    for b, band in enumerate(schema.MB_BANDS):
        for k, name in enumerate(("threshold_db", "ratio", "knee_db", "attack_ms", "release_ms",
                                  "makeup_db", "bypass", "solo")):
            assert _I[f"mb.{band}.{name}"] == P_MB + 8 * b + k


_check_layout()

# -- ramps: values interpolated linearly across each sub-block -----------------------------
R_TRIM, R_POL_L, R_POL_R, R_HPF, R_DC = 0, 1, 2, 3, 4
R_EQ = 5            # 6 band fades
R_MB = 11           # multiband in/out
R_MIX = 12          # wet fraction
R_BYP = 13          # 3 band-bypass fades
R_AUD = 16          # 3 solo/mute gains
R_MK = 19           # 3 makeup gains
R_WIDTH, R_MONO, R_BAL_L, R_BAL_R, R_DRIVE, R_BYPASS, R_LM = 22, 23, 24, 25, 26, 27, 28
R_CMP = 29          # the compare match's gain (Chain.match_compare; 1 when off)
R_LIMD = 30         # the bypass's share of the limited matched dry signal (1 while level match is on)
NR = 31

# -- state-variable filter rows (eqc, eqz): the six EQ bands, then the tone control ----------
TONE_ROW = schema.EQ_BANDS
EQ_ROWS = schema.EQ_BANDS + 1

# -- the other tunable filters: Butterworth state-variable sections (dsp.svf) that glide ----
# coef: coefficient sets (svf layout: the end set, then the start set), one per frequency and Q
C_HPF = 0           # 2: the subsonic's one (12 dB/oct) or two (24 dB/oct) sections
C_XO = 2            # crossover.SETS: f_lo, f_hi
C_MONO = C_XO + crossover.SETS
NC = C_MONO + 1
# z: states of the sections, per channel
Z_HPF = 0           # 2
Z_XO = 2            # crossover.SECTIONS
Z_MONO = Z_XO + crossover.SECTIONS   # AP on mid, 2 x HP on side
NZ = Z_MONO + 3

# -- float state ---------------------------------------------------------------------------
F_RATE = 0
F_ENV = 1           # 3 band envelopes (gain reduction, dB)
F_THR, F_RAT, F_KNEE, F_AA, F_AR, F_KNEE_LIN = 4, 7, 10, 13, 16, 19   # 3 each
F_LIM_T, F_LIM_C, F_LIM_AF, F_LIM_ASA, F_LIM_ASR = 22, 23, 24, 25, 26
F_DC_X, F_DC_Y, F_DC_R = 27, 29, 31  # 2, 2, 1
F_LM_A = 35
F_DES_HPF = 38
F_DES_EQ = 39       # 6 x (freq, gain, q)
F_DES_XO = 57       # lo, hi
F_DES_MONO = 59
F_GR = 60           # 3 largest band reductions since the last read (dB)
F_STEP_FADE, F_STEP_BYP = 63, 64
F_LVL, F_CG0, F_CG1 = 66, 69, 72     # 3 each: band peak in this sub-block, gain at its start and end
# the parameter values the derived settings below were last computed from (NaN: compute afresh);
# while something else glides, these need no exp/pow again (see _update)
F_SRC_TRIM, F_SRC_MB, F_SRC_BAL, F_SRC_DRIVE, F_SRC_LIM = 75, 76, 91, 92, 93   # 1, 3 x 5, 1, 1, 2
F_DES_TONE = 95     # tone pivot and gain the tone row was designed for (NaN: design afresh)
F_CMP_G = 97        # loudness gain (output / input mean square) of the settings heard, without R_CMP (0: unknown)
F_CMP_REF = 98      # the compare match's reference: the loudness gain of the settings heard before (0: none)
F_CMP_ACC, F_CMP_N = 99, 100   # sum and count of the squared compare gain in the meters' hop under way
F_CMP_C2 = 101      # meter.SHORT_TERM_HOPS: the mean squared compare gain of each hop, as the meters' ring
F_CMP_END = F_CMP_C2 + meter.SHORT_TERM_HOPS
F_PK = F_CMP_END    # 3 x compressor.PEAK_RING: each band's sub-block peaks, newest at I_PK_POS (the detector's hold)
F_LM_ACC = F_PK + 3 * compressor.PEAK_RING   # as F_CMP_ACC, F_CMP_N: the level match's squared gain sum
F_LM_N = F_LM_ACC + 1                       # and count, in the meters' hop under way
F_LM_G2 = F_LM_N + 1   # meter.SHORT_TERM_HOPS: each hop's mean squared match gain if the whole hop heard
# the limited matched dry signal, else 0 (as the meters' ring; _level_match)
F_LM_T = F_LM_G2 + meter.SHORT_TERM_HOPS   # the level match's target gain, at the last completed hop (0: not known)
NF = F_LM_T + 1

# -- int state -----------------------------------------------------------------------------
I_POS, I_FRESH, I_HPF_ACT = 0, 1, 2
I_EQ_TYPE = 3       # 6
I_EQ_PLACE = 9      # 6
I_BYPASS, I_BITS, I_DRY_POS, I_FAULTS, I_RESETS, I_BYPASS_SEEN = 15, 16, 17, 18, 19, 20
I_SPLIT = 21        # which part of the chain a block runs: SPLIT_ALL, SPLIT_PRE or SPLIT_POST
I_ON_GRID_RUN = 22  # frames in a row reaching the dither already on its grid (capped at dither.BLANK_AFTER)
I_CMP = 23          # compare match: CMP_OFF, CMP_ON or CMP_SWITCH (Chain.match_compare)
I_CMP_FROM = 24     # the meters' first 100 ms hop that heard the settings as they are now
I_CMP_HOP = 25      # the meters' hop count at the last update
I_CMP_NEW = 26      # 1: new target settings arrived (set_values, set_flat, load_flat): measure them afresh
I_AGAIN = 27        # 1: a filter just switched type, placement or slope while faded out: fade it back in
I_PK_POS = 28       # where the bands' peak rings (F_PK) take the next sub-block's peak
I_PK_HOLD = 29      # 3: each band's detector hold, in sub-blocks (compressor.hold_subblocks)
I_DRY_LIM = 32      # 1: the level-matched dry signal's limiter is running (primed; see _matched_dry)
I_WET = 33          # sub-blocks the wet meter still runs (0: off; it hears the processed signal while bypassed)
I_LM_HOP = 34       # the meters' hop count at the last level-match update
I_LM_MIXED = 35     # 1: the hop under way did not hear the limited matched dry signal all through
NI = 36
CMP_OFF, CMP_ON, CMP_SWITCH = 0, 1, 2

# -- split rendering (offline drive search; see Chain.set_split) -----------------------------
SPLIT_ALL = 0       # the whole chain (the box, and every render without a drive search)
SPLIT_PRE = 1       # input .. stereo: y is the signal the drive stage receives
SPLIT_POST = 2      # x is that signal: drive, limiter, dither, output meter

S_MAIN, S_LO, S_MID, S_HI, S_DRY, S_TMP = 0, 1, 2, 3, 4, 5


# ==========================================================================================
# sub-block update: parameters -> ramps, coefficients, band settings
# ==========================================================================================
@njit(cache=True)
def _db(x):
    return 10.0 ** (x / 20.0)


@njit(cache=True)
def _close_hop_gain(fs, o_acc, o_ring, hops, counted):
    """One of the meters' 100 ms hops just completed (``hops``: their count now): the mean squared gain
    it heard (``fs[o_acc]`` summed over ``fs[o_acc + 1]`` sub-blocks) goes into its slot of the ring at
    ``o_ring``, laid out as the meters' own ring (0 when not ``counted``), and the sums start again.
    The compare match and the level match each keep such a ring beside the meters' hop energies."""
    if hops > 0:
        fs[o_ring + (hops - 1) % meter.SHORT_TERM_HOPS] = fs[o_acc] / max(fs[o_acc + 1], 1.0) if counted else 0.0
    fs[o_acc] = 0.0
    fs[o_acc + 1] = 0.0


@njit(cache=True)
def _level_match(tgt, prev, nxt, fs, ist, fresh, mf_in, mi_in, mf_out, mi_out, wf, wi):
    """Glide the bypass level-match gain toward the processed over the input short-term loudness.

    The processed signal's loudness is the output meter's, except while the bypass is pressed or
    live and for 3 s after it: the output meter hears the bypass then, so a wet meter (``wf, wi``)
    hears the processed signal, taking over the output meter's measurement where it stands when
    the bypass starts (meter.meter_follow). So the match follows the processing all through a
    bypass: a compressed master's loudness gain moves with the passage, and the last 3 s's
    before the bypass, held, landed the bypass 1.1 LU (rms) off the master's loudness over the
    next 5 s of music, 3.2 LU at worst; followed (and with the limiter's loss made up, below),
    0.5 LU, 1.7 at worst (docs/chain.md).

    The matched dry signal of a loud master is raised past the ceiling and its limiter takes
    loudness off (~1 LU for `loud`). The match makes up for it: for each 100 ms hop that heard only
    the limited matched dry signal, the output meter's energy over the hop's mean squared gain
    (F_LM_G2) stands for the input's, so the gain is sought that brings the limited signal, not
    the raised one, to the processed loudness. More gain, more limiting: each step of the
    estimate uses the loss at the gains heard, and the estimates converge (the limiter's output
    grows with its input).

    Also the share of the limited matched dry signal in the bypass (R_LIMD): 1 while level match
    is on; off, the gain first glides back to 1 through the dry signal's limiter, and only then
    does the bypass crossfade to the dry signal as it is (10 ms), so turning level match off while
    bypassed neither clips nor steps.
    """
    lm = 1.0
    on = tgt[P_LM] > 0.5
    hops = mi_out[meter.I_HOPS]
    if hops != ist[I_LM_HOP]:
        # the hop just completed: its mean squared match gain, if it heard only the limited dry signal
        _close_hop_gain(fs, F_LM_ACC, F_LM_G2, hops, ist[I_LM_MIXED] == 0 and fs[F_LM_N] > 0.0)
        ist[I_LM_MIXED] = 0
        ist[I_LM_HOP] = hops
        fs[F_LM_T] = _level_match_target(fs, ist, hops, mf_in, mi_in, mf_out, mi_out, wf, wi)
    if (prev[R_BYPASS] == 1.0 and nxt[R_BYPASS] == 1.0 and prev[R_LIMD] == 1.0 and nxt[R_LIMD] == 1.0
            and not fresh):
        fs[F_LM_ACC] += nxt[R_LM] * nxt[R_LM]
        fs[F_LM_N] += 1.0
    else:
        ist[I_LM_MIXED] = 1
    if ist[I_BYPASS] == 1 or nxt[R_BYPASS] > 0.0:
        if ist[I_WET] == 0:
            meter.meter_follow(wf, wi, mf_out, mi_out)
        # the wet meter runs until its short-term window holds no bypassed audio of the output meter's
        ist[I_WET] = (meter.SHORT_TERM_HOPS + 1) * mi_out[meter.I_HOP] // SUB + 1
    elif ist[I_WET] > 0:
        ist[I_WET] -= 1
    if on:
        lm = fs[F_LM_T] if fs[F_LM_T] > 0.0 else nxt[R_LM]
    g = lm if fresh else nxt[R_LM] + (lm - nxt[R_LM]) * fs[F_LM_A]
    if not on and abs(g - 1.0) < LEVEL_MATCH_SNAP:
        g = 1.0
    nxt[R_LM] = g
    share = 1.0 if (on or g != 1.0) else 0.0
    nxt[R_LIMD] = share if fresh else toward(nxt[R_LIMD], share, fs[F_STEP_FADE])


@njit(cache=True)
def _level_match_target(fs, ist, hops, mf_in, mi_in, mf_out, mi_out, wf, wi):
    """The level match's gain from the short-term window of the meters (0: nothing to go by);
    _level_match says what it measures. The window changes only when a hop completes."""
    wet = ist[I_WET] > 0
    n = min(mi_in[meter.I_HOPS], hops, meter.SHORT_TERM_HOPS)
    if wet:
        n = min(n, wi[meter.I_HOPS])
    e_in = 0.0
    e_out = 0.0
    lim_out = 0.0   # hops that heard only the limited matched dry signal: its energy at unit gain
    lim_in = 0.0    # and the input's
    for k in range(n):
        heard = meter.hop_energy(mf_out, mi_out, k)
        dry = meter.hop_energy(mf_in, mi_in, k)
        e_out += meter.hop_energy(wf, wi, k) if wet else heard
        e_in += dry
        g2 = fs[F_LM_G2 + (hops - 1 - k) % meter.SHORT_TERM_HOPS]
        if g2 > 0.0:
            lim_out += heard / g2
            lim_in += dry
    if lim_in > 0.0 and lim_out > 0.0:
        # what the dry signal's limiter takes off, made up to 3 dB: a mix that would need
        # more is not raised into a crushed copy of itself (its limited loudness has a bound)
        e_in *= max(lim_out / lim_in, LEVEL_MATCH_MAX_LOSS)
    # mean squares (the same length): below MIN_ENERGY the gain holds where it is
    e_in /= max(n, 1) * mi_in[meter.I_HOP]
    e_out /= max(n, 1) * mi_in[meter.I_HOP]
    if e_in > MIN_ENERGY and e_out > MIN_ENERGY:
        return min(max(math.sqrt(e_out / e_in), 0.063), 15.8)   # +-24 dB
    return 0.0


@njit(cache=True)
def _compare_match(tgt, nxt, fs, ist, fresh, mf_in, mi_in, mf_out, mi_out):
    """Glide the compare match's gain: the settings heard are turned down to the loudness of the
    settings heard before the last switch, if they are louder (Chain.match_compare says why).

    The loudness gain of the settings heard (F_CMP_G: output over input K-weighted energy, this
    gain taken out hop by hop) is measured by the meters over the 100 ms hops since new settings
    arrived and their glide was mostly done (from 200 ms, growing to the 3 s short-term window),
    so at a switch the settings left behind become the reference at once. At the next switch back
    the old reference is the incoming settings' own gain when last heard: the match starts from it
    (crossfaded like a bypass) while the meters hear the settings now heard.
    """
    c = nxt[R_CMP]
    hops = mi_out[meter.I_HOPS]
    if ist[I_CMP] == CMP_SWITCH:
        guess = fs[F_CMP_REF]
        fs[F_CMP_REF] = fs[F_CMP_G]
        fs[F_CMP_G] = guess
        ist[I_CMP] = CMP_ON
    elif ist[I_CMP] == CMP_OFF:
        fs[F_CMP_REF] = 0.0
    new_hop = hops != ist[I_CMP_HOP]
    restarted = hops < ist[I_CMP_HOP]   # the meters were restarted (reset_meters)
    if new_hop:
        # the hop just completed heard this gain on average (to a sub-block)
        _close_hop_gain(fs, F_CMP_ACC, F_CMP_C2, hops, True)
        ist[I_CMP_HOP] = hops
    if ist[I_CMP_NEW] == 1 or fresh or restarted or ist[I_BYPASS] == 1 or nxt[R_BYPASS] != 0.0:
        # the hop under way heard something else too, and the next one most of the glide
        ist[I_CMP_FROM] = hops + 2
        ist[I_CMP_NEW] = 0
    since = hops - ist[I_CMP_FROM]
    settled = since >= COMPARE_MIN_HOPS
    if settled and new_hop:
        e_in = 0.0
        e_out = 0.0
        for k in range(min(since, meter.SHORT_TERM_HOPS)):
            e_in += meter.hop_energy(mf_in, mi_in, k)
            e_out += meter.hop_energy(mf_out, mi_out, k) / fs[F_CMP_C2 + (hops - 1 - k) % meter.SHORT_TERM_HOPS]
        if e_in > MIN_ENERGY and e_out > MIN_ENERGY:
            fs[F_CMP_G] = e_out / e_in
    want = 1.0
    if ist[I_CMP] == CMP_ON and tgt[P_LM] > 0.5 and fs[F_CMP_REF] > 0.0 and fs[F_CMP_G] > 0.0:
        want = max(min(1.0, math.sqrt(fs[F_CMP_REF] / fs[F_CMP_G])), COMPARE_MIN_GAIN)
    if fresh:
        c = want
    elif not settled:
        c = toward(c, want, fs[F_STEP_BYP])
    else:
        c += (want - c) * fs[F_LM_A]
        if abs(want - c) < 1e-4:
            c = want
    nxt[R_CMP] = c
    fs[F_CMP_ACC] += c * c
    fs[F_CMP_N] += 1.0


@njit(cache=True)
def _design_hpf(coef, slope, f, rate, fresh):
    """The subsonic Butterworth high-pass at ``f``: one section (slope 1, 12 dB/oct) or two (24).

    ``fresh``: nothing to glide from (the first design, or after the filter was faded out)."""
    if slope == 1:
        svf.design(coef, C_HPF, eq_design.LOW_CUT, f, 0.0, rbj.BUTTER_Q, rate)
    else:
        svf.design(coef, C_HPF, eq_design.LOW_CUT, f, 0.0, rbj.BUTTER4_Q[0], rate)
        svf.design(coef, C_HPF + 1, eq_design.LOW_CUT, f, 0.0, rbj.BUTTER4_Q[1], rate)
    if fresh:
        svf.hold(coef, C_HPF)
        svf.hold(coef, C_HPF + 1)


@njit(cache=True)
def _update(par, rmp, coef, eqc, eqz, z, fs, ist, mf_in, mi_in, mf_out, mi_out, wf, wi):
    tgt = par[0]
    cur = par[1]
    rate = fs[F_RATE]
    fresh = ist[I_FRESH] == 1
    moved = True
    if fresh:
        for k in range(tgt.shape[0]):
            cur[k] = tgt[k]
    else:
        moved = advance(tgt, cur, par[2], par[3])
    prev = rmp[0]
    nxt = rmp[1]
    settled = True
    for k in range(NR):
        if prev[k] != nxt[k] and k != R_LM and k != R_CMP:
            settled = False
        prev[k] = nxt[k]
    if not (moved or fresh) and settled and ist[I_BYPASS] == ist[I_BYPASS_SEEN] and ist[I_AGAIN] == 0:
        # nothing moves: the derived values, ramps and coefficients all stand; only the EQ
        # glides end and the level match follows the meters
        for b in range(EQ_ROWS):
            svf.hold(eqc, b)
        for b in range(NC):
            svf.hold(coef, b)
        _level_match(tgt, prev, nxt, fs, ist, False, mf_in, mi_in, mf_out, mi_out, wf, wi)
        _compare_match(tgt, nxt, fs, ist, False, mf_in, mi_in, mf_out, mi_out)
        return
    ist[I_BYPASS_SEEN] = ist[I_BYPASS]
    ist[I_AGAIN] = 0
    step = 1.0 if fresh else fs[F_STEP_FADE]

    # input
    if fs[F_SRC_TRIM] != cur[P_TRIM]:
        nxt[R_TRIM] = _db(cur[P_TRIM])
        fs[F_SRC_TRIM] = cur[P_TRIM]
    nxt[R_POL_L] = toward(nxt[R_POL_L], -1.0 if tgt[P_INV_L] > 0.5 else 1.0, 2.0 * step)
    nxt[R_POL_R] = toward(nxt[R_POL_R], -1.0 if tgt[P_INV_R] > 0.5 else 1.0, 2.0 * step)
    slope = int(tgt[P_HPF_SLOPE] + 0.5)
    if fresh:
        ist[I_HPF_ACT] = slope
    want = 1.0 if (slope != 0 and slope == ist[I_HPF_ACT]) else 0.0
    nxt[R_HPF] = toward(nxt[R_HPF], want, step)
    if nxt[R_HPF] == 0.0 and prev[R_HPF] == 0.0:
        if ist[I_HPF_ACT] != slope:
            ist[I_HPF_ACT] = slope
            ist[I_AGAIN] = 1   # nothing else may move: without this the next update would skip the fade-in
        fs[F_DES_HPF] = -1.0   # faded out: the next design starts afresh, without a glide
        svf.clear(z, Z_HPF)
        svf.clear(z, Z_HPF + 1)
    svf.hold(coef, C_HPF)
    svf.hold(coef, C_HPF + 1)
    if ist[I_HPF_ACT] != 0 and fs[F_DES_HPF] != cur[P_HPF_FREQ]:
        _design_hpf(coef, ist[I_HPF_ACT], cur[P_HPF_FREQ], rate, fs[F_DES_HPF] == -1.0)
        fs[F_DES_HPF] = cur[P_HPF_FREQ]
    nxt[R_DC] = toward(nxt[R_DC], 1.0 if tgt[P_DC] > 0.5 else 0.0, step)
    if nxt[R_DC] == 0.0 and prev[R_DC] == 0.0:
        fs[F_DC_X] = 0.0
        fs[F_DC_X + 1] = 0.0
        fs[F_DC_Y] = 0.0
        fs[F_DC_Y + 1] = 0.0

    # EQ
    for b in range(6):
        base = P_EQ + 6 * b
        typ = int(tgt[base + 1] + 0.5)
        place = int(tgt[base + 5] + 0.5)
        if fresh:
            ist[I_EQ_TYPE + b] = typ
            ist[I_EQ_PLACE + b] = place
        same = typ == ist[I_EQ_TYPE + b] and place == ist[I_EQ_PLACE + b]
        want = 1.0 if (tgt[base] > 0.5 and same) else 0.0
        r = R_EQ + b
        nxt[r] = toward(nxt[r], want, step)
        if nxt[r] == 0.0 and prev[r] == 0.0:
            svf.clear(eqz, b)
            if not same:
                ist[I_EQ_TYPE + b] = typ
                ist[I_EQ_PLACE + b] = place
                fs[F_DES_EQ + 3 * b] = -1.0
                ist[I_AGAIN] = 1
            continue
        d = F_DES_EQ + 3 * b
        f = cur[base + 2]
        g = cur[base + 3]
        q = cur[base + 4]
        fresh_design = fs[d] == -1.0
        svf.hold(eqc, b)        # the glide starts where the last one ended
        if fs[d] != f or fs[d + 1] != g or fs[d + 2] != q:
            svf.design(eqc, b, ist[I_EQ_TYPE + b], f, g, q, rate)
            if fresh_design:
                svf.hold(eqc, b)
            fs[d] = f
            fs[d + 1] = g
            fs[d + 2] = q
    # the tone: a tilt on both channels, always in; at 0 dB a wire, which _eq_stage skips
    f = cur[P_TONE_F]
    g = cur[P_TONE]
    svf.hold(eqc, TONE_ROW)
    if fs[F_DES_TONE] != f or fs[F_DES_TONE + 1] != g:
        kind, gain_db, q = svf.tone_as_band(g)
        svf.design(eqc, TONE_ROW, kind, f, gain_db, q, rate)
        if fresh or math.isnan(fs[F_DES_TONE]):   # the first design: nothing to glide from
            svf.hold(eqc, TONE_ROW)
        fs[F_DES_TONE] = f
        fs[F_DES_TONE + 1] = g

    # multiband
    nxt[R_MB] = toward(nxt[R_MB], 1.0 if tgt[P_MB_ON] > 0.5 else 0.0, step)
    mb_live = nxt[R_MB] > 0.0 or prev[R_MB] > 0.0
    svf.hold(coef, C_XO)
    svf.hold(coef, C_XO + 1)
    if not mb_live:
        crossover.clear(z, Z_XO)
        fs[F_DES_XO] = -1.0     # the next design starts afresh, without a glide
        _clear_bands(fs)
    elif fs[F_DES_XO] != cur[P_XL] or fs[F_DES_XO + 1] != cur[P_XH]:
        crossover.design(coef, C_XO, cur[P_XL], cur[P_XH], rate, fs[F_DES_XO] == -1.0)
        fs[F_DES_XO] = cur[P_XL]
        fs[F_DES_XO + 1] = cur[P_XH]
        # each band's detector holds a half cycle of the lowest note it carries (an octave
        # under its lower split; the low band: 20 Hz)
        ist[I_PK_HOLD] = compressor.hold_subblocks(compressor.LOW_BAND_EDGE_HZ, rate, SUB)
        ist[I_PK_HOLD + 1] = compressor.hold_subblocks(0.5 * cur[P_XL], rate, SUB)
        ist[I_PK_HOLD + 2] = compressor.hold_subblocks(0.5 * cur[P_XH], rate, SUB)
    nxt[R_MIX] = cur[P_MIX] * 0.01
    any_solo = False
    for b in range(3):
        if tgt[P_MB + 8 * b + 7] > 0.5:
            any_solo = True
    for b in range(3):
        base = P_MB + 8 * b
        nxt[R_BYP + b] = toward(nxt[R_BYP + b], 1.0 if tgt[base + 6] > 0.5 else 0.0, step)
        aud = 1.0 if (not any_solo or tgt[base + 7] > 0.5) else 0.0
        nxt[R_AUD + b] = toward(nxt[R_AUD + b], aud, step)
        fs[F_RAT + b] = cur[base + 1]
        src = F_SRC_MB + 5 * b
        if fs[src] != cur[base + 5]:
            nxt[R_MK + b] = _db(cur[base + 5])
            fs[src] = cur[base + 5]
        thr = cur[base]
        knee = cur[base + 2]
        if fs[src + 1] != thr or fs[src + 2] != knee:
            fs[F_THR + b] = thr
            fs[F_KNEE + b] = knee
            fs[F_KNEE_LIN + b] = _db(thr - 0.5 * knee)
            fs[src + 1] = thr
            fs[src + 2] = knee
        if fs[src + 3] != cur[base + 3]:
            fs[F_AA + b] = compressor.coefficient(cur[base + 3], rate / SUB)   # per sub-block steps
            fs[src + 3] = cur[base + 3]
        if fs[src + 4] != cur[base + 4]:
            fs[F_AR + b] = compressor.coefficient(cur[base + 4], rate / SUB)
            fs[src + 4] = cur[base + 4]

    # stereo
    nxt[R_WIDTH] = cur[P_WIDTH] * 0.01
    nxt[R_MONO] = toward(nxt[R_MONO], 1.0 if tgt[P_MONO] > 0.5 else 0.0, step)
    svf.hold(coef, C_MONO)
    if nxt[R_MONO] == 0.0 and prev[R_MONO] == 0.0:
        for k in range(3):
            svf.clear(z, Z_MONO + k)
        fs[F_DES_MONO] = -1.0   # the next design starts afresh, without a glide
    elif fs[F_DES_MONO] != cur[P_MONO_F]:
        f = cur[P_MONO_F]
        svf.design(coef, C_MONO, eq_design.LOW_CUT, f, 0.0, rbj.BUTTER_Q, rate)
        if fs[F_DES_MONO] == -1.0:
            svf.hold(coef, C_MONO)
        fs[F_DES_MONO] = f
    bal = cur[P_BAL]
    if fs[F_SRC_BAL] != bal:
        theta = (bal + 1.0) * 0.25 * math.pi
        nxt[R_BAL_L] = min(1.0, math.sqrt(2.0) * math.cos(theta))
        nxt[R_BAL_R] = min(1.0, math.sqrt(2.0) * math.sin(theta))
        if bal == 0.0:
            nxt[R_BAL_L] = 1.0
            nxt[R_BAL_R] = 1.0
        fs[F_SRC_BAL] = bal

    # drive, limiter
    if fs[F_SRC_DRIVE] != cur[P_DRIVE]:
        nxt[R_DRIVE] = _db(cur[P_DRIVE])
        fs[F_SRC_DRIVE] = cur[P_DRIVE]
    rel = cur[P_REL]
    if fs[F_SRC_LIM] != cur[P_CEIL] or fs[F_SRC_LIM + 1] != rel:
        ceil = _db(cur[P_CEIL])
        fs[F_LIM_C] = ceil
        fs[F_LIM_T] = ceil * _db(-limiter.MARGIN_DB)
        fs[F_LIM_AF] = compressor.coefficient(rel, rate)
        fs[F_LIM_ASA] = compressor.coefficient(100.0, rate)
        fs[F_LIM_ASR] = compressor.coefficient(max(5.0 * rel, 250.0), rate)
        fs[F_SRC_LIM] = cur[P_CEIL]
        fs[F_SRC_LIM + 1] = rel

    # bypass and level match
    bstep = 1.0 if fresh else fs[F_STEP_BYP]
    nxt[R_BYPASS] = toward(nxt[R_BYPASS], 1.0 if ist[I_BYPASS] == 1 else 0.0, bstep)
    _level_match(tgt, prev, nxt, fs, ist, fresh, mf_in, mi_in, mf_out, mi_out, wf, wi)
    _compare_match(tgt, nxt, fs, ist, fresh, mf_in, mi_in, mf_out, mi_out)

    if fresh:
        for k in range(NR):
            prev[k] = nxt[k]
        ist[I_FRESH] = 0


# ==========================================================================================
# stages (each works on s[:m] of the sub-block scratch; pos is the position in the sub-block)
# ==========================================================================================
@njit(cache=True)
def _gain(s, m, pos, rmp, r, ch):
    g0 = rmp[0, r]
    dg = (rmp[1, r] - g0) * (1.0 / SUB)
    if dg == 0.0:
        if g0 != 1.0:
            for n in range(m):
                s[n, ch] *= g0
        return
    for n in range(m):
        s[n, ch] *= g0 + dg * (pos + n + 1)


@njit(cache=True)
def _fade_mix(s, w, m, pos, rmp, r):
    """s = s + fade * (w - s), the fade ramping across the sub-block."""
    f0 = rmp[0, r]
    df = (rmp[1, r] - f0) * (1.0 / SUB)
    for n in range(m):
        f = fade(f0 + df * (pos + n + 1))
        for ch in range(2):
            s[n, ch] += f * (w[n, ch] - s[n, ch])


@njit(cache=True)
def _live(rmp, r):
    return rmp[0, r] != 0.0 or rmp[1, r] != 0.0


@njit(cache=True)
def _full(rmp, r):
    return rmp[0, r] == 1.0 and rmp[1, r] == 1.0


@njit(cache=True)
def _hpf1_dc(s, m, pos, rmp, coef, z, fs):
    """The 12 dB/oct subsonic high-pass and the DC removal, each with its crossfade, in one pass.

    Per sample the arithmetic of svf.highpass2_to, _fade_mix, the DC loop below and _fade_mix
    again (the same numbers); one loop lets the CPU overlap the two filters' recursions.
    """
    g0, dg = svf.gain_ramp(coef, C_HPF, pos, SUB)
    kq = coef[C_HPF, 1]
    sc = svf.section(g0, kq)
    moving = dg != 0.0
    l1, l2, r1, r2 = z[Z_HPF, 0, 0], z[Z_HPF, 0, 1], z[Z_HPF, 1, 0], z[Z_HPF, 1, 1]
    h0 = rmp[0, R_HPF]
    dh = (rmp[1, R_HPF] - h0) * (1.0 / SUB)
    d0 = rmp[0, R_DC]
    dd = (rmp[1, R_DC] - d0) * (1.0 / SUB)
    rr = fs[F_DC_R]
    xl, yl, xr, yr = fs[F_DC_X], fs[F_DC_Y], fs[F_DC_X + 1], fs[F_DC_Y + 1]
    for n in range(m):
        k = pos + n + 1
        if moving:
            sc = svf.section(g0 + dg * k, kq)
        left = s[n, 0]
        right = s[n, 1]
        hl, _, _, l1, l2 = svf.step(left, l1, l2, sc)
        hr, _, _, r1, r2 = svf.step(right, r1, r2, sc)
        f = fade(h0 + dh * k)
        left += f * (hl - left)
        right += f * (hr - right)
        yl = left - xl + rr * yl
        yr = right - xr + rr * yr
        xl = left
        xr = right
        f = fade(d0 + dd * k)
        s[n, 0] = left + f * (yl - left)
        s[n, 1] = right + f * (yr - right)
    z[Z_HPF, 0, 0], z[Z_HPF, 0, 1] = svf.flush(l1), svf.flush(l2)
    z[Z_HPF, 1, 0], z[Z_HPF, 1, 1] = svf.flush(r1), svf.flush(r2)
    fs[F_DC_X], fs[F_DC_Y] = xl, svf.flush(yl)
    fs[F_DC_X + 1], fs[F_DC_Y + 1] = xr, svf.flush(yr)


@njit(cache=True)
def _input_stage(s, tmp, m, pos, rmp, coef, z, fs, ist):
    _gain(s, m, pos, rmp, R_TRIM, 0)
    _gain(s, m, pos, rmp, R_TRIM, 1)
    _gain(s, m, pos, rmp, R_POL_L, 0)
    _gain(s, m, pos, rmp, R_POL_R, 1)
    if _live(rmp, R_HPF) and ist[I_HPF_ACT] == 1 and _live(rmp, R_DC):
        _hpf1_dc(s, m, pos, rmp, coef, z, fs)
        return
    if _live(rmp, R_HPF) and ist[I_HPF_ACT] != 0:
        if ist[I_HPF_ACT] == 1:
            svf.highpass2_to(s, tmp, m, coef, C_HPF, z, Z_HPF, pos, SUB)
        else:
            svf.highpass4_to(s, tmp, m, coef, C_HPF, z, Z_HPF, pos, SUB)
        _fade_mix(s, tmp, m, pos, rmp, R_HPF)
    if _live(rmp, R_DC):
        # both channels in one loop: each is a serial recursion, two interleave for free
        r = fs[F_DC_R]
        xl = fs[F_DC_X]
        yl = fs[F_DC_Y]
        xr = fs[F_DC_X + 1]
        yr = fs[F_DC_Y + 1]
        for n in range(m):
            a = s[n, 0]
            b = s[n, 1]
            yl = a - xl + r * yl
            yr = b - xr + r * yr
            xl = a
            xr = b
            tmp[n, 0] = yl
            tmp[n, 1] = yr
        fs[F_DC_X] = xl
        fs[F_DC_Y] = svf.flush(yl)
        fs[F_DC_X + 1] = xr
        fs[F_DC_Y + 1] = svf.flush(yr)
        _fade_mix(s, tmp, m, pos, rmp, R_DC)


@njit(cache=True)
def _eq_stage(s, tmp, m, pos, rmp, eqc, eqz, ist):
    for b in range(6):
        r = R_EQ + b
        if not _live(rmp, r):
            continue
        place = ist[I_EQ_PLACE + b]
        if place == 0 and _full(rmp, r):
            svf.run2_to(s, s, m, eqc, b, eqz, pos, SUB)
            continue
        if place != 0 and not svf.glide(eqc, b):
            # mid or side, coefficients standing still: conversions, filter and crossfade in one pass
            f0 = rmp[0, r]
            svf.run_ms(s, m, eqc, b, eqz, place - 1, f0, (rmp[1, r] - f0) * (1.0 / SUB), pos)
            continue
        if place == 0:
            svf.run2_to(s, tmp, m, eqc, b, eqz, pos, SUB)
        else:
            for n in range(m):
                tmp[n, 0] = 0.5 * (s[n, 0] + s[n, 1])
                tmp[n, 1] = 0.5 * (s[n, 0] - s[n, 1])
            ch = 0 if place == 1 else 1
            svf.run1(tmp, ch, m, eqc, b, eqz, pos, SUB)
            for n in range(m):
                mid = tmp[n, 0]
                side = tmp[n, 1]
                tmp[n, 0] = mid + side
                tmp[n, 1] = mid - side
        _fade_mix(s, tmp, m, pos, rmp, r)
    if svf.wire(eqc, TONE_ROW):
        svf.clear(eqz, TONE_ROW)     # at rest: it starts from rest when it is turned again
    else:
        svf.run2_to(s, s, m, eqc, TONE_ROW, eqz, pos, SUB)


@njit(cache=True)
def _clear_bands(fs):
    """The band compressors at rest: no reduction, no peaks remembered."""
    for b in range(3):
        fs[F_ENV + b] = 0.0
        fs[F_LVL + b] = 0.0
        fs[F_CG0 + b] = 1.0
        fs[F_CG1 + b] = 1.0
    fs[F_PK:F_PK + 3 * compressor.PEAK_RING] = 0.0


@njit(cache=True)
def _multiband_stage(sc, m, pos, rmp, coef, z, fs, ist):
    s = sc[S_MAIN]
    lo = sc[S_LO]
    mid = sc[S_MID]
    hi = sc[S_HI]
    dry = sc[S_DRY]
    crossover.split(s, lo, mid, hi, dry, m, coef, C_XO, z, Z_XO, pos, SUB)
    for b in range(3):
        band = lo if b == 0 else (mid if b == 1 else hi)
        env = fs[F_ENV + b]
        thr = fs[F_THR + b]
        ratio = fs[F_RAT + b]
        knee = fs[F_KNEE + b]
        floor = fs[F_KNEE_LIN + b]
        aa = fs[F_AA + b]
        ar = fs[F_AR + b]
        by0 = rmp[0, R_BYP + b]
        dby = (rmp[1, R_BYP + b] - by0) * (1.0 / SUB)
        au0 = rmp[0, R_AUD + b]
        dau = (rmp[1, R_AUD + b] - au0) * (1.0 / SUB)
        mk0 = rmp[0, R_MK + b]
        dmk = (rmp[1, R_MK + b] - mk0) * (1.0 / SUB)
        if pos == 0:
            # a new sub-block: the gain computer runs once on the largest peak of the band's
            # hold (stereo-linked), the reduction glides linearly across this one
            level = compressor.held_peak(fs, F_PK + compressor.PEAK_RING * b, ist[I_PK_POS],
                                         fs[F_LVL + b], ist[I_PK_HOLD + b])
            want = 0.0
            if level > floor:
                want = compressor.static_gr_db(20.0 * math.log10(level), thr, ratio, knee)
            if want != env:
                env = compressor.smooth_gr(env, want, aa, ar)
            fs[F_ENV + b] = env
            if env > fs[F_GR + b]:
                fs[F_GR + b] = env
            fs[F_CG0 + b] = fs[F_CG1 + b]
            fs[F_CG1 + b] = _db(-env) if env > 0.0 else 1.0
            fs[F_LVL + b] = 0.0
        level = fs[F_LVL + b]
        c0 = fs[F_CG0 + b]
        dc = (fs[F_CG1 + b] - c0) * (1.0 / SUB)
        if by0 == 0.0 and dby == 0.0 and au0 == 1.0 and dau == 0.0:
            # band in, audible, not switching (the usual case): the same gain without the
            # terms that are exactly 0 and 1 here
            for n in range(m):
                a = max(abs(band[n, 0]), abs(band[n, 1]))
                if a > level:
                    level = a
                k = pos + n + 1
                g = (mk0 + dmk * k) * (c0 + dc * k)
                band[n, 0] *= g
                band[n, 1] *= g
        else:
            for n in range(m):
                a = max(abs(band[n, 0]), abs(band[n, 1]))
                if a > level:
                    level = a
                k = pos + n + 1
                by = fade(by0 + dby * k)
                g = (by + (1.0 - by) * (mk0 + dmk * k) * (c0 + dc * k)) * fade(au0 + dau * k)
                band[n, 0] *= g
                band[n, 1] *= g
        fs[F_LVL + b] = level
    if pos == 0:
        ist[I_PK_POS] = (ist[I_PK_POS] + 1) % compressor.PEAK_RING
    # sum of the bands, parallel mix against the all-passed dry, then the multiband in/out
    # crossfade (what _fade_mix does), in one pass
    w0 = rmp[0, R_MIX]
    dw = (rmp[1, R_MIX] - w0) * (1.0 / SUB)
    f0 = rmp[0, R_MB]
    df = (rmp[1, R_MB] - f0) * (1.0 / SUB)
    for n in range(m):
        w = w0 + dw * (pos + n + 1)
        f = fade(f0 + df * (pos + n + 1))
        for ch in range(2):
            wet = lo[n, ch] + mid[n, ch] + hi[n, ch]
            wet = dry[n, ch] + w * (wet - dry[n, ch])
            s[n, ch] += f * (wet - s[n, ch])


@njit(cache=True)
def _mono_bass(ms, m, pos, rmp, coef, z):
    """Mono bass on mid/side ``ms[:m]``, in place, crossfaded in by R_MONO: the side through the LR4
    high-pass at the mono frequency, the mid through the matching all-pass, so the two stay in
    phase above it (and the sum is flat). One gliding set for the three sections, one loop."""
    g0, dg = svf.gain_ramp(coef, C_MONO, pos, SUB)
    k = coef[C_MONO, 1]
    k2 = 2.0 * k
    sc = svf.section(g0, k)
    moving = dg != 0.0
    f0 = rmp[0, R_MONO]
    df = (rmp[1, R_MONO] - f0) * (1.0 / SUB)
    p1, p2 = z[Z_MONO, 0, 0], z[Z_MONO, 0, 1]
    q1, q2 = z[Z_MONO + 1, 1, 0], z[Z_MONO + 1, 1, 1]
    r1, r2 = z[Z_MONO + 2, 1, 0], z[Z_MONO + 2, 1, 1]
    for n in range(m):
        t = pos + n + 1.0
        if moving:
            sc = svf.section(g0 + dg * t, k)
        mid = ms[n, 0]
        side = ms[n, 1]
        _, bp, _, p1, p2 = svf.step(mid, p1, p2, sc)
        ap = mid - k2 * bp
        hp, _, _, q1, q2 = svf.step(side, q1, q2, sc)
        hp, _, _, r1, r2 = svf.step(hp, r1, r2, sc)
        f = fade(f0 + df * t)
        ms[n, 0] = mid + f * (ap - mid)
        ms[n, 1] = side + f * (hp - side)
    z[Z_MONO, 0, 0], z[Z_MONO, 0, 1] = svf.flush(p1), svf.flush(p2)
    z[Z_MONO + 1, 1, 0], z[Z_MONO + 1, 1, 1] = svf.flush(q1), svf.flush(q2)
    z[Z_MONO + 2, 1, 0], z[Z_MONO + 2, 1, 1] = svf.flush(r1), svf.flush(r2)


@njit(cache=True)
def _stereo_stage(s, tmp, m, pos, rmp, coef, z):
    mono = _live(rmp, R_MONO)
    width_one = rmp[0, R_WIDTH] == 1.0 and rmp[1, R_WIDTH] == 1.0
    if mono or not width_one:
        for n in range(m):
            tmp[n, 0] = 0.5 * (s[n, 0] + s[n, 1])
            tmp[n, 1] = 0.5 * (s[n, 0] - s[n, 1])
        if mono:
            _mono_bass(tmp, m, pos, rmp, coef, z)
        w0 = rmp[0, R_WIDTH]
        dw = (rmp[1, R_WIDTH] - w0) * (1.0 / SUB)
        for n in range(m):
            side = tmp[n, 1] * (w0 + dw * (pos + n + 1))
            s[n, 0] = tmp[n, 0] + side
            s[n, 1] = tmp[n, 0] - side
    _gain(s, m, pos, rmp, R_BAL_L, 0)
    _gain(s, m, pos, rmp, R_BAL_R, 1)


@njit(cache=True)
def _matched_dry(d, xin, i, m, pos, rmp, fs, ist, tgt, drybuf, tmp, pk, geo, phase, dlim):
    """The level-matched dry signal of this chunk into ``d[:m]``: the input times the match gain
    through a limiter of its own (the output limiter's ceiling and release).

    A quiet mix matched to a loud master is raised 5-11 dB and its peaks pass full scale; the
    limiter keeps it under the ceiling the master keeps, where a clamp at full scale hard-clipped
    it. It has the chain's latency (the output limiter's), so fed the input as it arrives its
    output lines up with the master. Below the ceiling its gain is exactly 1: the dry signal
    times the match, bit for bit. It runs only while bypass is live; when it starts it is primed
    with the last ``latency`` input samples (the dry ring holds them), so its first output
    sample is the right one."""
    hist, delay, dq_val, dq_idx, box1, box2, lfs, lis = dlim
    l0 = rmp[0, R_LM]
    dl = (rmp[1, R_LM] - l0) * (1.0 / SUB)
    auto = tgt[P_AUTO] > 0.5
    if ist[I_DRY_LIM] == 0:
        limiter.rest(hist, delay, dq_val, dq_idx, box1, box2, lfs, lis)
        dsize = drybuf.shape[1]
        latency = geo[5]
        k = 0
        while k < latency:
            n = min(SUB, latency - k)
            for j in range(n):
                # the ring holds the last latency + 1 input samples, the oldest at I_DRY_POS: the newest `latency`
                r = (ist[I_DRY_POS] + dsize - latency + k + j) % dsize
                tmp[j, 0] = drybuf[0, r] * l0
                tmp[j, 1] = drybuf[1, r] * l0
            limiter.process(tmp, 0, n, fs[F_LIM_T], fs[F_LIM_C], fs[F_LIM_AF], auto, fs[F_LIM_ASA],
                            fs[F_LIM_ASR], geo, phase, hist, delay, dq_val, dq_idx, box1, box2, lfs, lis, pk)
            k += n
        ist[I_DRY_LIM] = 1
    for n in range(m):
        g = l0 + dl * (pos + n + 1)
        d[n, 0] = xin[i + n, 0] * g
        d[n, 1] = xin[i + n, 1] * g
    limiter.process(d, 0, m, fs[F_LIM_T], fs[F_LIM_C], fs[F_LIM_AF], auto, fs[F_LIM_ASA], fs[F_LIM_ASR],
                    geo, phase, hist, delay, dq_val, dq_idx, box1, box2, lfs, lis, pk)


@njit(cache=True)
def _reset_state(z, eqz, fs, ist, hist, ldelay, dq_val, dq_idx, box1, box2, lfs, lis, derr, drybuf, rmp):
    """Back to silence after a fault: every filter, envelope and delay line cleared."""
    z[:] = 0.0
    eqz[:] = 0.0
    _clear_bands(fs)
    for k in range(2):
        fs[F_DC_X + k] = 0.0
        fs[F_DC_Y + k] = 0.0
    limiter.rest(hist, ldelay, dq_val, dq_idx, box1, box2, lfs, lis)
    ist[I_DRY_LIM] = 0      # the matched dry signal's limiter: primed afresh when next needed
    derr[:] = 0.0
    drybuf[:] = 0.0
    ist[I_ON_GRID_RUN] = dither.BLANK_AFTER
    ist[I_RESETS] += 1


# ==========================================================================================
# the one kernel per block
# ==========================================================================================
@njit(cache=True)
def _chain_body(x, y, xin, pk, par, rmp, coef, eqc, eqz, z, fs, ist, sc, drybuf,
                 geo, phase, hist, ldelay, dq_val, dq_idx, box1, box2, lfs, lis,
                 dcoef, derr, rng, mf_in, mi_in, mf_out, mi_out, dlim, wf, wi):
    n_total = x.shape[0]
    tgt = par[0]
    split = ist[I_SPLIT]
    pre = split != SPLIT_POST       # run input .. stereo on x
    post = split != SPLIT_PRE       # run drive .. dither into y
    if pre:
        # sanitise: NaN, Inf and absurd values become silence (counted)
        for n in range(n_total):
            for ch in range(2):
                v = x[n, ch]
                if not (abs(v) <= BIG):
                    v = 0.0
                    ist[I_FAULTS] += 1
                xin[n, ch] = v
    s = sc[S_MAIN]
    tmp = sc[S_TMP]
    latency = geo[5]
    dsize = drybuf.shape[1]
    i = 0
    while i < n_total:
        pos = ist[I_POS]
        if pos == 0:
            _update(par, rmp, coef, eqc, eqz, z, fs, ist, mf_in, mi_in, mf_out, mi_out, wf, wi)
        m = min(SUB - pos, n_total - i)
        if pre:
            for n in range(m):
                s[n, 0] = xin[i + n, 0]
                s[n, 1] = xin[i + n, 1]
            _input_stage(s, tmp, m, pos, rmp, coef, z, fs, ist)
            _eq_stage(s, tmp, m, pos, rmp, eqc, eqz, ist)
            if _live(rmp, R_MB):
                _multiband_stage(sc, m, pos, rmp, coef, z, fs, ist)
            _stereo_stage(s, tmp, m, pos, rmp, coef, z)
        else:
            # SPLIT_POST: x holds what the stereo stage produced (a SPLIT_PRE render's y)
            for n in range(m):
                s[n, 0] = x[i + n, 0]
                s[n, 1] = x[i + n, 1]
        if not post:
            # SPLIT_PRE: hand the drive stage's input out (the output meter measures it, below)
            for n in range(m):
                y[i + n, 0] = s[n, 0]
                y[i + n, 1] = s[n, 1]
            ist[I_POS] = (pos + m) % SUB
            i += m
            continue
        _gain(s, m, pos, rmp, R_DRIVE, 0)
        _gain(s, m, pos, rmp, R_DRIVE, 1)
        limiter.process(s, 0, m, fs[F_LIM_T], fs[F_LIM_C], fs[F_LIM_AF], tgt[P_AUTO] > 0.5,
                        fs[F_LIM_ASA], fs[F_LIM_ASR], geo, phase, hist, ldelay, dq_val, dq_idx,
                        box1, box2, lfs, lis, pk)
        _gain(s, m, pos, rmp, R_CMP, 0)
        _gain(s, m, pos, rmp, R_CMP, 1)
        if ist[I_WET] > 0 and pre:
            # the processed signal as heard unbypassed, for the level match (_level_match)
            meter_process(s[:m], wf, wi)
        bypass = _live(rmp, R_BYPASS)
        limited = bypass and pre and _live(rmp, R_LIMD)
        if limited:
            # before the dry ring takes this chunk: a limiter starting now is primed from it
            _matched_dry(sc[S_LO], xin, i, m, pos, rmp, fs, ist, tgt, drybuf, sc[S_TMP], pk, geo, phase, dlim)
        else:
            ist[I_DRY_LIM] = 0
        if pre:
            # latency-aligned dry signal (bypass and level match); SPLIT_POST has no dry input
            # and is never bypassed (Chain.set_split)
            dp = ist[I_DRY_POS]
            for n in range(m):
                drybuf[0, dp] = xin[i + n, 0]
                drybuf[1, dp] = xin[i + n, 1]
                rp = dp - latency
                if rp < 0:
                    rp += dsize
                sc[S_DRY, n, 0] = drybuf[0, rp]
                sc[S_DRY, n, 1] = drybuf[1, rp]
                dp += 1
                if dp == dsize:
                    dp = 0
            ist[I_DRY_POS] = dp
        if bypass:
            # the processed signal crossfades to the dry one: the limited matched dry signal
            # (level match on, or its gain still gliding back to 1), the dry signal as it is
            # (level match off), or between the two for 10 ms when level match was turned off
            b0 = rmp[0, R_BYPASS]
            db = (rmp[1, R_BYPASS] - b0) * (1.0 / SUB)
            a0 = rmp[0, R_LIMD]
            da = (rmp[1, R_LIMD] - a0) * (1.0 / SUB)
            d = sc[S_LO]
            for n in range(m):
                k = pos + n + 1
                b = fade(b0 + db * k)
                a = fade(a0 + da * k) if limited else 0.0
                for ch in range(2):
                    if a == 1.0:
                        u = d[n, ch]
                    else:
                        # unity gain (level match off): the dry signal is within full scale;
                        # the clamp guards what the crossfade's share of it could not
                        u = min(max(sc[S_DRY, n, ch], -1.0), 1.0)
                        if a > 0.0:
                            u += a * (d[n, ch] - u)
                    s[n, ch] += b * (u - s[n, ch])
        bits = ist[I_BITS]
        mode = int(tgt[P_DMODE] + 0.5)
        if bits > 0 and mode > 0:
            qbits = min(bits, 16 if tgt[P_DBITS] < 0.5 else 24)
            shaped = mode == 2 and dcoef[0] != 0.0
            # what is already on the output grid stays as it is (dither.BLANK_AFTER): digital
            # silence, and audio nothing has changed; from the BLANK_AFTER-th such frame in a row
            # on the samples pass as they are, the rest is quantised in runs
            run = ist[I_ON_GRID_RUN]
            start = 0
            scale = 2.0 ** (qbits - 1)
            for n in range(m):
                if dither.on_grid(s[n, 0], scale) and dither.on_grid(s[n, 1], scale):
                    if run < dither.BLANK_AFTER:
                        run += 1
                else:
                    run = 0
                if run >= dither.BLANK_AFTER:
                    if start < n:
                        dither.quantise(s, start, n, qbits, shaped, dcoef, derr, rng)
                    start = n + 1
                    derr[:] = 0.0
            if start < m:
                dither.quantise(s, start, m, qbits, shaped, dcoef, derr, rng)
            ist[I_ON_GRID_RUN] = run
        bad = False
        for n in range(m):
            for ch in range(2):
                v = s[n, ch]
                if not (abs(v) <= 1.0):
                    bad = True
                y[i + n, ch] = v
        if bad:
            # cannot happen with sane state; if it does, output silence and start clean
            for n in range(m):
                y[i + n, 0] = 0.0
                y[i + n, 1] = 0.0
            _reset_state(z, eqz, fs, ist, hist, ldelay, dq_val, dq_idx, box1, box2, lfs, lis, derr, drybuf, rmp)
        if split == SPLIT_ALL:
            # meters chunk by chunk, so the level match reads the same state however blocks are cut
            meter_process(xin[i:i + m], mf_in, mi_in)
            meter_process(y[i:i + m], mf_out, mi_out)
        ist[I_POS] = (pos + m) % SUB
        i += m
    if split != SPLIT_ALL:
        # a split chain is never bypassed, so nothing reads the meters inside the block: meter it
        # whole (the meters' readings do not depend on how the stream is cut; ~25 % less work)
        if pre:
            meter_process(xin[:n_total], mf_in, mi_in)
        meter_process(y, mf_out, mi_out)


# -- the state is two flat arrays (fewer arguments: each costs ~70 ns of dispatch per call) --
# float arrays, in this order; (name, number of dimensions)
FLOAT_ARRAYS = (("xin", 2), ("pk", 1), ("par", 2), ("rmp", 2), ("coef", 2), ("eqc", 2), ("eqz", 3), ("z", 3),
                ("fs", 1), ("sc", 3), ("dry", 2), ("phase", 2), ("hist", 2), ("delay", 2), ("dq_val", 1),
                ("box1", 1), ("box2", 1), ("lfs", 1), ("dcoef", 1), ("derr", 2),
                # the level-matched dry signal's limiter (_matched_dry)
                ("d_hist", 2), ("d_delay", 2), ("d_dq_val", 1), ("d_box1", 1), ("d_box2", 1), ("d_lfs", 1),
                # the wet meter: the processed signal's loudness while bypassed (_level_match)
                ("w_f", 1))
INT_ARRAYS = (("ist", 1), ("geo", 1), ("dq_idx", 1), ("lis", 1), ("d_dq_idx", 1), ("d_lis", 1), ("w_i", 1))
HEADER = 4 * (len(FLOAT_ARRAYS) + len(INT_ARRAYS))   # per array: offset, dims


@njit(cache=True)
def _f1(F, I, k):
    o = I[4 * k]
    return F[o:o + I[4 * k + 1]]


@njit(cache=True)
def _f2(F, I, k):
    o = I[4 * k]
    a = I[4 * k + 1]
    b = I[4 * k + 2]
    return F[o:o + a * b].reshape((a, b))


@njit(cache=True)
def _f3(F, I, k):
    o = I[4 * k]
    a = I[4 * k + 1]
    b = I[4 * k + 2]
    c = I[4 * k + 3]
    return F[o:o + a * b * c].reshape((a, b, c))


@njit(cache=True)
def _i1(I, k):
    h = 4 * (len(FLOAT_ARRAYS) + k)
    o = I[h]
    return I[o:o + I[h + 1]]


@njit(cache=True)
def chain_kernel(x, y, F, I, rng, mf_in, mi_in, mf_out, mi_out):
    """One block through the chain: x, y (frames, 2); F, I the chain's packed state."""
    _chain_body(x, y, _f2(F, I, 0), _f1(F, I, 1), _f2(F, I, 2), _f2(F, I, 3), _f2(F, I, 4), _f2(F, I, 5),
                _f3(F, I, 6), _f3(F, I, 7), _f1(F, I, 8), _i1(I, 0), _f3(F, I, 9), _f2(F, I, 10),
                _i1(I, 1), _f2(F, I, 11), _f2(F, I, 12), _f2(F, I, 13), _f1(F, I, 14), _i1(I, 2),
                _f1(F, I, 15), _f1(F, I, 16), _f1(F, I, 17), _i1(I, 3), _f1(F, I, 18), _f2(F, I, 19),
                rng, mf_in, mi_in, mf_out, mi_out,
                (_f2(F, I, 20), _f2(F, I, 21), _f1(F, I, 22), _i1(I, 4), _f1(F, I, 23), _f1(F, I, 24),
                 _f1(F, I, 25), _i1(I, 5)),
                _f1(F, I, 26), _i1(I, 6))


def _kernel_ready(args) -> None:
    """Compile (or load) the kernel for its one signature, then forbid any other.

    The audio loop must never compile: with compilation disabled, a block of the wrong dtype
    or layout raises TypeError in numba's dispatcher instead of stalling for seconds, and
    :meth:`Chain.process` needs no per-block type checks of its own.
    """
    if not chain_kernel.signatures:
        z = np.zeros((0, 2))
        chain_kernel(z, z.copy(), *args)
    chain_kernel.disable_compile()


def _pack(float_arrays: dict, int_arrays: dict):
    """(F, I, views): the arrays copied into one float and one int buffer, and numpy views of them."""
    sizes = [float_arrays[n].size for n, _ in FLOAT_ARRAYS]
    F = np.zeros(sum(sizes))
    isizes = [int_arrays[n].size for n, _ in INT_ARRAYS]
    I = np.zeros(HEADER + sum(isizes), dtype=np.int64)
    views = {}
    o = 0
    for k, (name, dims) in enumerate(FLOAT_ARRAYS):
        a = float_arrays[name]
        assert a.ndim == dims, name
        I[4 * k] = o
        I[4 * k + 1:4 * k + 1 + a.ndim] = a.shape
        F[o:o + a.size] = a.ravel()
        views[name] = F[o:o + a.size].reshape(a.shape)
        o += a.size
    o = HEADER
    for k, (name, _dims) in enumerate(INT_ARRAYS):
        a = int_arrays[name]
        h = 4 * (len(FLOAT_ARRAYS) + k)
        I[h] = o
        I[h + 1] = a.size
        I[o:o + a.size] = a
        views[name] = I[o:o + a.size]
        o += a.size
    return F, I, views


# ==========================================================================================
# the Python face
# ==========================================================================================
class Chain:
    """The mastering chain for one stereo stream at ``rate``.

    ``process(x, y)`` is the only call the audio loop makes: one numba call, no allocation.
    Parameter changes (``set_values``/``set_flat``/``set_bypass``) land at the next block.
    """

    def __init__(self, rate: int, channels: int = 2, max_block: int = 8192):
        if channels != 2:
            raise ValueError("the mastering chain is stereo: channels must be 2")
        if rate < 8000 or rate > 384000:
            raise ValueError(f"unsupported sample rate {rate}")
        self.rate = int(rate)
        self.channels = 2
        self.max_block = int(max_block)
        lat_geo = limiter.geometry(rate)
        lim = limiter.new_state(rate)
        dry_lim = limiter.new_state(rate)
        self.latency_samples = int(lat_geo[5])
        par = np.zeros((4, schema.COUNT))
        par[0] = schema.to_flat(schema.defaults())
        par[2] = alphas(schema.PARAMS, rate)
        par[3] = [1.0 if p.curve == schema.LOG else 0.0 for p in schema.PARAMS]
        coef = np.zeros((NC, 2 * svf.NCOEF))
        wet_f, wet_i = meter.build_state(rate, 2, true_peak=False)
        floats = {
            "xin": np.zeros((self.max_block, 2)), "pk": np.zeros(SUB), "par": par, "rmp": np.zeros((2, NR)),
            "coef": coef, "eqc": np.zeros((EQ_ROWS, 2 * svf.NCOEF)),
            "eqz": np.zeros((EQ_ROWS, 2, 2)), "z": np.zeros((NZ, 2, 2)), "fs": np.zeros(NF),
            "sc": np.zeros((6, SUB, 2)), "dry": np.zeros((2, self.latency_samples + 1)),
            "phase": lim["phase"], "hist": lim["hist"], "delay": lim["delay"], "dq_val": lim["dq_val"],
            "box1": lim["box1"], "box2": lim["box2"], "lfs": lim["fs"],
            "dcoef": dither.shaping_coefficients(rate), "derr": np.zeros((2, dither.MAX_TAPS)),
            "d_hist": dry_lim["hist"], "d_delay": dry_lim["delay"], "d_dq_val": dry_lim["dq_val"],
            "d_box1": dry_lim["box1"], "d_box2": dry_lim["box2"], "d_lfs": dry_lim["fs"], "w_f": wet_f,
        }
        ints = {"ist": np.zeros(NI, dtype=np.int64), "geo": lim["geo"], "dq_idx": lim["dq_idx"], "lis": lim["is"],
                "d_dq_idx": dry_lim["dq_idx"], "d_lis": dry_lim["is"], "w_i": wet_i}
        self._F, self._I, v = _pack(floats, ints)
        self._par, self._rmp, self._coef, self._z = v["par"], v["rmp"], v["coef"], v["z"]
        self._eqc, self._eqz, self._fs, self._ist = v["eqc"], v["eqz"], v["fs"], v["ist"]
        self._dry, self._derr = v["dry"], v["derr"]
        self._wet = (v["w_f"], v["w_i"])
        self._wet_reset = aot.kernel("meter_reset", meter.meter_reset)
        self._lim = {"geo": v["geo"], "phase": v["phase"], "hist": v["hist"], "delay": v["delay"],
                     "dq_val": v["dq_val"], "dq_idx": v["dq_idx"], "box1": v["box1"], "box2": v["box2"],
                     "fs": v["lfs"], "is": v["lis"]}
        self._lo = np.array([p.min for p in schema.PARAMS])
        self._hi = np.array([p.max for p in schema.PARAMS])
        self._finite = np.zeros(schema.COUNT, dtype=bool)
        self._rng = np.array(RNG_SEEDS, dtype=np.uint64)
        self.input_meter = LoudnessMeter(rate, 2, true_peak=True)
        self.output_meter = LoudnessMeter(rate, 2, true_peak=True)
        self._args = (self._F, self._I, self._rng, self.input_meter.f, self.input_meter.i,
                      self.output_meter.f, self.output_meter.i)
        # the JIT kernel, or its ahead-of-time build in kernel-only commands (dsp.aot says why)
        self._kernel = aot.kernel("chain_kernel", chain_kernel)
        if self._kernel is chain_kernel:
            _kernel_ready(self._args)
        self.reset()

    # -- parameters -------------------------------------------------------------------
    def set_values(self, values) -> None:
        """Apply user values (partial); raises ``schema.SchemaErrors`` for bad ones."""
        ok = schema.validate(values, partial=True)
        for k, v in ok.items():
            self._par[0, schema.INDEX[k]] = schema.BY_ID[k].to_flat(v)
        self._ist[I_CMP_NEW] = 1

    def set_flat(self, arr) -> None:
        """Apply a whole flat parameter array (clamped to the schema's ranges; NaN keeps the old value).

        Allocates nothing for a float64 array of the right shape. The engine's loop calls
        :meth:`load_flat` instead, with an array checked in its control thread.
        """
        a = np.asarray(arr, dtype=np.float64)
        if a.shape != (schema.COUNT,):
            raise ValueError(f"flat parameters must have shape ({schema.COUNT},), got {a.shape}")
        np.isfinite(a, out=self._finite)
        np.copyto(self._par[0], a, where=self._finite)
        np.clip(self._par[0], self._lo, self._hi, out=self._par[0])
        self._ist[I_CMP_NEW] = 1

    def load_flat(self, prepared: np.ndarray) -> None:
        """:meth:`set_flat` for an array already checked off the audio thread: one copy, no checks.

        ``prepared`` must be float64 of shape ``(schema.COUNT,)``, finite and inside the schema's
        ranges (``firmware.engine.prepare_flat`` makes such arrays in the control thread); then
        the result is exactly :meth:`set_flat`'s. Why: the engine applies every parameter set in
        the audio thread, and set_flat's conversion, finiteness mask, masked copy and clip cost
        ~11 us there with cold caches (bench/bench_glide.py) against ~1 us for this copy. Like
        set_flat it runs between kernel calls, so a set is never half-applied.
        """
        np.copyto(self._par[0], prepared)
        self._ist[I_CMP_NEW] = 1

    def flat(self) -> np.ndarray:
        """A copy of the target parameters (flat)."""
        return self._par[0].copy()

    def values(self) -> dict:
        return schema.from_flat(self._par[0])

    def set_bypass(self, on: bool) -> None:
        if on and self._ist[I_SPLIT] != SPLIT_ALL:
            raise ValueError("a split chain cannot be bypassed (its second part has no dry input)")
        self._ist[I_BYPASS] = 1 if on else 0

    def match_compare(self, on: bool) -> None:
        """Compare settings at equal loudness: call with True at every switch between two versions
        of the settings (the box's settings 1 and 2), with False when the settings are edited.

        Why: of two versions, the louder one sounds better; the comparison should be of tone and
        dynamics. While on (and ``ab.level_match`` is), the settings heard are turned down to the
        loudness of the settings heard before the last switch, if they are louder: loudness as the
        output's over the input's, measured by the meters over the 100 ms hops since the settings
        arrived (from 200 ms after, up to the 3 s short-term window). Only down, so the
        limiter's ceiling holds; so the louder of two versions is matched to the quieter one from
        the second switch on (the first switch to the quieter one has nothing to turn down). A
        switch back starts from the gain last used (crossfaded over 30 ms like a bypass); the
        meters correct it once they have heard 200 ms of them, then it glides like the bypass level match.
        Off, the gain glides back to 1 (0 dB) and the reference is forgotten. It is monitoring:
        what is recorded and metered is what is heard, as with the level-matched bypass.
        """
        self._ist[I_CMP] = CMP_SWITCH if on else CMP_OFF

    @property
    def compare_gain_db(self) -> float:
        """The compare match's gain now (dB, <= 0; 0 when no match is on)."""
        return 20.0 * math.log10(max(float(self._rmp[1, R_CMP]), 1e-12))

    def set_split(self, split: int) -> None:
        """Which part of the chain :meth:`process` runs: SPLIT_ALL (default), SPLIT_PRE or SPLIT_POST.

        Why: the output drive acts only on the limiter and what follows it, so an offline drive
        search can run everything before the drive once (SPLIT_PRE: ``y`` receives the signal
        the drive stage would get, the output meter measures it) and then only the rest for each
        drive it tries (SPLIT_POST: ``x`` is that signal). It is the same kernel doing the same
        arithmetic in the same order on the same sub-block grid, so SPLIT_PRE followed by
        SPLIT_POST over the same stream gives exactly the SPLIT_ALL output, sample for sample,
        provided the parameters other than the drive do not change between the two runs, the
        chain is not bypassed (SPLIT_POST has no dry input) and no fault reset happened
        (:attr:`resets` stays 0; the reset would also have cleared the first part's state).
        Level matching does not matter then: it acts only on the bypass crossfade.
        """
        if split not in (SPLIT_ALL, SPLIT_PRE, SPLIT_POST):
            raise ValueError(f"split must be SPLIT_ALL, SPLIT_PRE or SPLIT_POST, got {split!r}")
        if split != SPLIT_ALL and self._ist[I_BYPASS]:
            raise ValueError("a bypassed chain cannot be split (the second part has no dry input)")
        self._ist[I_SPLIT] = split

    @property
    def bypassed(self) -> bool:
        return bool(self._ist[I_BYPASS])

    def set_output_bits(self, bits) -> None:
        """Word length the output is quantised to (16 or 24, dither applies) or None for float."""
        if bits is None:
            self._ist[I_BITS] = 0
        elif bits in (16, 24):
            self._ist[I_BITS] = int(bits)
        else:
            raise ValueError("output bits must be 16, 24 or None (float)")

    # -- running ------------------------------------------------------------------------
    def process(self, x: np.ndarray, y: np.ndarray) -> None:
        """Run one block: x, y float64 C-contiguous (frames, 2), frames <= max_block; y must not alias x.

        Anything else is refused: a wrong shape here, a wrong dtype or memory layout by numba
        (TypeError: the kernel is never recompiled for other array types, see :func:`_kernel_ready`)
        or, with the ahead-of-time kernel, by the check :func:`dsp.aot.kernel` puts in front of it.
        """
        if x.shape[0] > self.max_block or y.shape != x.shape:
            raise ValueError(f"process needs two (frames <= {self.max_block}, 2) arrays of the same shape, "
                             f"got {x.shape} and {y.shape}")
        self._kernel(x, y, *self._args)

    def reset(self) -> None:
        """Silence every state; the next block starts with parameters at their targets (no glide)."""
        self._rmp[:] = 0.0
        self._rmp[:, [R_TRIM, R_POL_L, R_POL_R, R_WIDTH, R_BAL_L, R_BAL_R, R_DRIVE, R_LM, R_CMP]] = 1.0
        self._z[:] = 0.0
        self._eqz[:] = 0.0
        keep_rate = self.rate
        self._fs[:] = 0.0
        self._fs[F_RATE] = keep_rate
        self._fs[F_DC_R] = math.exp(-2.0 * math.pi * 5.0 / keep_rate)
        self._fs[F_LM_A] = 1.0 - math.exp(-SUB / (LEVEL_MATCH_S * keep_rate))
        self._fs[F_STEP_FADE] = SUB / (FADE_S * keep_rate)
        self._fs[F_STEP_BYP] = SUB / (BYPASS_FADE_S * keep_rate)
        self._fs[F_DES_HPF:F_GR] = -1.0
        self._fs[F_SRC_TRIM:F_CMP_G] = np.nan   # every derived setting computed afresh at the first sub-block
        self._fs[F_CMP_G:F_CMP_END] = 0.0
        self._fs[F_CMP_C2:F_CMP_END] = 1.0
        self._fs[F_GR:F_GR + 3] = 0.0
        self._fs[F_CG0:F_CG0 + 3] = 1.0
        self._fs[F_CG1:F_CG1 + 3] = 1.0
        bypass, bits, split = self._ist[I_BYPASS], self._ist[I_BITS], self._ist[I_SPLIT]
        self._ist[:] = 0
        self._ist[I_FRESH] = 1
        self._ist[I_ON_GRID_RUN] = dither.BLANK_AFTER    # before the stream there was silence: a
        # file's leading digital silence is written as zeros from its first sample
        self._ist[I_BYPASS] = bypass
        self._ist[I_BITS] = bits
        self._ist[I_SPLIT] = split
        self._rmp[:, R_BYPASS] = float(bypass)
        self._dry[:] = 0.0
        self._derr[:] = 0.0
        self._rng[:] = RNG_SEEDS
        limiter.reset(self._lim)
        self.input_meter.reset()
        self.output_meter.reset()
        self._wet_reset(*self._wet)

    # -- readings -----------------------------------------------------------------------
    def gain_reduction_db(self) -> dict:
        """Largest reduction per band and of the limiter since the previous call (positive dB)."""
        fs = self._fs
        lfs = self._lim["fs"]
        out = {band: float(fs[F_GR + b]) for b, band in enumerate(schema.MB_BANDS)}
        out["limiter"] = float(-20.0 * math.log10(max(lfs[4], 1e-12)))
        fs[F_GR:F_GR + 3] = 0.0
        lfs[4] = 1.0
        return out

    @property
    def faults(self) -> int:
        """Input samples replaced by silence because they were NaN, Inf or absurdly large."""
        return int(self._ist[I_FAULTS])

    @property
    def resets(self) -> int:
        """Times since :meth:`reset` the kernel silenced a chunk and cleared every state (never, sanely)."""
        return int(self._ist[I_RESETS])


def warm() -> None:
    """Compile (or load) the kernel: one short block through a default chain."""
    c = Chain(48000, max_block=64)
    x = np.zeros((64, 2))
    y = np.zeros((64, 2))
    c.process(x, y)
