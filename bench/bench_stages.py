"""Per-stage cost of the mastering chain: where the kernel's time goes, stage by stage.

Run with ``python bench/bench_stages.py`` (``--quick``: 10 s of audio; ``--seconds S --repeats N``
for any length, e.g. ``--seconds 1 --repeats 1`` to see that it runs) or ``masterbox bench --only
stages``. Figures, never pass/fail: nanoseconds of CPU per stereo frame (48 kHz), the minimum over
several repeats that alternate the stages (a shared machine disturbs minima least).

Each stage is the chain's own code with the chain's own state (a ``streaming`` chain that has
processed one block, so every parameter, ramp and coefficient is where the render has it),
called by a small numba driver once per 64-sample sub-block, as the kernel calls it. The
signal is 60 s of the demo music (dsp.programme, -6 dBFS peak): the input stage and the input
meter get it as is; EQ, multiband and stereo get what the chain's first part makes of it
(``SPLIT_PRE``); the limiter gets that driven +8 dB; dither and the output meter get the whole
chain's output. ``copy`` is the driver alone (moving a sub-block in and out), already
subtracted from the stage figures. ``chain_*`` are whole ``Chain.process`` calls, for scale.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dsp import chain, dither, limiter, schema  # noqa: E402
from dsp.meter import meter_process  # noqa: E402
from dsp.programme import render_programme  # noqa: E402
from dsp.smoothing import SUB  # noqa: E402

RATE = 48000
DRIVE_DB = 8.0
REPEATS = 7


def _view(c: chain.Chain, name: str):
    """The chain's packed state array ``name`` (a view, as the kernel sees it)."""
    k = [n for n, _ in chain.FLOAT_ARRAYS].index(name)
    dims = chain.FLOAT_ARRAYS[k][1]
    return (chain._f1, chain._f2, chain._f3)[dims - 1](c._F, c._I, k)


@njit(cache=False)
def _drive(stage, x, y, s, tmp, sc, rmp, coef, eqc, eqz, z, fs, ist, lp, lim_f, lim_i, geo, phase, hist,
           delay, dq_val, dq_idx, box1, box2, pk, dcoef, derr, rng, mf, mi):
    """Run one stage over x in sub-blocks into y (stage 0: the copies alone)."""
    for i in range(0, x.shape[0] - SUB + 1, SUB):
        for n in range(SUB):
            s[n, 0] = x[i + n, 0]
            s[n, 1] = x[i + n, 1]
        if stage == 1:
            chain._input_stage(s, tmp, SUB, 0, rmp, coef, z, fs, ist)
        elif stage == 2:
            chain._eq_stage(s, tmp, SUB, 0, rmp, eqc, eqz, ist)
        elif stage == 3:
            chain._multiband_stage(sc, SUB, 0, rmp, coef, z, fs, ist)
        elif stage == 4:
            chain._stereo_stage(s, tmp, SUB, 0, rmp, coef, z)
        elif stage == 5:
            limiter.process(s, 0, SUB, lp[0], lp[1], lp[2], True, lp[3], lp[4], geo, phase,
                            hist, delay, dq_val, dq_idx, box1, box2, lim_f, lim_i, pk)
        elif stage == 6:
            dither.quantise(s, 0, SUB, 24, True, dcoef, derr, rng)
        elif stage == 7:
            meter_process(x[i:i + SUB], mf, mi)
        for n in range(SUB):
            y[i + n, 0] = s[n, 0]
            y[i + n, 1] = s[n, 1]


STAGES = ("copy", "input", "eq", "multiband", "stereo", "limiter", "dither", "meter_in", "meter_out")


def _streaming_chain(block: int) -> chain.Chain:
    params = json.loads((Path(schema.__file__).parent / "presets" / "streaming.json").read_text())["params"]
    c = chain.Chain(RATE, max_block=block)
    c.set_values(params | {"out.drive_db": DRIVE_DB})
    c.set_output_bits(24)
    return c


