"""The equal-loudness compare of two versions of the settings (Chain.match_compare).

Oracle: pyloudnorm's BS.1770 loudness of the chain's output against its input over the same
stretch of music-like programme, so "as loud as the settings before the switch" is measured by a
meter that is not the chain's own. Where the match must do nothing, the output is compared sample
for sample with a chain that was never asked to match.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyloudnorm as pyln
import pytest
from scipy.signal import resample_poly

from dsp.chain import Chain
from dsp.programme import render_programme

RATE = 48000
BLOCK = 512
PRESETS = Path(__file__).resolve().parents[2] / "dsp" / "presets"


def preset(name: str) -> dict:
    return json.loads((PRESETS / f"{name}.json").read_text())["params"]


def plain_settings() -> dict:
    return preset("streaming")


def louder_settings() -> dict:
    """The same settings driven 8 dB harder into the limiter: several LU louder on this programme."""
    return {**plain_settings(), "out.drive_db": 8.0}


@pytest.fixture(scope="module")
def music():
    return render_programme(40.0, RATE, seed=3, peak_dbfs=-6.0)


class Run:
    """One chain through the programme, second by second, with its output kept."""

    def __init__(self, x, values, block=BLOCK):
        self.x, self.block = x, block
        self.y = np.zeros_like(x)
        self.chain = Chain(RATE)
        self.chain.set_values(values)
        self.t = 0.0

    def play(self, seconds: float) -> None:
        a, b = int(self.t * RATE), int((self.t + seconds) * RATE)
        for i in range(a, b, self.block):
            j = min(i + self.block, b)
            self.chain.process(self.x[i:j], self.y[i:j])
        self.t += seconds

    def gain_lu(self, t0: float, t1: float) -> float:
        """Output loudness minus input loudness over [t0, t1) s (pyloudnorm)."""
        meter = pyln.Meter(RATE)
        a, b = int(t0 * RATE), int(t1 * RATE)
        return meter.integrated_loudness(self.y[a:b]) - meter.integrated_loudness(self.x[a:b])


def test_the_louder_settings_are_heard_at_the_loudness_of_the_settings_before_the_switch(music):
    quiet = plain_settings()
    loud = louder_settings()
    r = Run(music, quiet)
    r.play(6.0)
    quiet_gain = r.gain_lu(2.0, 6.0)
    # the first switch, to louder settings: matched once the meters have heard them (~1 s)
    r.chain.match_compare(True)
    r.chain.set_values(loud)
    r.play(6.0)
    first = r.gain_lu(8.0, 12.0)
    matched_db = r.chain.compare_gain_db
    # back to the quieter settings: nothing to turn down, heard as they are
    r.chain.match_compare(True)
    r.chain.set_values(quiet)
    r.play(5.0)
    back = r.gain_lu(13.0, 17.0)
    back_db = r.chain.compare_gain_db
    # and to the louder ones again: matched from the start (the gain they had last time)
    r.chain.match_compare(True)
    r.chain.set_values(loud)
    r.play(5.0)
    again_at_once = r.gain_lu(17.05, 18.0)
    again = r.gain_lu(18.0, 22.0)

    natural = Run(music, loud)
    natural.play(22.0)
    loud_gain = natural.gain_lu(8.0, 12.0)
    # the quieter settings never switched: what "as they are" is on the passage they came back on, and
    # the loudness the louder ones should have on the passages after (each against the same passage)
    as_they_are = Run(music, quiet)
    as_they_are.play(22.0)
    quiet_back_gain = as_they_are.gain_lu(13.0, 17.0)
    quiet_at_once, quiet_later = as_they_are.gain_lu(17.05, 18.0), as_they_are.gain_lu(18.0, 22.0)
    print(f"loudness gain: streaming {quiet_gain:+.2f} LU, loud {loud_gain:+.2f} LU; loud matched "
          f"{first:+.2f} LU (gain {matched_db:+.2f} dB), streaming again {back:+.2f} (gain {back_db:+.2f} dB), "
          f"loud again {again_at_once:+.2f} in its first second, then {again:+.2f}")
    assert loud_gain - quiet_gain > 4.0            # the comparison means something
    assert abs(first - quiet_gain) <= 0.3
    assert abs(back - quiet_back_gain) <= 0.05 and back_db > -0.5
    assert abs(again_at_once - quiet_at_once) <= 1.0   # the gain they had, over another passage
    assert abs(again - quiet_later) <= 0.3
    assert matched_db == pytest.approx(-(loud_gain - quiet_gain), abs=0.5)
    # only ever turned down, so the limiter's ceiling holds (true peak: 4x oversampled by scipy)
    true_peak = 20 * np.log10(np.max(np.abs(resample_poly(r.y[:int(22 * RATE)], 4, 1, axis=0))))
    assert true_peak <= quiet["lim.ceiling_dbtp"] + 0.1, true_peak


def switched_pair(music, before: dict, after: dict, seconds: float) -> tuple[Run, Run]:
    """Two chains on ``before`` for 4 s, then switched to ``after``: the first told it is a compare
    switch (match_compare(True)), the second not; both play ``seconds`` more."""
    r, plain = Run(music, before), Run(music, before)
    for run in (r, plain):
        run.play(4.0)
        run.chain.set_values(after)
    r.chain.match_compare(True)
    r.play(seconds)
    plain.play(seconds)
    return r, plain


def test_quieter_settings_are_never_turned_up(music):
    r, plain = switched_pair(music, louder_settings(), plain_settings(), 6.0)
    assert r.chain.compare_gain_db == 0.0
    assert np.array_equal(r.y, plain.y)


def test_an_edit_ends_the_match_and_the_output_is_again_the_unmatched_one(music):
    r, plain = switched_pair(music, plain_settings(), louder_settings(), 4.0)
    assert r.chain.compare_gain_db < -3.0
    r.chain.match_compare(False)
    r.play(6.0)
    plain.play(6.0)
    assert r.chain.compare_gain_db == 0.0
    tail = slice(int(13 * RATE), int(14 * RATE))   # the gain glides back with a 0.5 s time constant
    assert np.array_equal(r.y[tail], plain.y[tail])


def test_level_match_off_means_no_compare_match(music):
    off = {"ab.level_match": False}
    r, plain = switched_pair(music, {**plain_settings(), **off}, {**louder_settings(), **off}, 4.0)
    assert r.chain.compare_gain_db == 0.0
    assert np.array_equal(r.y, plain.y)


def test_the_match_does_not_depend_on_how_the_stream_is_cut(music):
    outs = []
    for block in (64, 1000):
        r = Run(music, plain_settings(), block=block)
        r.play(3.0)
        r.chain.match_compare(True)
        r.chain.set_values(louder_settings())
        r.play(3.0)
        outs.append(r.y[:int(6 * RATE)])
    assert np.max(np.abs(outs[0] - outs[1])) <= 1e-9
