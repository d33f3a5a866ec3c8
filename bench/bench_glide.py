"""The audio thread's own extra work under parameter traffic (issue 9 "Load"), offline.

    python bench/bench_glide.py                 # 60 s of audio per mode, 3 rounds
    python bench/bench_glide.py --seconds 20 --rounds 2 --json
    masterbox bench --only glide [--quick]      # 60 s, 3 rounds (--quick: 10 s, 2 rounds)

Figures, never pass/fail. Each block is what the engine's loop does between read and write, timed
with ``perf_counter_ns`` one 128-frame block at a time (48 kHz, the ``streaming`` preset, the
demo programme at -6 dBFS), in these modes:

* ``steady``: ``Chain.process`` alone (parameters never change: the unloaded stream);
* ``moved``: ``steady`` at the values of the first set (trim, drive, width away from their
  neutral values make their stages work: the settings' own cost, without glides);
* ``bypassed``: ``steady`` with the bypass on (the dry crossfade and level match run every block);
* ``sets-nobypass``: ``sets`` below without its bypass toggles;
* ``sets``: the same plus 20 parameter sets per second of audio time, the ones
  ``bench/reliability_load.py``'s engine-traffic run sends (trim, drive, eq2 gain, width; every
  tenth set toggles bypass), applied at a block boundary as the engine does (the array is
  prepared beforehand, as the control thread does: ``prepare_flat`` then ``Chain.load_flat``
  in the block, or ``set_flat`` in trees without them), then ``process``;
* ``sets+capture``: ``sets`` plus ``CaptureSession.push`` of both taps (the compiled copy of
  dsp/capture_copy.py where the tree has it; the ring is drained by moving its read index,
  the writer thread idles).

Per mode: block time p50 / p99 / p99.9 / max in microseconds, and the parts: the set's
application alone (``set_flat``), ``push`` calls alone, and the kernel in blocks where something glides vs blocks where
nothing does. The modes alternate round by round (one process, the same machine state), and the
figures are medians over rounds. Runs at SCHED_OTHER: no lock needed.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dsp import schema  # noqa: E402
from dsp.chain import R_LM, Chain  # noqa: E402
from dsp.programme import render_programme  # noqa: E402
from firmware.capture_writer import CaptureSession  # noqa: E402

RATE = 48000
PERIOD = 128
SETS_HZ = 20.0
PRESET = Path(__file__).resolve().parents[1] / "dsp" / "presets" / "streaming.json"
MODES = ("steady", "moved", "bypassed", "sets-nobypass", "sets", "sets+capture")


def _pct(a: np.ndarray, q: float) -> float:
    return float(np.percentile(a, q)) if a.size else float("nan")


def _summary(ns: np.ndarray) -> dict:
    us = ns / 1000.0
    if not us.size:
        return {"n": 0, "p50": 0.0, "p99": 0.0, "p99.9": 0.0, "max": 0.0, "mean": 0.0}
    return {"n": int(us.size), "p50": round(_pct(us, 50), 1), "p99": round(_pct(us, 99), 1),
            "p99.9": round(_pct(us, 99.9), 1), "max": round(float(us.max()), 1),
            "mean": round(float(us.mean()), 2)}


def _param_sets(n_blocks: int, base: dict, prepare, seed: int = 3):
    """{block index: (flat array, bypass or None)} at 20 sets/s of audio time, as engine-traffic sends."""
    rng = random.Random(seed)
    every = RATE / SETS_HZ / PERIOD
    out = {}
    values = dict(base)
    k = 0
    t = every
    while t < n_blocks:
        values.update({"in.trim_db": round(rng.uniform(-3, 3), 2), "out.drive_db": round(rng.uniform(0, 6), 2),
                       "eq2.gain_db": round(rng.uniform(-4, 4), 2), "st.width": round(rng.uniform(80, 120), 2)})
        k += 1
        bypass = bool(k % 20) if k % 10 == 0 else None
        out[int(t)] = (prepare(schema.to_flat(schema.validate(values))), bypass)
        t += every
    return out


def _engine_paths():
    """(prepare, load_for(chain), warm_capture): what this tree's engine does per set and per push.

    Older trees (no ``prepare_flat``/``load_flat``/``capture_copy``) get their own path:
    ``set_flat`` in the loop and the numpy copy, so the same bench file times both sides of an A/B.
    """
    try:
        from firmware.engine import prepare_flat
    except ImportError:
        prepare_flat = None
    from firmware import capture_writer
    if hasattr(capture_writer, "use_kernels"):
        from dsp import capture_copy
        capture_writer.use_kernels(capture_copy.warm())
    elif hasattr(capture_writer, "use_copy_kernel"):
        from dsp import capture_copy
        capture_writer.use_copy_kernel(capture_copy.warm())
    if prepare_flat is None:
        return (lambda a: a), (lambda chain: chain.set_flat)
    return prepare_flat, (lambda chain: chain.load_flat)


def run_mode(mode: str, x: np.ndarray, base: dict, sets: dict, capdir: str, pollute: np.ndarray | None,
             load_for) -> dict:
    chain = Chain(RATE, max_block=PERIOD)
    load = load_for(chain)
    chain.set_output_bits(24)
    chain.set_flat(schema.to_flat(base) if mode != "moved" else sets[min(sets)][0])
    chain.set_bypass(mode == "bypassed")
    n_blocks = x.shape[0] // PERIOD
    xb = np.zeros((PERIOD, 2))
    yb = np.zeros((PERIOD, 2))
    cap = None
    if mode == "sets+capture":
        cap = CaptureSession(capdir, RATE, 2, taps=("input", "output"), analyze=False)
    block = np.zeros(n_blocks, dtype=np.int64)
    kern = np.zeros(n_blocks, dtype=np.int64)
    setf = []
    push = []
    gliding = np.zeros(n_blocks, dtype=bool)
    perf = time.perf_counter_ns
    use_sets = mode.startswith("sets")
    for b in range(n_blocks):
        xb[:] = x[b * PERIOD:(b + 1) * PERIOD]
        if pollute is not None:
            pollute += 1.0  # the rest of the machine's work between periods: the caches go cold
        s = sets.get(b) if use_sets else None
        t0 = perf()
        if s is not None:
            load(s[0])
            if s[1] is not None and mode != "sets-nobypass":
                chain.set_bypass(s[1])
        t1 = perf()
        chain.process(xb, yb)
        t2 = perf()
        if cap is not None:
            cap.push(xb, yb)
        t3 = perf()
        block[b] = t3 - t0
        kern[b] = t2 - t1
        if s is not None:
            setf.append(t1 - t0)
        if cap is not None:
            push.append(t3 - t2)
            cap._r = cap._w  # the writer's part, without a writer
        # "gliding": any parameter not at its target, or a ramp still moving, after this block
        # (the level-match ramp follows the meters all the time: not counted)
        rmp = chain._rmp
        gliding[b] = bool(np.any(chain._par[1] != chain._par[0]) or np.any(rmp[0, :R_LM] != rmp[1, :R_LM]))
    skip = 200  # start-up blocks
    out = {"block": _summary(block[skip:]), "kernel": _summary(kern[skip:]),
           "kernel_gliding": _summary(kern[skip:][gliding[skip:]]),
           "kernel_still": _summary(kern[skip:][~gliding[skip:]]),
           "gliding_fraction": round(float(gliding[skip:].mean()), 3)}
    if setf:
        out["set_flat"] = _summary(np.array(setf))
    if push:
        out["push"] = _summary(np.array(push))
    return out


def measure(seconds: float = 60.0, rounds: int = 3, modes: tuple[str, ...] = MODES, pollute_mb: float = 4.0) -> dict:
    """{mode: {part: figures}}: medians over ``rounds`` rounds of ``seconds`` of audio per mode."""
    base = schema.validate({**schema.defaults(), **json.loads(PRESET.read_text())["params"]})
    x = render_programme(seconds, RATE, seed=1, peak_dbfs=-6.0)
    n_blocks = x.shape[0] // PERIOD
    prepare, load_for = _engine_paths()
    sets = _param_sets(n_blocks, base, prepare)
    pollute = np.zeros(int(pollute_mb * 2**20 / 8)) if pollute_mb > 0 else None
    per_round = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="bench_glide_") as d:
        for _ in range(rounds):
            for m in modes:
                per_round[m].append(run_mode(m, x, base, sets, d, pollute, load_for))
    res = {}
    for m in modes:
        res[m] = {}
        for part in per_round[m][0]:
            if isinstance(per_round[m][0][part], dict):
                res[m][part] = {k: statistics.median(rr[part][k] for rr in per_round[m])
                                for k in per_round[m][0][part]}
            else:
                res[m][part] = statistics.median(rr[part] for rr in per_round[m])
    return res


def run(quick: bool = False) -> dict:
    """For ``masterbox bench``: 60 s per mode and 3 rounds, or 10 s and 2 rounds with ``quick``."""
    return measure(10.0 if quick else 60.0, 2 if quick else 3)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--pollute-mb", type=float, default=4.0,
                    help="memory written between blocks (cold caches, as in the engine between periods); 0: none")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    modes = a.modes.split(",")
    res = measure(a.seconds, a.rounds, tuple(modes), a.pollute_mb)
    if a.json:
        print(json.dumps(res, indent=1))
        return 0
    print(f"bench_glide: {a.seconds:g} s of audio per mode, {a.rounds} rounds (medians), 48 kHz / {PERIOD}, "
          f"{a.pollute_mb:g} MB written between blocks")
    for m in modes:
        print(f"\n{m}  (blocks gliding: {res[m]['gliding_fraction']:.1%})")
        for part, v in res[m].items():
            if isinstance(v, dict) and v["n"]:
                print(f"  {part:15s} n={v['n']:<7.0f} p50 {v['p50']:6.1f}  p99 {v['p99']:6.1f}  "
                      f"p99.9 {v['p99.9']:6.1f}  max {v['max']:7.1f}  mean {v['mean']:6.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
