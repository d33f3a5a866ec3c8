"""Moving a filter's frequency while music plays must not zip or click.

The EQ and the tone have always glided their coefficients sample by sample (state-variable
filters, ``dsp.svf``); until 2026-11-24 the subsonic high-pass, the crossover and the mono bass
were direct-form biquads redesigned every 64-sample sub-block, and a move of their frequency
stepped the output at each redesign: lines at multiples of fs/64 and, on a preset recall, a click.

The measure: an 80 Hz tone at -20 dBFS (in phase on the right, 0.7 of it 0.5 rad later, so mono
bass has a side to work on), the frequency set to a new value half way through, and the peak of
what the output has above 1.5 kHz in the 300 ms from the move, in dB re the tone (an 8th-order
Butterworth high-pass run forwards and backwards: the tone itself is more than 300 dB down in
it). Nothing the tone goes through puts anything up there while it stands still; a coefficient
step does. The EQ's own frequency moves, measured the same way, set the bar: moves of an octave
or so against the EQ's octave moves, moves across a whole range against the EQ's moves across
its range (a faster glide leaves more, for the EQ as for these).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from dsp import schema
from dsp.chain import Chain
from tests.signals import run_chain

RATE = 48000
AMP = 0.1                   # -20 dBFS
PRESETS = Path(schema.__file__).parent / "presets"
UNITY = {"mb.on": True, **{f"mb.{b}.ratio": 1.0 for b in schema.MB_BANDS}}   # the split alone, at unity
FREQUENCIES = ("in.hpf_freq", "st.mono_freq", "mb.xover_low", "mb.xover_high")


def _preset(name):
    return json.loads((PRESETS / f"{name}.json").read_text())["params"]


def _hf_db(y, start, stop, ref, cutoff):
    """Peak of ``y[start:stop]`` above ``cutoff`` (zero-phase 8th-order high-pass), dB re ``ref``."""
    sos = signal.butter(8, cutoff, "highpass", fs=RATE, output="sos")
    r = np.abs(signal.sosfiltfilt(sos, y, axis=0)).max(axis=1)
    return 20.0 * np.log10(r[start:stop].max() / ref + 1e-30)


def _tone(seconds=1.0, freq=80.0):
    t = np.arange(int(seconds * RATE)) / RATE
    return np.ascontiguousarray(np.stack([AMP * np.sin(2 * np.pi * freq * t),
                                          0.7 * AMP * np.sin(2 * np.pi * freq * t + 0.5)], axis=1))


def move_residual_db(setting, pid, a, b, block=256):
    """(during, before): the tone's HF residual in the 300 ms from a move of ``pid`` from a to b,
    and in the 400 ms before it (the measurement's own floor)."""
    x = _tone()
    half = len(x) // 2
    c = Chain(RATE, max_block=block)
    c.set_values({**_preset("transparent"), **setting, pid: a})
    first = run_chain(c, x[:half], block)
    c.set_values({pid: b})
    y = np.vstack([first, run_chain(c, x[half:], block)])
    return (_hf_db(y, half - 100, half + int(0.3 * RATE), AMP, 1500.0),
            _hf_db(y, int(0.1 * RATE), half - 1000, AMP, 1500.0))


BELL = {"eq1.on": True, "eq1.type": "bell", "eq1.gain_db": 6.0}
LOW_CUT = {"eq1.on": True, "eq1.type": "low_cut"}
HIGH_CUT = {"eq1.on": True, "eq1.type": "high_cut"}
EQ_MOVES = {
    "octave": [(BELL, "eq1.freq", 100.0, 200.0), (LOW_CUT, "eq1.freq", 30.0, 60.0),
               (HIGH_CUT, "eq1.freq", 3000.0, 6000.0), ({"eq.tone_db": 3.0}, "eq.tone_freq", 1000.0, 2000.0)],
    "range": [(BELL, "eq1.freq", 800.0, 40.0), (LOW_CUT, "eq1.freq", 800.0, 40.0),
              (HIGH_CUT, "eq1.freq", 16000.0, 1000.0)],
}


@pytest.fixture(scope="module")
def eq_bars():
    """For each kind of move, the worst HF residual of the EQ's own moves, plus 3 dB: measured
    (2026-11-24) -93.7 dB re the tone for an octave (a high cut from 3 to 6 kHz), -82.4 across
    the range (a low cut from 800 to 40 Hz)."""
    bars = {kind: max(move_residual_db(*m)[0] for m in moves) + 3.0 for kind, moves in EQ_MOVES.items()}
    assert bars["octave"] < -85.0 and bars["range"] < -75.0, bars     # the yardstick itself is clean
    return bars


MOVES = [
    ("octave", {"in.hpf_slope": "24"}, "in.hpf_freq", 20.0, 40.0),
    ("octave", {"in.hpf_slope": "12", "in.dc_block": True}, "in.hpf_freq", 20.0, 40.0),
    ("octave", {"in.hpf_slope": "12"}, "in.hpf_freq", 40.0, 20.0),
    ("range", {"in.hpf_slope": "24"}, "in.hpf_freq", 40.0, 10.0),
    ("octave", {"st.mono_bass": True}, "st.mono_freq", 120.0, 240.0),
    ("range", {"st.mono_bass": True}, "st.mono_freq", 300.0, 40.0),
    ("octave", UNITY, "mb.xover_low", 200.0, 400.0),
    ("range", UNITY, "mb.xover_low", 800.0, 40.0),
    ("octave", UNITY, "mb.xover_high", 3000.0, 6000.0),
    ("octave", UNITY, "mb.xover_high", 3000.0, 3300.0),
    ("range", UNITY, "mb.xover_high", 16000.0, 1000.0),
]


@pytest.mark.parametrize("kind,setting,pid,a,b", MOVES, ids=lambda v: "" if isinstance(v, dict) else str(v))
def test_moving_a_frequency_is_as_clean_as_the_eqs(eq_bars, kind, setting, pid, a, b):
    """Each of the four frequencies moved in the middle of a low tone leaves no more above 1.5 kHz
    than the EQ's frequency moves do. Before the fix: -40 to -81 dB re the tone for an octave
    (the EQ's: -94 to -107), -31 to -64 across the range (the EQ's: -82 to -91)."""
    during, before = move_residual_db(setting, pid, a, b)
    assert before < -200.0              # standing still, nothing up there
    assert during <= eq_bars[kind], f"{pid} {a} -> {b}: {during:.1f} dB re the tone (bar {eq_bars[kind]:.1f})"


def test_no_zipper_lines_while_the_high_split_glides():
    """The spectrum 1-86 ms after mb.xover_high is moved: no lines at multiples of fs/64 (750 Hz)
    from the sub-block redesigns; before the fix they stood at -88 dBFS, 60 dB over the still case."""
    x = _tone()
    x[:, 1] = x[:, 0]
    half = len(x) // 2
    c = Chain(RATE, max_block=256)
    c.set_values({**_preset("transparent"), **UNITY, "mb.xover_high": 3000.0})
    first = run_chain(c, x[:half], 256)
    c.set_values({"mb.xover_high": 6000.0})
    y = np.vstack([first, run_chain(c, x[half:], 256)])[:, 0]
    seg = y[half + 48:half + 48 + 4096]
    w = signal.windows.blackmanharris(len(seg))
    spectrum = np.abs(np.fft.rfft(seg * w)) / (w.sum() / 2)
    f = np.fft.rfftfreq(len(seg), 1 / RATE)
    assert 20 * np.log10(spectrum[f > 1000].max()) < -120.0


def _recall_db(a, b_values, block=128):
    """HF residual (above 3 kHz, dB re 0.1) of a recall from preset ``a`` to ``b_values`` while an
    80 Hz + 1 kHz mix plays: what the reviewer heard as a click."""
    n = int(1.2 * RATE)
    t = np.arange(n) / RATE
    x = np.ascontiguousarray(np.stack([
        0.1 * np.sin(2 * np.pi * 80 * t) + 0.03 * np.sin(2 * np.pi * 1000 * t),
        0.08 * np.sin(2 * np.pi * 80 * t + 0.4) + 0.03 * np.sin(2 * np.pi * 1000 * t + 1.0)], axis=1))
    c = Chain(RATE, max_block=block)
    c.set_flat(schema.to_flat(_preset(a)))
    half = int(0.6 * RATE)
    first = run_chain(c, x[:half], block)
    c.set_flat(schema.to_flat(b_values))
    y = np.vstack([first, run_chain(c, x[half:], block)])
    return _hf_db(y, half - 100, half + int(0.3 * RATE), 0.1, 3000.0)


@pytest.mark.parametrize("a,b", [("loud", "vinyl-premaster"), ("podcast", "loud"), ("vinyl-premaster", "streaming")])
def test_a_preset_recall_does_not_click(a, b):
    """A recall whose presets differ in split, mono-bass and subsonic frequencies leaves no more
    above 3 kHz than the same recall with those four frequencies held where they were: their
    moves add nothing. Before the fix loud -> vinyl-premaster gave -44.5 dB, -81.3 with them held;
    podcast -> loud -44.8, -60.0 held (what is left there is the 10 ms crossfades of switches:
    mono bass on, a band's type or placement, the subsonic slope)."""
    new = _preset(b)
    held = dict(new)
    for k in FREQUENCIES:
        held[k] = _preset(a)[k]
    assert any(new[k] != held[k] for k in FREQUENCIES)
    as_is = _recall_db(a, new)
    without = _recall_db(a, held)
    assert as_is <= without + 1.0, f"{a} -> {b}: {as_is:.1f} dB, {without:.1f} with the frequencies held"
    if (a, b) == ("loud", "vinyl-premaster"):   # nothing but gliding parameters differ that matter
        assert as_is < -78.0


@pytest.mark.parametrize("switch", ["eq3.on", "st.mono_bass", "mb.on"])
def test_a_switch_crossfades_without_corners(switch):
    """A switch blends the signal without and with the stage over 10 ms. A linear blend starts and
    stops with a kink, which splashes high frequencies over a 250 Hz tone (-62.6 to -68.1 dB re the
    tone above 3 kHz until 2026-11-24); the smoothstep blend has no kink (-73.4 to -76.8 dB)."""
    t = np.arange(2 * RATE) / RATE
    tone = 0.25 * np.sin(2 * np.pi * 250 * t)
    x = np.ascontiguousarray(np.stack([tone, 0.3 * tone], axis=1))     # a side signal for the mono bass
    base = schema.defaults() | {"eq3.type": "bell", "eq3.freq": 250.0, "eq3.gain_db": 6.0, "eq3.q": 1.0,
                                "st.mono_freq": 300.0, "mb.xover_low": 400.0, "mb.low.threshold_db": -30.0,
                                "mb.low.ratio": 4.0, "ab.level_match": False}
    c = Chain(RATE, max_block=64)
    c.set_values(base | {switch: False})
    c.set_output_bits(None)
    first = run_chain(c, x[:RATE], 64)
    c.set_values({switch: True})
    after = run_chain(c, x[RATE:], 64)
    assert np.max(np.abs(after[RATE // 2:, 0] - first[RATE // 2:, 0])) > 0.01      # the switch changed the sound
    high = signal.butter(8, 3000, "hp", fs=RATE, output="sos")
    splash = signal.sosfilt(high, np.concatenate([first[:, 0], after[:, 0]]))[RATE:int(1.2 * RATE)]
    assert 20 * np.log10(np.max(np.abs(splash)) / 0.25) < -71.0
