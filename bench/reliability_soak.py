"""Soak: varied programme through the mastering chain offline at full speed, every parameter
automated at random every 50 ms. Issue 9 ("Soak").

This process is the *engine side* only: it renders the programme, runs the chain, and streams
the output (float32) with the ceiling each 50 ms step asked for to stdout, in frames of

    8 bytes  float64  lim.ceiling_dbtp set for this step (NaN = the end)
    STEP*2*4 bytes    float32 output samples of this step (stereo, interleaved)

so the checks (true peak by an independent 16x oversampler, NaN/Inf) run in *another* process
and cannot disturb this one's memory figure. Its own resident set size (``/proc/self/statm``)
is sampled every simulated 10 s; the summary (RSS after warm-up and at the end, blocks,
wall time) is written as JSON to ``--summary``.

    python bench/reliability_soak.py --seconds 3600 --check      # the full hour, checked here
    python -m pytest tests/reliability/test_rel_soak.py           # the short default (~30 s)
    MB_SOAK_SECONDS=3600 python -m pytest tests/reliability/test_rel_soak.py   # the hour, as a test

``--check`` runs the checker (tests/reliability/soakcheck.py) in a child process reading this
one's output through a pipe, and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dsp import schema  # noqa: E402

RATE = 48000
STEP = RATE // 20  # 50 ms
WARMUP_S = 60.0  # RSS reference is taken after this much programme (or 1/3 of a short run)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def random_values(rng: np.random.Generator) -> dict:
    """Every parameter of the schema at a random valid value (10 % of the time an end of its range)."""
    out = {}
    for p in schema.PARAMS:
        if p.curve == schema.ENUM:
            out[p.id] = p.choices[rng.integers(len(p.choices))]
        elif p.curve == schema.BOOL:
            out[p.id] = bool(rng.integers(2))
        else:
            u = rng.random()
            if u < 0.05:
                v = p.min
            elif u < 0.10:
                v = p.max
            elif p.curve == schema.LOG and p.min > 0:
                v = math.exp(rng.uniform(math.log(p.min), math.log(p.max)))
            else:
                v = rng.uniform(p.min, p.max)
            out[p.id] = float(min(max(v, p.min), p.max))
    return out


def _faded(x: np.ndarray, n: int = 480) -> np.ndarray:
    r = np.linspace(0.0, 1.0, n)[:, None]
    x[:n] *= r
    x[-n:] *= r[::-1]
    return x


def segment(kind: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    if kind == "music":
        from dsp.programme import render_programme

        return render_programme(seconds, RATE, seed=int(rng.integers(1 << 30)),
                                peak_dbfs=float(rng.uniform(-20.0, 12.0)))
    if kind == "silence":
        return np.zeros((n, 2))
    if kind == "square":
        f = float(rng.choice([50.0, 100.0, 997.0, 5000.0]))
        x = np.sign(np.sin(2 * np.pi * f * t + 0.1)) * 10 ** (rng.uniform(-6, 12) / 20)
    elif kind == "fs4":  # the classic inter-sample over: fs/4 at 45 degrees, +3 dBTP
        x = 1.41 * np.sin(2 * np.pi * RATE / 4 * t + np.pi / 4)
    elif kind == "impulses":
        x = np.zeros(n)
        x[:: RATE // 10] = 4.0
        x[RATE // 20:: RATE // 10] = -4.0
    elif kind == "sine_low":
        x = 2.0 * np.sin(2 * np.pi * 25 * t)
    elif kind == "noise":
        return _faded(rng.standard_normal((n, 2)) * 10 ** (rng.uniform(-40, 20) / 20))
    elif kind == "nyquist":
        x = (np.arange(n) % 2 * 2.0 - 1.0) * 2.0
    elif kind == "antiphase":
        s = np.sin(2 * np.pi * 440 * t) * 3.0
        return _faded(np.stack([s, -s], axis=1))
    else:
        raise ValueError(kind)
    return _faded(np.repeat(x[:, None], 2, axis=1))


KINDS = ("music", "music", "music", "silence", "square", "fs4", "impulses", "sine_low", "noise", "nyquist",
         "antiphase")


def build_pool(rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """The material, rendered once up front (about 100 s): drawing segments from a fixed pool keeps
    this process's own memory constant, so the RSS figure is the chain's, not the generator's."""
    pool = [("music", np.ascontiguousarray(segment("music", 12.0, rng))) for _ in range(4)]
    for kind in KINDS:
        if kind != "music":
            pool.append((kind, np.ascontiguousarray(segment(kind, 6.0, rng))))
    return pool


