"""Filter responses of the chain against scipy.signal, which designs them independently.

RBJ cookbook forms are the bilinear transform (prewarped at f0) of simple analog prototypes,
so scipy's ``bilinear`` of those prototypes is an independent oracle; the subsonic high-pass
must equal scipy's Butterworth designs; the LR4 crossover must sum flat within 0.01 dB.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal

from dsp import crossover, eq_design, rbj, schema, svf
from dsp.chain import Chain
from tests.signals import run_chain

RATE = 48000


def _coef(kind, f, g, q, rate=RATE):
    c = np.zeros((1, 5))
    rbj.design(c, 0, kind, f, g, q, rate)
    b = c[0, :3]
    a = np.array([1.0, c[0, 3], c[0, 4]])
    return b, a


def _analog(kind, g, q):
    """RBJ analog prototypes, normalised to w0 = 1."""
    A = 10 ** (g / 40)
    if kind == rbj.BELL:
        return [1, A / q, 1], [1, 1 / (A * q), 1]
    if kind == rbj.LOW_SHELF:
        # A (s^2 + sqrt(A)/Q s + A) / (A s^2 + sqrt(A)/Q s + 1)
        return [A, A * math.sqrt(A) / q, A * A], [A, math.sqrt(A) / q, 1]
    if kind == rbj.HIGH_SHELF:
        # A (A s^2 + sqrt(A)/Q s + 1) / (s^2 + sqrt(A)/Q s + A)
        return [A * A, A * math.sqrt(A) / q, A], [1, math.sqrt(A) / q, A]
    if kind == rbj.LOW_CUT:
        return [1, 0, 0], [1, 1 / q, 1]
    if kind == rbj.HIGH_CUT:
        return [0, 0, 1], [1, 1 / q, 1]
    if kind == rbj.ALLPASS:
        return [1, -1 / q, 1], [1, 1 / q, 1]
    raise AssertionError(kind)


def _oracle(kind, f, g, q, rate=RATE):
    b, a = _analog(kind, g, q)
    w0 = 2 * rate * math.tan(math.pi * f / rate)      # prewarp so f0 lands exactly
    bs = np.array(b, float) / np.array([w0 ** 2, w0, 1.0])
    as_ = np.array(a, float) / np.array([w0 ** 2, w0, 1.0])
    return signal.bilinear(bs, as_, fs=rate)


CASES = [
    (rbj.BELL, 1000.0, 6.0, 1.0), (rbj.BELL, 80.0, -9.0, 3.0), (rbj.BELL, 12000.0, 3.0, 0.5),
    (rbj.LOW_SHELF, 100.0, 4.0, 0.707), (rbj.LOW_SHELF, 300.0, -6.0, 1.2),
    (rbj.HIGH_SHELF, 8000.0, 3.0, 0.707), (rbj.HIGH_SHELF, 3000.0, -8.0, 0.5),
    (rbj.LOW_CUT, 60.0, 0.0, 0.707), (rbj.LOW_CUT, 200.0, 0.0, 2.0),
    (rbj.HIGH_CUT, 15000.0, 0.0, 0.707), (rbj.HIGH_CUT, 2000.0, 0.0, 0.5),
    (rbj.ALLPASS, 500.0, 0.0, 0.707),
]


@pytest.mark.parametrize("kind,f,g,q", CASES)
def test_rbj_matches_bilinear_of_analog_prototype(kind, f, g, q):
    b, a = _coef(kind, f, g, q)
    bo, ao = _oracle(kind, f, g, q)
    w = np.geomspace(10, 23000, 400)
    _, h = signal.freqz(b, a, worN=w, fs=RATE)
    _, ho = signal.freqz(bo, ao, worN=w, fs=RATE)
    assert np.max(np.abs(20 * np.log10(np.abs(h) / np.abs(ho)))) < 1e-6
    assert np.max(np.abs(np.angle(h / ho))) < 1e-6


def test_characteristic_points():
    w = [1000.0]
    _, h = signal.freqz(*_coef(rbj.BELL, 1000.0, 6.0, 1.0), worN=w, fs=RATE)
    assert 20 * np.log10(abs(h[0])) == pytest.approx(6.0, abs=1e-9)
    _, h = signal.freqz(*_coef(rbj.LOW_CUT, 1000.0, 0.0, 1 / math.sqrt(2)), worN=w, fs=RATE)
    assert 20 * np.log10(abs(h[0])) == pytest.approx(-3.0103, abs=1e-3)
    # tilt: -g/2 at the bottom, +g/2 at the top, pivot at f0 (0 dB half way in log-gain)
    b, a = _coef(rbj.TILT, 1000.0, 6.0, 0.707)
    _, h = signal.freqz(b, a, worN=[5.0, 23900.0], fs=RATE)
    db = 20 * np.log10(np.abs(h))
    assert db[0] == pytest.approx(-3.0, abs=0.02) and db[1] == pytest.approx(3.0, abs=0.05)
    # tilt = high shelf lowered by g/2
    bs, as_ = _coef(rbj.HIGH_SHELF, 1000.0, 6.0, 0.707)
    assert np.allclose(b, bs * 10 ** (-3 / 20)) and np.allclose(a, as_)


@pytest.mark.parametrize("slope,order", [("12", 2), ("24", 4)])
def test_subsonic_highpass_is_butterworth(slope, order):
    """The chain's subsonic filter, measured from its impulse response, equals scipy's Butterworth."""
    c = Chain(RATE, max_block=(1 << 16) + 256)
    c.set_values({"in.hpf_slope": slope, "in.hpf_freq": 30.0, "lim.ceiling_dbtp": 0.0})
    ir = _impulse_response(c, 1 << 15, amp=0.25)
    sos = signal.butter(order, 30.0, "highpass", fs=RATE, output="sos")
    ref = signal.sosfilt(sos, _impulse(1 << 15, 0.25)[:, 0])
    assert np.max(np.abs(ir[:, 0] - ref)) < 1e-9
    assert np.max(np.abs(ir[:, 1] - ref)) < 1e-9


def _settle_after_moving(chain, change, seconds=2.0):
    """Silence while ``change`` glides in: a 50 ms one-pole in octaves, which snaps to the target
    when within 1e-9 of it, about 1.1 s after a move of two octaves (``smoothing.advance``)."""
    x = np.zeros((RATE // 4, 2))
    y = np.zeros_like(x)
    chain.process(x, y)
    chain.set_values(change)
    for _ in range(int(seconds * 4)):
        chain.process(x, y)


@pytest.mark.parametrize("slope,order", [("12", 2), ("24", 4)])
def test_subsonic_highpass_is_butterworth_after_its_frequency_glided(slope, order):
    """The subsonic filter's coefficients glide sample by sample when its frequency moves; once
    the move is over they are the design for the new frequency exactly: scipy's Butterworth."""
    c = Chain(RATE, max_block=(1 << 15) + 256)
    c.set_values({"in.hpf_slope": slope, "in.hpf_freq": 12.0, "lim.ceiling_dbtp": 0.0})
    _settle_after_moving(c, {"in.hpf_freq": 33.0})
    ir = _impulse_response(c, 1 << 15, amp=0.25)
    ref = signal.sosfilt(signal.butter(order, 33.0, "highpass", fs=RATE, output="sos"), _impulse(1 << 15, 0.25)[:, 0])
    assert np.max(np.abs(ir[:, 0] - ref)) < 1e-9 and np.max(np.abs(ir[:, 1] - ref)) < 1e-9


