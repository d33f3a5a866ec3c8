"""The listening modes' kernel against a plain numpy model of what each mode is."""

from __future__ import annotations

import numpy as np
import pytest

from dsp import monitor
from dsp.monitor import MODES, S_T, listen, new_state

RATE = 48000
FADE = 960.0            # 20 ms


def _music(n, seed=1):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / RATE
    left = 0.4 * np.sin(2 * np.pi * 220 * t) + 0.1 * rng.standard_normal(n)
    right = 0.4 * np.sin(2 * np.pi * 220 * t + 0.7) + 0.1 * rng.standard_normal(n)
    return np.stack([left, right], axis=1)


def _cuts(n, step):
    return [*range(0, n, step), n]


def _run(x, modes_at, cuts, fade=FADE, gains_at=None):
    """Run ``x`` cut at ``cuts``; ``modes_at``/``gains_at``: {first sample: mode / linear gain}, each
    taking effect at a cut."""
    y = x.copy()
    st = new_state()
    mode, gain = "stereo", 1.0
    assert cuts[0] == 0 and cuts[-1] == len(x)
    busy = []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        mode = modes_at.get(a, mode)
        gain = (gains_at or {}).get(a, gain)
        busy.append(listen(y[a:b], st, MODES.index(mode), fade, gain))
    return y, st, busy


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_once_settled_is_its_matrix(mode):
    x = _music(8000)
    y, _, busy = _run(x, {0: mode}, _cuts(8000, 128))
    left, right = x[:, 0], x[:, 1]
    want = {"stereo": (left, right), "mono": ((left + right) / 2,) * 2, "side": ((left - right) / 2,) * 2,
            "left": (left, left), "right": (right, right)}[mode]
    settled = slice(int(FADE), None)
    np.testing.assert_allclose(y[settled, 0], want[0][settled], rtol=0, atol=1e-15)
    np.testing.assert_allclose(y[settled, 1], want[1][settled], rtol=0, atol=1e-15)
    # the caller may skip the kernel only when nothing is left to do: stereo, settled
    assert busy[-1] is (mode != "stereo")


def test_stereo_leaves_the_samples_untouched_bit_for_bit():
    x = _music(4000)
    y, _, busy = _run(x, {}, [0, 1000, 4000])
    assert np.array_equal(y, x) and busy == [False, False]
    # and back from mono: after the fade the master again, exactly
    y, _, busy = _run(x, {0: "mono", 1024: "stereo"}, _cuts(4000, 64))
    assert np.array_equal(y[1024 + int(FADE):], x[1024 + int(FADE):]) and busy[-1] is False


def test_a_switch_follows_a_raised_cosine_of_each_coefficient():
    x = _music(3000)
    y, _, _ = _run(x, {0: "side"}, [0, 3000])
    t = np.minimum(np.arange(1, 3001) / FADE, 1.0)
    w = np.where(t >= 1.0, 1.0, 0.5 - 0.5 * np.cos(np.pi * t))
    ll = 1.0 + w * (0.5 - 1.0)
    lr = w * -0.5
    rl = w * 0.5
    rr = 1.0 + w * (-0.5 - 1.0)
    # (the kernel steps its fade position by 1/fade per sample: rounding differs from n/fade by ~1e-15)
    np.testing.assert_allclose(y[:, 0], ll * x[:, 0] + lr * x[:, 1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(y[:, 1], rl * x[:, 0] + rr * x[:, 1], rtol=0, atol=1e-12)


def test_a_switch_during_a_switch_starts_from_where_the_matrix_stands():
    """Mono asked, then left 5 ms later (mid-fade), then right: no step anywhere, and the end is right."""
    n = 6000
    t = np.arange(n) / RATE
    x = np.stack([0.5 * np.sin(2 * np.pi * 100 * t), 0.5 * np.cos(2 * np.pi * 130 * t)], axis=1)
    y, st, _ = _run(x, {0: "mono", 240: "left", 480: "right"}, _cuts(n, 16))
    steepest = np.abs(np.diff(x, axis=0)).max()
    assert np.abs(np.diff(y, axis=0)).max() <= steepest * 1.01
    np.testing.assert_allclose(y[480 + int(FADE):], x[480 + int(FADE):, [1, 1]], rtol=0, atol=1e-15)
    assert st[S_T] == 1.0


def test_output_does_not_depend_on_how_the_stream_is_cut():
    rng = np.random.default_rng(3)
    n = 20000
    x = rng.uniform(-1, 1, (n, 2))
    cuts = sorted({0, n, 5000, 9000, 9100, *rng.integers(1, n, 200).tolist()})
    modes = {0: "mono", 5000: "side", 9000: "stereo", 9100: "left"}
    whole, _, _ = _run(x, modes, [0, 5000, 9000, 9100, n])
    parts, _, _ = _run(x, modes, cuts)
    assert np.array_equal(whole, parts)


def test_warm_loads_the_signature_the_engine_calls():
    assert monitor.warm() is listen
    known = len(listen.signatures)
    y = np.zeros((128, 2))
    st = new_state()
    listen(y, st, 2, 960.0, 0.5)
    assert len(listen.signatures) == known


def test_a_gain_scales_the_matrix_and_glides_like_a_switch():
    """The As-streamed preview's gain: settled, the mode's matrix times the gain; a change follows
    the same raised cosine from where the matrix stands; back at unity in stereo, the master exactly."""
    x = _music(12000)
    g1, g2 = 10 ** (-6.0 / 20), 10 ** (-4.5 / 20)
    y, _, busy = _run(x, {4000: "mono"}, _cuts(12000, 100), gains_at={0: g1, 4000: g2, 8000: 1.0})
    np.testing.assert_allclose(y[1000:4000], g1 * x[1000:4000], rtol=0, atol=1e-15)
    mono = (x[:, 0] + x[:, 1]) / 2
    np.testing.assert_allclose(y[5000:8000, 0], g2 * mono[5000:8000], rtol=0, atol=1e-15)
    np.testing.assert_allclose(y[9000:, 1], mono[9000:], rtol=0, atol=1e-15)
    assert busy[-1] is True                                  # mono: still busy
    t = np.minimum(np.arange(1, 1001) / FADE, 1.0)           # the first fade: unity to g1 on the diagonal
    w = np.where(t >= 1.0, 1.0, 0.5 - 0.5 * np.cos(np.pi * t))
    np.testing.assert_allclose(y[:1000], (1.0 + w * (g1 - 1.0))[:, None] * x[:1000], rtol=0, atol=1e-12)
    steepest = np.abs(np.diff(x, axis=0)).max()
    assert np.abs(np.diff(y, axis=0)).max() <= steepest * 1.01   # no step at any change
    y, _, busy = _run(x, {}, _cuts(12000, 500), gains_at={0: g1, 3000: 1.0})
    assert np.array_equal(y[3000 + int(FADE) + 500:], x[3000 + int(FADE) + 500:]) and busy[-1] is False
