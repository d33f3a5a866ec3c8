"""The loudness learner against the real chain and meters: where the learned drive really lands.

The learner (firmware/learn.py) is driven exactly as on the box - its callables read the chain's
input and output meters, reset them and set ``out.drive_db`` - but the "engine" here is a
:class:`dsp.chain.Chain` fed with a looped demo programme on a virtual clock (each meter read
processes half a second of audio), so a minute of learning takes a second or two and needs no
real-time engine. The truth is independent of the learner and of our meter: the whole programme
rendered once at the learned drive, measured with pyloudnorm (BS.1770).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest

import firmware.learn as learn
from dsp import schema
from dsp.chain import Chain
from dsp.programme import render_programme

RATE = 48000
PROGRAMME_S = 30.0
PRESETS = Path(schema.__file__).parent / "presets"


def preset(name: str) -> dict:
    return json.loads((PRESETS / f"{name}.json").read_text())["params"]


class ChainEngine:
    """The chain playing ``x`` in a loop; time passes only as audio is processed."""

    def __init__(self, x: np.ndarray, values: dict, step_s: float = 0.5):
        self.x, self.step = x, int(step_s * RATE)
        self.values = dict(values)
        self.chain = Chain(RATE, max_block=1024)
        self.chain.set_values(self.values)
        self.y = np.zeros((1024, 2))
        self.pos, self.t = 0, 0.0

    def clock(self) -> float:
        return self.t

    def get(self, key: str):
        return self.values[key]

    def set_drive(self, db: float) -> None:
        self.values["out.drive_db"] = db
        self.chain.set_values({"out.drive_db": db})

    def reset(self) -> None:
        self.chain.input_meter.reset()
        self.chain.output_meter.reset()

    def read(self) -> dict:
        left = self.step
        while left:
            m = min(left, 1024, len(self.x) - self.pos)
            self.chain.process(self.x[self.pos:self.pos + m], self.y[:m])
            self.pos = (self.pos + m) % len(self.x)
            left -= m
        self.t += self.step / RATE
        return {"in_integrated_lufs": self.chain.input_meter.readings()["integrated_lufs"],
                "out_integrated_lufs": self.chain.output_meter.readings()["integrated_lufs"]}


def rendered_lufs(x: np.ndarray, values: dict) -> float:
    c = Chain(RATE, max_block=65536)
    c.set_values(values)
    lat = c.latency_samples
    xx = np.ascontiguousarray(np.vstack([x, np.zeros((lat, 2))]))
    y = np.zeros_like(xx)
    for i in range(0, len(xx), 65536):
        c.process(xx[i:i + 65536], y[i:i + 65536])
    return pyloudnorm.Meter(RATE).integrated_loudness(y[lat:])


# (preset, programme seed, where in the programme learning starts, s): moderate and heavy limiting,
# a target below the programme (broadcast), and starts in different sections
# (preset, programme seed, where in the loop learning starts (s), the drive it starts from (dB): far
# enough from the target that learning has something to do; broadcast-r128 at 0 dB lands within
# 0.13 LU of its -23 LUFS on seed 2 since the compressor's detector hold, so it starts 6 dB down)
CASES = [("streaming", 0, 17.0, 0.0), ("loud", 1, 9.0, 0.0), ("broadcast-r128", 2, 0.0, -6.0),
         ("podcast", 5, 9.0, 0.0), ("apple-music", 7, 17.0, 0.0)]


@pytest.mark.parametrize(("name", "seed", "offset", "start_drive"), CASES)
def test_learned_drive_lands_on_the_target(name, seed, offset, start_drive, monkeypatch):
    monkeypatch.setattr(learn, "POLL_S", 0.0005)  # the virtual clock only moves as audio is read
    x = render_programme(PROGRAMME_S, RATE, seed=seed)
    values = preset(name) | {"out.drive_db": start_drive}
    target = values["target.lufs"]
    eng = ChainEngine(np.ascontiguousarray(np.roll(x, -int(offset * RATE), axis=0)), values)
    ln = learn.Learner(eng.read, eng.reset, eng.get, eng.set_drive, clock=eng.clock)
    ln.start(seconds=60.0)
    st = ln.wait(300)
    assert st["state"] == "done", st
    drive = eng.values["out.drive_db"]
    got = rendered_lufs(x, values | {"out.drive_db": drive})
    print(f"{name} (seed {seed}, from {offset:.0f} s): target {target} LUFS, learned drive {drive:+.2f} dB "
          f"after {st['rounds']} moves; rendered {got:.2f} LUFS (pyloudnorm), error {got - target:+.2f} LU")
    assert abs(got - target) <= 0.5
    # and learning had something to do: the starting drive misses the target by far more
    assert abs(rendered_lufs(x, values) - target) > 1.0