def test_multiband_at_unity_is_the_two_allpasses_after_the_splits_glided():
    """Both split frequencies moved (the sets glide): once there, the chain at unity is exactly the
    all-passes of the new splits (so the bands sum flat, within 0.01 dB, 20 Hz - 20 kHz)."""
    c = Chain(RATE, max_block=(1 << 16) + 256)
    vals = {"mb.on": True, "mb.mix": 50.0, "lim.ceiling_dbtp": 0.0, "mb.xover_low": 300.0, "mb.xover_high": 2000.0}
    for b in schema.MB_BANDS:
        vals |= {f"mb.{b}.ratio": 1.0, f"mb.{b}.makeup_db": 0.0}
    c.set_values(vals)
    _settle_after_moving(c, {"mb.xover_low": 90.0, "mb.xover_high": 7000.0})
    n = 1 << 16
    ir = _impulse_response(c, n, amp=0.25)[:, 0] / 0.25
    b1, a1 = _oracle(rbj.ALLPASS, 90.0, 0.0, 1 / math.sqrt(2))
    b2, a2 = _oracle(rbj.ALLPASS, 7000.0, 0.0, 1 / math.sqrt(2))
    want = signal.lfilter(b2, a2, signal.lfilter(b1, a1, _impulse(n, 1.0)[:, 0]))
    assert np.max(np.abs(ir - want)) < 1e-9
    f = np.fft.rfftfreq(n, 1 / RATE)
    band = (f >= 20) & (f <= 20000)
    assert np.max(np.abs(20 * np.log10(np.abs(np.fft.rfft(ir)))[band])) < 0.01


