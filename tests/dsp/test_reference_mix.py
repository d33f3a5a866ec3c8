"""The reference track's crossfade kernel against a plain numpy model of what it promises."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from dsp import reference_mix
from dsp.reference_mix import S_FADE, S_GAIN, S_POS, mix, new_state

RATE = 48000
FADE = 2400.0           # 50 ms


def _model(master, ref, gain, switches, fade=FADE):
    """Per sample: the fade position moves by 1/fade toward the switch's side; the reference
    advances only while heard and wraps; the gain is constant (set while not heard)."""
    y = master.copy()
    f, pos = 0.0, 0
    for i in range(len(master)):
        on = switches[i]
        f = min(1.0, max(0.0, f + (1.0 / fade if on else -1.0 / fade)))
        if f <= 0.0:
            continue
        w = 1.0 if f >= 1.0 else 0.5 - 0.5 * np.cos(np.pi * f)
        r = ref[pos].astype(np.float64) * gain
        y[i] = master[i] + w * (r - master[i])
        pos = (pos + 1) % len(ref)
    return y, pos


def _run(master, ref, gain, switches, cuts):
    y = master.copy()
    st = new_state()
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        mix(y[a:b], ref, st, bool(switches[a]), gain, FADE, 0.5)
    return y, st


def test_switching_on_and_off_follows_the_raised_cosine_and_the_reference_wraps():
    rng = np.random.default_rng(1)
    n = 24000
    master = 0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / RATE)[:, None] * np.array([[1.0, 0.7]])
    ref = (0.5 * rng.standard_normal((7000, 2))).astype(np.float32)       # shorter than the run: it wraps
    switches = np.zeros(n, dtype=bool)
    switches[1280:15360] = True                                              # on at a block edge, off later
    cuts = list(range(0, n + 1, 128))
    y, st = _run(master, ref, 0.5, switches, cuts)
    want, pos = _model(master, ref, 0.5, switches)
    np.testing.assert_allclose(y, want, rtol=0, atol=1e-12)
    assert np.array_equal(y[:1280], master[:1280])                          # untouched before
    assert np.array_equal(y[1280 + 2400:15360], want[1280 + 2400:15360])
    full = y[1280 + 2400:15360]
    k = np.arange(2400, 15360 - 1280) % len(ref)
    np.testing.assert_allclose(full, ref[k].astype(np.float64) * 0.5, rtol=0, atol=1e-15)   # the reference alone
    assert np.array_equal(y[15360 + 2400:], master[15360 + 2400:])          # and the master alone again
    # heard for the 14080 samples switched on and the fade-out's ~2400: it wrapped twice and stands there
    assert st[S_FADE] == 0.0 and st[S_POS] == pos and abs(pos - (15360 - 1280 + 2400) % len(ref)) <= 1


def test_output_does_not_depend_on_how_the_stream_is_cut():
    rng = np.random.default_rng(2)
    n = 20000
    master = rng.uniform(-0.5, 0.5, (n, 2))
    ref = rng.uniform(-0.5, 0.5, (5000, 2)).astype(np.float32)
    switches = np.zeros(n, dtype=bool)
    whole, _ = _run(master, ref, 1.3, switches | True, [0, n])
    cuts = sorted({0, n, *rng.integers(1, n, 300).tolist()})
    parts, _ = _run(master, ref, 1.3, switches | True, cuts)
    assert np.array_equal(whole, parts)


def test_a_switch_never_clicks():
    """Master and reference both quiet sines of different pitch: no sample-to-sample step across the
    fades is larger than the steepest step of either signal alone."""
    n = 12000
    t = np.arange(n) / RATE
    master = np.stack([0.5 * np.sin(2 * np.pi * 100 * t)] * 2, axis=1)
    ref = np.stack([0.5 * np.cos(2 * np.pi * 150 * t)] * 2, axis=1).astype(np.float32)   # starts at its peak
    switches = np.zeros(n, dtype=bool)
    switches[3000:8000] = True
    y, _ = _run(master, ref, 1.0, switches, list(range(0, n + 1, 64)))
    steepest = max(np.abs(np.diff(master, axis=0)).max(), np.abs(np.diff(ref.astype(float), axis=0)).max())
    assert np.abs(np.diff(y, axis=0)).max() <= steepest * 1.01


def test_a_new_gain_glides_while_heard_and_jumps_while_silent():
    ref = np.ones((1000, 2), dtype=np.float32)
    st = new_state()
    y = np.zeros((4000, 2))
    mix(y, ref, st, True, 0.5, 10.0, 0.01)                 # faded in; gain 0.5 taken at once (not heard before)
    assert y[-1, 0] == pytest.approx(0.5, abs=1e-12)
    y = np.zeros((2000, 2))
    mix(y, ref, st, True, 0.25, 10.0, 0.01)                 # heard: a one-pole glide, no step
    steps = np.abs(np.diff(np.concatenate([[0.5], y[:, 0]])))
    assert steps.max() <= 0.25 * 0.01 + 1e-12 and y[-1, 0] == pytest.approx(0.25, abs=1e-6)
    assert st[S_GAIN] == pytest.approx(0.25, abs=1e-6)


def test_warm_loads_the_signature_the_engine_calls(tmp_path):
    """The engine plays a read-only array over a mapped file (firmware.reference.open_prepared); numba
    types that apart from a writable one, so warming must cover it or the loop's first call compiles."""
    from firmware.reference import open_prepared, prepare

    assert reference_mix.warm() is mix
    known = len(mix.signatures)
    sf.write(str(tmp_path / "r.wav"), np.zeros((RATE, 2)), RATE, subtype="FLOAT")
    prepare(tmp_path / "r.wav", tmp_path / "r.f32", RATE)
    ref, _ = open_prepared(tmp_path / "r.f32", RATE)
    assert not ref.flags.writeable
    mix(np.zeros((128, 2)), ref, new_state(), True, 0.5, FADE, 0.01)
    assert len(mix.signatures) == known
