"""``Chain.set_split``: the part before the drive, then drive .. dither, equals the whole chain.

The offline drive search (firmware/render.py) runs SPLIT_PRE once and SPLIT_POST per drive; it
promises the very samples of a whole-chain render. The oracle is the whole chain itself
(SPLIT_ALL) on the same input: compared with ``array_equal``, not a tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_chain import run  # tests/dsp is on sys.path (no __init__.py, rootdir import)

from dsp import schema
from dsp.chain import SPLIT_ALL, SPLIT_POST, SPLIT_PRE, Chain
from dsp.programme import render_programme

RATE = 48000
PRESETS = Path(schema.__file__).parent / "presets"


def values(name, **over):
    v = dict(schema.defaults())
    v.update(json.loads((PRESETS / f"{name}.json").read_text())["params"])
    v.update(over)
    return v


def fresh(chain, split, vals):
    chain.set_split(split)
    chain.reset()
    chain.set_values(vals)


@pytest.mark.parametrize("name", ["streaming", "loud", "vinyl-premaster", "podcast"])
def test_pre_then_post_equals_the_whole_chain_sample_for_sample(name):
    x = np.ascontiguousarray(render_programme(6.0, RATE, seed=11, peak_dbfs=-2.0))
    x[RATE:RATE + 5, 0] = np.nan          # sanitised by the first part, counted there
    c = Chain(RATE, max_block=4096)
    c.set_output_bits(24)
    rng = np.random.default_rng(5)
    for drive in (0.0, 7.5, 14.0):        # below, at and far into the limiter
        vals = values(name, **{"out.drive_db": drive})
        fresh(c, SPLIT_ALL, vals)
        whole = run(c, x, 4096)
        out_whole = c.output_meter.readings()
        in_whole = c.input_meter.readings()
        gr_whole = c.gain_reduction_db()
        faults = c.faults
        fresh(c, SPLIT_PRE, vals)
        pre = run(c, x, list(rng.integers(1, 3000, 50)))    # other partitions: block-size invariance too
        assert c.input_meter.readings() == in_whole
        assert c.faults == faults == 5
        band_gr = c.gain_reduction_db()
        fresh(c, SPLIT_POST, vals)
        y = run(c, pre, list(rng.integers(1, 3000, 50)))
        assert np.array_equal(y, whole), f"{name} at {drive} dB: max diff {np.max(np.abs(y - whole))}"
        assert c.output_meter.readings() == out_whole
        assert c.resets == 0
        assert c.gain_reduction_db()["limiter"] == gr_whole["limiter"]
        assert {b: band_gr[b] for b in schema.MB_BANDS} == {b: gr_whole[b] for b in schema.MB_BANDS}


def test_pre_hands_out_the_drive_stages_input_and_meters_it():
    """SPLIT_PRE's y is the signal before the drive: a transparent chain's is the input, undelayed."""
    x = np.ascontiguousarray(render_programme(3.0, RATE, seed=2, peak_dbfs=-6.0))
    c = Chain(RATE, max_block=1024)
    fresh(c, SPLIT_PRE, values("transparent", **{"out.drive_db": 6.0}))
    y = run(c, x, 1024)
    assert np.array_equal(y, x)            # no drive, no limiter delay, no dither
    whole = Chain(RATE, max_block=1024)
    whole.set_values(values("transparent", **{"out.drive_db": 0.0}))
    run(whole, x, 1024)
    assert c.output_meter.readings()["integrated_lufs"] == whole.input_meter.readings()["integrated_lufs"]


def test_split_refuses_what_it_cannot_reproduce():
    c = Chain(RATE, max_block=64)
    with pytest.raises(ValueError):
        c.set_split(3)
    c.set_bypass(True)
    with pytest.raises(ValueError):
        c.set_split(SPLIT_POST)        # the second part has no dry signal to cross-fade to
    c.set_bypass(False)
    c.set_split(SPLIT_PRE)
    with pytest.raises(ValueError):
        c.set_bypass(True)
    c.reset()                          # reset keeps the split, like the output bits
    x = np.full((64, 2), 0.1)
    y = np.zeros_like(x)
    c.process(x, y)
    assert np.array_equal(y, x)
    c.set_split(SPLIT_ALL)
    c.set_bypass(True)
    assert c.bypassed