class Programme:
    """Random 0.5-6 s stretches of random pool entries at random gains (+-12 dB), written into the
    caller's buffer; a stretch longer than its entry wraps around."""

    def __init__(self, pool, rng: np.random.Generator):
        self.pool, self.rng = pool, rng
        self.kinds: dict[str, float] = {}
        self._next()

    def _next(self) -> None:
        self.entry = int(self.rng.integers(len(self.pool)))
        self.kind, self.src = self.pool[self.entry]
        self.pos = int(self.rng.integers(len(self.src)))
        self.left = int(self.rng.uniform(0.5, 6.0) * RATE)
        self.gain = 10 ** (self.rng.uniform(-12.0, 12.0) / 20) if self.kind != "silence" else 0.0

    def fill(self, x: np.ndarray) -> None:
        i, n = 0, len(x)
        while i < n:
            if self.left == 0:
                self._next()
            m = min(n - i, self.left, len(self.src) - self.pos)
            np.multiply(self.src[self.pos:self.pos + m], self.gain, out=x[i:i + m])
            self.kinds[self.kind] = self.kinds.get(self.kind, 0.0) + m / RATE
            i += m
            self.left -= m
            self.pos = (self.pos + m) % len(self.src)


def run(seconds: float, seed: int, out, summary_path: Path | None, max_block: int = 4096) -> dict:
    from dsp.chain import Chain

    rng = np.random.default_rng(seed)
    chain = Chain(RATE, channels=2, max_block=max_block)
    chain.set_output_bits(24)
    steps_total = int(round(seconds * RATE / STEP))
    warm_steps = int(min(WARMUP_S, seconds / 3) * RATE / STEP)
    x = np.zeros((STEP, 2))
    buf_y = np.zeros((max_block, 2))
    step_out = np.zeros((STEP, 2))
    rss: list[tuple[float, int]] = []
    rss_warm = None
    prog = Programme(build_pool(rng), rng)
    nonfinite = 0
    blocks = 0
    t0 = time.perf_counter()
    header = np.zeros(1)
    for k in range(steps_total):
        prog.fill(x)
        vals = random_values(rng)
        chain.set_values(vals)
        # any block partition: cut this step at random points
        i = 0
        while i < STEP:
            n = int(min(STEP - i, rng.integers(1, max_block + 1) if rng.random() < 0.3 else rng.integers(1, 600)))
            y = buf_y[:n]
            chain.process(x[i:i + n], y)
            step_out[i:i + n] = y
            i += n
            blocks += 1
        nonfinite += int(np.count_nonzero(~np.isfinite(step_out)))
        header[0] = vals["lim.ceiling_dbtp"]
        out.write(header.tobytes())
        out.write(step_out.astype(np.float32).tobytes())
        if k == warm_steps:
            rss_warm = rss_bytes()
        if k % 200 == 0:
            rss.append((round(k * STEP / RATE, 1), rss_bytes()))
    header[0] = np.nan
    out.write(header.tobytes())
    out.flush()
    wall = time.perf_counter() - t0
    rss_end = rss_bytes()
    result = {
        "seconds": steps_total * STEP / RATE, "seed": seed, "rate": RATE, "blocks": blocks,
        "steps": steps_total, "wall_s": round(wall, 2), "speed_x_realtime": round(steps_total * STEP / RATE / wall, 1),
        "rss_warm_bytes": rss_warm, "rss_end_bytes": rss_end,
        "rss_growth_bytes": rss_end - rss_warm if rss_warm is not None else None,
        "rss_max_bytes": max(v for _, v in rss) if rss else rss_end, "rss_samples": rss,
        "nonfinite_samples": nonfinite, "latency_samples": int(chain.latency_samples),
        "programme_s": {k: round(v, 1) for k, v in prog.kinds.items()},
    }
    if summary_path is not None:
        summary_path.write_text(json.dumps(result))
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--summary", type=Path)
    ap.add_argument("--check", action="store_true", help="run the checker on this run's output and print figures")
    args = ap.parse_args(argv)
    if args.check:
        sys.path.insert(0, str(ROOT / "tests" / "reliability"))
        from soakcheck import run_and_check

        res = run_and_check(args.seconds, args.seed)
        print(json.dumps(res, indent=1))
        return 0 if res["ok"] else 1
    run(args.seconds, args.seed, sys.stdout.buffer, args.summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
