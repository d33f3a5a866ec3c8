"""The soak's checker: reads ``bench/reliability_soak.py``'s output stream and checks it with oracles
independent of the chain (imports nothing of ours).

* finite: every sample;
* true peak: a 16x polyphase oversampler (scipy ``resample_poly``, Kaiser beta 10), chunked with
  overlap so an hour fits in memory, compared at every oversampled point with the ceiling in force.
  The ceiling itself is automated (a new random value every 50 ms, gliding with its 30 ms smoothing),
  so "the ceiling in force" at an output sample is the highest ceiling requested over the last
  300 ms (10 time constants: the glide is within 5e-5 of its target by then) -- a limiter that has
  not yet come down to a lowered ceiling is allowed that, a limiter that overshoots is not.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy import signal

RATE = 48000
STEP = RATE // 20
WINDOW_STEPS = 6  # 300 ms before the current step
CTX = 64  # input samples of context each side of a chunk (the filter spans +-10)
CHUNK_STEPS = 40
SOAK = Path(__file__).resolve().parents[2] / "bench" / "reliability_soak.py"


class Checker:
    def __init__(self):
        self.ceilings: list[float] = []
        self.buf = np.zeros((CTX, 2))
        self.env = np.full(CTX, 1.0)
        self.pending_y: list[np.ndarray] = []
        self.pending_e: list[np.ndarray] = []
        self.samples = 0
        self.nonfinite = 0
        self.worst_excess_db = -np.inf  # true peak minus the ceiling in force, worst case
        self.worst_at_s = None
        self.sample_over = 0
        self.steps_near_ceiling = 0  # steps whose true peak is within 1 dB of the ceiling in force

    def add_step(self, ceiling_db: float, y: np.ndarray) -> None:
        self.ceilings.append(ceiling_db)
        allowed = max(self.ceilings[-WINDOW_STEPS - 1:])
        self.nonfinite += int(np.count_nonzero(~np.isfinite(y)))
        self.pending_y.append(np.nan_to_num(y.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0))
        self.pending_e.append(np.full(len(y), 10 ** (allowed / 20)))
        if len(self.pending_y) >= CHUNK_STEPS:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        if self.pending_y:
            self.buf = np.vstack([self.buf, *self.pending_y])
            self.env = np.concatenate([self.env, *self.pending_e])
            self.pending_y, self.pending_e = [], []
        if final:
            self.buf = np.vstack([self.buf, np.zeros((CTX, 2))])
            self.env = np.concatenate([self.env, np.full(CTX, self.env[-1])])
        n = len(self.buf)
        if n < 3 * CTX:
            return
        up = signal.resample_poly(self.buf, 16, 1, axis=0, window=("kaiser", 10.0))
        lo, hi = CTX, n - CTX  # evaluate input positions [lo, hi)
        seg = np.max(np.abs(up[16 * lo:16 * hi]), axis=1).reshape(hi - lo, 16)
        e = np.maximum(self.env[lo:hi], self.env[lo + 1:hi + 1])
        ratio_db = 20 * np.log10(np.maximum(seg.max(axis=1), 1e-30) / e)
        k = int(np.argmax(ratio_db))
        if ratio_db[k] > self.worst_excess_db:
            self.worst_excess_db = float(ratio_db[k])
            self.worst_at_s = (self.samples + k) / RATE
        self.sample_over += int(np.count_nonzero(np.max(np.abs(self.buf[lo:hi]), axis=1) > self.env[lo:hi] * 1.0116))
        per_step = ratio_db[: (len(ratio_db) // STEP) * STEP].reshape(-1, STEP).max(axis=1)
        self.steps_near_ceiling += int(np.count_nonzero(per_step > -1.0))
        self.samples += hi - lo
        self.buf = self.buf[hi - CTX:]
        self.env = self.env[hi - CTX:]

    def finish(self) -> dict:
        self._flush(final=True)
        return {"samples_checked": self.samples, "nonfinite": self.nonfinite,
                "worst_true_peak_over_ceiling_db": round(self.worst_excess_db, 4), "worst_at_s": self.worst_at_s,
                "samples_over_ceiling_plus_0.1dB": self.sample_over, "steps": len(self.ceilings),
                "steps_within_1dB_of_ceiling": self.steps_near_ceiling}


def read_exact(f, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = f.read(n - len(data))
        if not chunk:
            raise EOFError(f"soak stream ended after {len(data)} of {n} bytes")
        data += chunk
    return data


def run_and_check(seconds: float, seed: int, python: str | None = None, tmpdir: Path | None = None) -> dict:
    """Run the soak in a child process and check its stream as it comes."""
    import tempfile

    tmpdir = Path(tmpdir or tempfile.mkdtemp(prefix="mbsoak"))
    summary = tmpdir / f"soak-{seed}.json"
    t0 = time.monotonic()
    proc = subprocess.Popen([python or sys.executable, str(SOAK), "--seconds", str(seconds), "--seed", str(seed),
                             "--summary", str(summary)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    chk = Checker()
    try:
        while True:
            c = np.frombuffer(read_exact(proc.stdout, 8), dtype=np.float64)[0]
            if np.isnan(c):
                break
            y = np.frombuffer(read_exact(proc.stdout, STEP * 2 * 4), dtype=np.float32).reshape(STEP, 2)
            chk.add_step(float(c), y)
        err = proc.stderr.read().decode(errors="replace")
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if rc != 0:
        raise AssertionError(f"soak process failed ({rc}): {err[-3000:]}")
    res = {"soak": json.loads(summary.read_text()), "check": chk.finish(),
           "wall_s": round(time.monotonic() - t0, 1)}
    s, c = res["soak"], res["check"]
    res["ok"] = bool(c["nonfinite"] == 0 and s["nonfinite_samples"] == 0 and c["worst_true_peak_over_ceiling_db"] <= 0.1
                     and s["rss_growth_bytes"] is not None and s["rss_growth_bytes"] <= 1 << 20)
    return res