def test_mono_bass_is_lr4_on_the_side_and_its_allpass_on_the_mid_after_a_glide():
    """Mono bass after its frequency moved: the side through scipy's LR4 high-pass (Butterworth
    squared), the mid through the matching all-pass, so mid and side stay in phase above it."""
    c = Chain(RATE, max_block=(1 << 15) + 256)
    c.set_values({"st.mono_bass": True, "st.mono_freq": 60.0, "lim.ceiling_dbtp": 0.0})
    _settle_after_moving(c, {"st.mono_freq": 170.0})
    n = 1 << 15
    x = np.zeros((n, 2))
    x[0, 0] = 0.25                      # mid = side = 0.125 impulse
    ir = _impulse_response(c, n, x=x)
    d = _impulse(n, 0.125)[:, 0]
    hp = signal.butter(2, 170.0, "highpass", fs=RATE, output="sos")
    side = signal.sosfilt(np.vstack([hp, hp]), d)
    mid = signal.lfilter(*_oracle(rbj.ALLPASS, 170.0, 0.0, 1 / math.sqrt(2)), d)
    assert np.max(np.abs(ir[:, 0] - (mid + side))) < 1e-9
    assert np.max(np.abs(ir[:, 1] - (mid - side))) < 1e-9


def _impulse(n, amp):
    x = np.zeros((n, 2))
    x[0] = amp
    return x


def _impulse_response(chain, n, amp=0.25, x=None):
    """Output of ``chain`` for ``x`` (default: an impulse), latency removed, one block."""
    x = _impulse(n, amp) if x is None else x
    xx = np.ascontiguousarray(np.vstack([x, np.zeros((chain.latency_samples, 2))]))
    y = np.zeros_like(xx)
    chain.process(xx, y)
    return y[chain.latency_samples:]


@pytest.mark.parametrize("place", ["stereo", "mid", "side"])
def test_eq_band_placement(place):
    """A bell on mid (or side) only: L/R outputs equal the M/S recombination of scipy's filter."""
    c = Chain(RATE, max_block=1 << 14)
    c.set_values({"eq3.on": True, "eq3.type": "bell", "eq3.freq": 800.0, "eq3.gain_db": 9.0, "eq3.q": 1.5,
                  "eq3.place": place, "lim.ceiling_dbtp": 0.0})
    n = 1 << 13
    x = np.zeros((n, 2))
    x[0, 0] = 0.25                      # impulse on the left only
    ir = _impulse_response(c, n, x=x)
    b, a = _coef(rbj.BELL, 800.0, 9.0, 1.5)
    d = np.zeros(n)
    d[0] = 0.25
    h = signal.lfilter(b, a, d)
    mid, side = 0.5 * d, 0.5 * d
    if place == "stereo":
        want_l, want_r = h, np.zeros(n)
    elif place == "mid":
        want_l, want_r = 0.5 * h + side, 0.5 * h - side
    else:
        want_l, want_r = mid + 0.5 * h, mid - 0.5 * h
    assert np.max(np.abs(ir[:, 0] - want_l)) < 1e-9
    assert np.max(np.abs(ir[:, 1] - want_r)) < 1e-9


# -- the EQ curve the Chain page draws (dsp.eq_design, numpy, no numba) -------------------------
@pytest.mark.parametrize("rate", [44100, 96000])
@pytest.mark.parametrize("kind,f,g,q", CASES + [(rbj.TILT, 1000.0, 6.0, 0.707), (rbj.TILT, 250.0, -5.0, 1.0)])
def test_band_response_is_the_bilinear_of_the_analog_prototype(kind, f, g, q, rate):
    if kind == rbj.TILT:            # the high shelf lowered by half its gain
        bo, ao = _oracle(rbj.HIGH_SHELF, f, g, q, rate)
        bo = bo * 10 ** (-g / 40)
    else:
        bo, ao = _oracle(kind, f, g, q, rate)
    w = np.geomspace(10, 0.49 * rate, 400)
    _, ho = signal.freqz(bo, ao, worN=w, fs=rate)
    h = eq_design.band_response(kind, f, g, q, rate, w)
    assert np.max(np.abs(20 * np.log10(np.abs(h) / np.abs(ho)))) < 1e-6
    assert np.max(np.abs(np.angle(h / ho))) < 1e-6