def _render(c: chain.Chain, x: np.ndarray, block: int) -> tuple[np.ndarray, float]:
    y = np.zeros_like(x)
    t = time.process_time()
    for i in range(0, len(x), block):
        c.process(x[i:i + block], y[i:i + block])
    return y, time.process_time() - t


def measure(seconds: float = 60.0, repeats: int = REPEATS) -> dict:
    x = np.ascontiguousarray(render_programme(seconds, RATE, seed=1, peak_dbfs=-6.0))
    frames = len(x) - len(x) % SUB
    pre_chain = _streaming_chain(4096)
    pre_chain.set_split(chain.SPLIT_PRE)
    pre, _ = _render(pre_chain, x, 4096)
    driven = np.ascontiguousarray(pre * 10.0 ** (DRIVE_DB / 20.0))
    final, _ = _render(_streaming_chain(4096), x, 4096)
    inputs = {"copy": pre, "input": x, "eq": pre, "multiband": pre, "stereo": pre, "limiter": driven,
              "dither": final, "meter_in": x, "meter_out": final}
    best = {k: float("inf") for k in STAGES}
    whole = {f"chain_{b}": float("inf") for b in (4096, 128)}
    y = np.zeros_like(x)
    for _ in range(repeats):
        for k, name in enumerate(STAGES):
            c = _streaming_chain(4096)
            c.process(x[:SUB], y[:SUB])   # parameters, ramps and coefficients where a render has them
            lp = np.array([c._fs[chain.F_LIM_T], c._fs[chain.F_LIM_C], c._fs[chain.F_LIM_AF],
                           c._fs[chain.F_LIM_ASA], c._fs[chain.F_LIM_ASR]])
            lim = c._lim
            meter = c.output_meter if name == "meter_out" else c.input_meter
            args = (inputs[name], y, _view(c, "sc")[chain.S_MAIN], _view(c, "sc")[chain.S_TMP], _view(c, "sc"),
                    c._rmp, c._coef, c._eqc, c._eqz, c._z, c._fs, c._ist, lp, lim["fs"], lim["is"], lim["geo"],
                    lim["phase"], lim["hist"], lim["delay"], lim["dq_val"], lim["dq_idx"], lim["box1"],
                    lim["box2"], _view(c, "pk"), _view(c, "dcoef"), c._derr, c._rng, meter.f, meter.i)
            stage = min(k, 7)
            _drive(stage, inputs[name][:SUB], y[:SUB], *args[2:])   # compiled before timing
            t = time.process_time()
            _drive(stage, *args)
            best[name] = min(best[name], time.process_time() - t)
        for b in (4096, 128):
            whole[f"chain_{b}"] = min(whole[f"chain_{b}"], _render(_streaming_chain(b), x, b)[1])
    ns = {k: v / frames * 1e9 for k, v in best.items()}
    out: dict = {"seconds_of_audio": seconds, "drive_db": DRIVE_DB, "repeats": repeats,
                 "ns_per_frame_copy": round(ns["copy"], 1)}
    for name in STAGES[1:]:
        out[f"ns_per_frame_{name}"] = round(max(ns[name] - ns["copy"], 0.0), 1)
    out["ns_per_frame_stages_sum"] = round(statistics.fsum(out[f"ns_per_frame_{n}"] for n in STAGES[1:]), 1)
    for k, v in whole.items():
        out[f"ns_per_frame_{k}"] = round(v / len(x) * 1e9, 1)
        out[f"rt_x_{k}"] = round(seconds / v, 1)
    return out


def run(quick: bool = False) -> dict:
    """For ``masterbox bench``."""
    return measure(10.0 if quick else 60.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10 s of audio instead of 60")
    ap.add_argument("--seconds", type=float, help="seconds of audio (default 60, 10 with --quick)")
    ap.add_argument("--repeats", type=int, default=REPEATS, help=f"repeats, the minimum is kept (default {REPEATS})")
    a = ap.parse_args(argv)
    seconds = a.seconds if a.seconds is not None else 10.0 if a.quick else 60.0
    print(json.dumps(measure(seconds, a.repeats), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