@pytest.mark.parametrize("rate", [44100, 96000])
@pytest.mark.parametrize("tone,pivot", [(4.0, 1000.0), (-6.0, 300.0), (2.5, 5000.0)])
def test_tone_is_a_tilt_around_its_pivot(tone, pivot, rate):
    """The tone control: scipy's high shelf of twice the gain at Q 0.5, lowered by ``tone``;
    the bass at -tone, the treble at +tone, the pivot untouched."""
    c = Chain(rate, max_block=(1 << 15) + 256)
    c.set_values({"eq.tone_db": tone, "eq.tone_freq": pivot, "lim.ceiling_dbtp": 0.0})
    ir = _impulse_response(c, 1 << 15, amp=0.05)
    bo, ao = _oracle(rbj.HIGH_SHELF, pivot, 2.0 * tone, 0.5, rate)
    ref = signal.lfilter(bo * 10 ** (-tone / 20), ao, _impulse(1 << 15, 0.05)[:, 0])
    assert np.max(np.abs(ir[:, 0] - ref)) < 1e-9 and np.max(np.abs(ir[:, 1] - ref)) < 1e-9
    db = 20 * np.log10(np.abs(_dft(ir[:, 0] / 0.05, np.array([pivot / 200, pivot, min(pivot * 200, 0.45 * rate)]),
                                   rate)))
    assert db[0] == pytest.approx(-tone, abs=0.01) and db[1] == pytest.approx(0.0, abs=1e-6)
    assert db[2] == pytest.approx(tone, abs=0.05 if pivot * 200 < 0.45 * rate else 0.3)


def test_tone_back_at_zero_is_a_wire_again():
    """Turned and turned back to 0 dB, the tone leaves the signal bit for bit as it found it."""
    t = np.arange(2 * RATE) / RATE
    mono = 0.25 * np.sin(2 * np.pi * 440.0 * t) + 0.1 * np.sin(2 * np.pi * 7000.0 * t)   # the limiter stays idle
    x = np.ascontiguousarray(np.stack([mono, mono], axis=1))
    c = Chain(RATE)
    c.set_values({"eq.tone_db": 3.0, "lim.ceiling_dbtp": 0.0})
    turn = RATE // 2
    a = run_chain(c, x[:turn], 512)
    c.set_values({"eq.tone_db": 0.0})
    b = run_chain(c, x[turn:], 512)
    lat = c.latency_samples
    assert np.max(np.abs(a[turn // 2:] - x[turn // 2 - lat:turn - lat])) > 0.02    # it did tilt
    settled = RATE                  # 1 s after the turn back: the 30 ms glide has long snapped to 0
    assert np.max(np.abs(b[settled:] - x[turn + settled - lat:len(x) - lat])) == 0.0


def _dft(ir, freqs, rate):
    """The response of impulse response ``ir`` at arbitrary ``freqs`` (a direct DFT, in chunks)."""
    n = np.arange(len(ir))
    out = [np.exp(-2j * np.pi * np.outer(chunk, n) / rate) @ ir for chunk in np.array_split(freqs, 12)]
    return np.concatenate(out)


@pytest.mark.parametrize("rate", [44100, 96000])
def test_eq_curve_is_what_the_chain_does(rate):
    """The curve the web UI draws equals the chain's measured response, on mid and on side."""
    values = schema.defaults() | {"lim.ceiling_dbtp": 0.0, "eq.tone_db": 1.5, "eq.tone_freq": 700.0}
    bands = [("low_cut", 25.0, 0.0, 0.9, "stereo"), ("low_shelf", 90.0, 3.0, 0.707, "mid"),
             ("bell", 400.0, -4.5, 2.0, "stereo"), ("tilt", 2000.0, -2.0, 0.707, "side"),
             ("high_shelf", 11000.0, 2.5, 0.707, "stereo"), ("high_cut", 19000.0, 0.0, 0.707, "side")]
    for n, (typ, f, g, q, place) in enumerate(bands, 1):
        values |= {f"eq{n}.on": True, f"eq{n}.type": typ, f"eq{n}.freq": f, f"eq{n}.gain_db": g,
                   f"eq{n}.q": q, f"eq{n}.place": place}
    freqs = eq_design.log_frequencies()
    curve = eq_design.eq_response(values, rate, freqs)
    n = 1 << 15
    for sign, key in ((1.0, "mid_db"), (-1.0, "side_db")):
        c = Chain(rate, max_block=n + 256)
        c.set_values(values)
        x = np.zeros((n, 2))
        x[0] = 0.05, 0.05 * sign        # an impulse on mid (L = R) or on side (L = -R)
        ir = _impulse_response(c, n, x=x)[:, 0] / 0.05
        measured = 20 * np.log10(np.abs(_dft(ir, curve["freqs"], rate)))
        assert np.max(np.abs(measured - curve[key])) < 1e-3, key
    assert not np.allclose(curve["mid_db"], curve["side_db"])
    # the bell's own point: -4.5 dB at 400 Hz on top of the other bands' (small) gains there
    lone = eq_design.eq_response(values | {"eq3.on": False}, rate, [400.0])
    both = eq_design.eq_response(values, rate, [400.0])
    assert both["mid_db"][0] - lone["mid_db"][0] == pytest.approx(-4.5, abs=1e-9)


@pytest.mark.parametrize("rate", [44100, 48000, 96000])
@pytest.mark.parametrize("f_lo,f_hi", [(40.0, 1000.0), (200.0, 3000.0), (800.0, 16000.0)])
def test_crossover_sums_flat(rate, f_lo, f_hi):
    n = 1 << 16
    c = np.zeros((crossover.SETS, 2 * svf.NCOEF))
    z = np.zeros((crossover.SECTIONS, 2, 2))
    crossover.design(c, 0, f_lo, f_hi, rate, True)
    s = np.zeros((n, 2))
    s[0] = 1.0
    lo, mid, hi, dry = (np.zeros((n, 2)) for _ in range(4))
    crossover.split(s, lo, mid, hi, dry, n, c, 0, z, 0, 0, 64)
    total = (lo + mid + hi)[:, 0]
    f = np.fft.rfftfreq(n, 1 / rate)
    band = (f >= 20) & (f <= 20000)
    mag = 20 * np.log10(np.abs(np.fft.rfft(total)))[band]
    assert np.max(np.abs(mag)) < 0.01
    # the sum is the two all-passes: exactly the dry path, so the parallel mix cannot comb
    assert np.max(np.abs(total - dry[:, 0])) < 1e-9
    # each band against scipy: LR4 = Butterworth squared; the low band also through AP(f_hi)
    imp = np.zeros(n)
    imp[0] = 1.0
    lp = signal.butter(2, f_lo, "lowpass", fs=rate, output="sos")
    bo, ao = _oracle(rbj.ALLPASS, f_hi, 0.0, 1 / math.sqrt(2), rate)
    want_lo = signal.lfilter(bo, ao, signal.sosfilt(np.vstack([lp, lp]), imp))
    assert np.max(np.abs(lo[:, 0] - want_lo)) < 1e-9
    hp_lo = signal.butter(2, f_lo, "highpass", fs=rate, output="sos")
    hp_hi = signal.butter(2, f_hi, "highpass", fs=rate, output="sos")
    want_hi = signal.sosfilt(np.vstack([hp_lo, hp_lo, hp_hi, hp_hi]), imp)
    assert np.max(np.abs(hi[:, 0] - want_hi)) < 1e-9
    lp_hi = signal.butter(2, f_hi, "lowpass", fs=rate, output="sos")
    want_mid = signal.sosfilt(np.vstack([hp_lo, hp_lo, lp_hi, lp_hi]), imp)
    assert np.max(np.abs(mid[:, 0] - want_mid)) < 1e-9


def test_multiband_at_unity_is_flat_through_the_chain():
    """Multiband on, every band at ratio 1 and 0 dB makeup, 50 % mix: the chain stays flat."""
    c = Chain(RATE, max_block=(1 << 16) + 256)
    vals = {"mb.on": True, "mb.mix": 50.0, "lim.ceiling_dbtp": 0.0}
    for b in ("low", "mid", "high"):
        vals |= {f"mb.{b}.ratio": 1.0, f"mb.{b}.makeup_db": 0.0}
    c.set_values(vals)
    ir = _impulse_response(c, 1 << 16, amp=0.25)
    f = np.fft.rfftfreq(1 << 16, 1 / RATE)
    band = (f >= 20) & (f <= 20000)
    mag = 20 * np.log10(np.abs(np.fft.rfft(ir[:, 0] / 0.25)))[band]
    assert np.max(np.abs(mag)) < 0.01


def _tone_gain(chain, f, seconds_before, change, seconds_after, amp=0.1):
    """The chain's gain (dB) at ``f`` over the last 0.5 s, after ``change`` was set alone
    ``seconds_before`` into a steady tone (least-squares fit of the tone, both channels)."""
    n0, n1 = int(seconds_before * RATE), int(seconds_after * RATE)
    t = np.arange(n0 + n1) / RATE
    x = np.repeat((amp * np.sin(2 * np.pi * f * t))[:, None], 2, axis=1)
    y = np.zeros_like(x)
    for i in range(0, n0, 128):                 # the box's 128-frame periods
        chain.process(x[i:i + 128], y[i:i + 128])
    if change:
        chain.set_values(change)
    for i in range(n0, n0 + n1, 128):
        chain.process(x[i:i + 128], y[i:i + 128])
    tail, tt = y[-RATE // 2:], t[-RATE // 2:]
    basis = np.stack([np.sin(2 * np.pi * f * tt), np.cos(2 * np.pi * f * tt)], axis=1)
    gains = [np.hypot(*np.linalg.lstsq(basis, tail[:, ch], rcond=None)[0]) / amp for ch in range(2)]
    return [20 * np.log10(g) for g in gains]


def _butter_gain_db(order, fc, f):
    sos = signal.butter(order, fc, "highpass", fs=RATE, output="sos")
    return 20 * np.log10(abs(signal.sosfreqz(sos, [f], fs=RATE)[1][0]))


def _rbj_gain_db(kind, fc, g, q, f):
    b, a = _oracle(kind, fc, g, q)
    return 20 * np.log10(abs(signal.freqz(b, a, [f], fs=RATE)[1][0]))


@pytest.mark.parametrize("before,change,f,oracle_db", [
    ({"eq1.on": True, "eq1.type": "bell", "eq1.freq": 1000.0, "eq1.gain_db": 6.0, "eq1.q": 1.0},
     {"eq1.type": "high_shelf"}, 1000.0, lambda: _rbj_gain_db(rbj.HIGH_SHELF, 1000.0, 6.0, 1.0, 1000.0)),
    ({"eq2.on": True, "eq2.type": "low_cut", "eq2.freq": 200.0, "eq2.q": 0.707},
     {"eq2.type": "high_cut"}, 1000.0, lambda: _rbj_gain_db(rbj.HIGH_CUT, 200.0, 0.0, 0.707, 1000.0)),
    ({"eq4.on": True, "eq4.type": "bell", "eq4.freq": 1000.0, "eq4.gain_db": 6.0, "eq4.q": 1.0, "eq4.place": "side"},
     {"eq4.place": "stereo"}, 1000.0, lambda: 6.0),
    ({"in.hpf_slope": "12", "in.hpf_freq": 40.0}, {"in.hpf_slope": "24"}, 30.0, lambda: _butter_gain_db(4, 40.0, 30.0)),
    ({"in.hpf_freq": 40.0}, {"in.hpf_slope": "12"}, 20.0, lambda: _butter_gain_db(2, 40.0, 20.0)),
    ({"in.hpf_freq": 40.0}, {"in.hpf_slope": "24"}, 20.0, lambda: _butter_gain_db(4, 40.0, 20.0)),
])
def test_a_lone_switch_of_type_placement_or_slope_fades_the_filter_back_in(before, change, f, oracle_db):
    """A band's type or placement, or the subsonic filter's slope, changed on its own (one click on
    the web page, the only change in flight) while audio runs: the filter fades out, switches and
    fades back in within a second, to the response of the new filter (scipy's Butterworth, the
    bilinear transform of the RBJ analog prototype). Until 2026-11-24 it faded out and stayed out
    (0 dB) until another parameter moved."""
    c = Chain(RATE, max_block=128)
    c.set_values({**before, "lim.ceiling_dbtp": 0.0})
    got = _tone_gain(c, f, 1.0, change, 1.5)
    assert got == pytest.approx([oracle_db()] * 2, abs=0.02), (change, got, oracle_db())
