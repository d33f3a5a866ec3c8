"""What the spectrum analyser costs: the audio loop's tap, and the control process's analysis.

    python bench/bench_spectrum.py [--quick]
    masterbox bench --only spectrum

Figures, never pass/fail.

* ``tap_us_*``: :func:`dsp.scope_tap.tap_block` per block (64/128/256 frames at 48 kHz), timed one
  call at a time with ``perf_counter_ns`` into the engine's own ring (as
  :meth:`firmware.engine.Engine.attach_scope` makes it): p50 / p99 / max in microseconds, and p50 as
  a share of the ``streaming`` chain's own p50 block time measured in the same run
  (``Chain.process``, demo programme). This is the audio loop's whole share of the analyser.
* ``publish_us``: :func:`dsp.scope_tap.publish`, the meter publisher's copy of one 40 ms tick
  (1920 frames) into the memory-mapped ring of a real :class:`firmware.scope_shm.ScopeWriter`
  (without the interpreter lock): p50 / p99 / max.
* ``analysis_ms_*``: one :meth:`firmware.spectrum.SpectrumAnalyser.latest` (read the ring, window,
  three FFTs, bands) at 48 and 96 kHz, CPU time (``thread_time``), median of the runs, and the
  share of one core it takes at its 10 Hz ceiling while a Live page is visible; ``vectorscope_ms_*``
  the same for :meth:`firmware.vectorscope.Vectorscope.latest` (40 ms of the output as points).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dsp import schema  # noqa: E402
from dsp.chain import Chain  # noqa: E402
from dsp.programme import render_programme  # noqa: E402
from dsp.scope_tap import warm  # noqa: E402
from firmware.presets import PresetStore  # noqa: E402
from firmware.scope_shm import ScopeReader, ScopeWriter  # noqa: E402
from firmware.spectrum import MIN_INTERVAL_S, SpectrumAnalyser  # noqa: E402
from firmware.vectorscope import Vectorscope  # noqa: E402

RATE = 48000


def _times_us(fn, n: int) -> np.ndarray:
    perf = time.perf_counter_ns
    out = np.empty(n)
    for k in range(n):
        t0 = perf()
        fn()
        out[k] = (perf() - t0) / 1000
    return out


def run(quick: bool = False) -> dict:
    results: dict = {}
    tap, publish = warm()
    seconds = 10 if quick else 60
    x = render_programme(seconds, RATE, seed=3, peak_dbfs=-6.0)
    with tempfile.TemporaryDirectory() as d:
        w = ScopeWriter(RATE, Path(d) / "scope.shm")
        own, head, done = np.zeros_like(w.ring), np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
        chain = Chain(RATE, max_block=256)
        chain.set_values({**schema.defaults(), **PresetStore().get("streaming").params})
        y = np.zeros((256, 2))
        for period in (64, 128, 256):
            blocks = [np.ascontiguousarray(x[k:k + period]) for k in range(0, len(x) - period, period)]
            out = np.zeros((period, 2))
            feed = iter(blocks)
            taps = _times_us(lambda feed=feed, out=out: tap(own, head, next(feed), out), len(blocks))
            feed = iter(blocks)
            proc = _times_us(lambda feed=feed, yv=y[:period]: chain.process(next(feed), yv), len(blocks))
            p50 = float(np.percentile(taps, 50))
            results[f"tap_us_{period}"] = (f"p50 {p50:.2f}, p99 {np.percentile(taps, 99):.2f}, max {taps.max():.1f} "
                                           f"= {100 * p50 / float(np.percentile(proc, 50)):.2f} % of the chain's p50 "
                                           f"block ({np.percentile(proc, 50):.1f} us)")
        tick = np.zeros((1920, 2))

        def one_tick():
            tap(own, head, tick, tick)
            t0 = time.perf_counter_ns()
            publish(own, head, w.ring, w.head, done)
            return (time.perf_counter_ns() - t0) / 1000

        pub = np.array([one_tick() for _ in range(200 if quick else 1500)])
        results["publish_us"] = (f"p50 {np.percentile(pub, 50):.1f}, p99 {np.percentile(pub, 99):.1f}, "
                                 f"max {pub.max():.1f} per 40 ms tick (1920 frames)")
        w.close()
        for rate in (48000, 96000):
            w = ScopeWriter(rate, Path(d) / "scope.shm")
            n = w.ring.shape[0]
            w.ring[:] = np.random.default_rng(1).standard_normal((n, 4)) * 0.1
            w.head[0] = n
            for key, view in (("analysis", SpectrumAnalyser), ("vectorscope", Vectorscope)):
                an = view(ScopeReader(Path(d) / "scope.shm"), min_interval=0)
                an.latest()
                cpu = []
                for _ in range(10 if quick else 40):
                    w.head[0] += 64       # "new audio": the reader would call a still ring stalled
                    c0 = time.thread_time()
                    an.latest()
                    cpu.append(time.thread_time() - c0)
                med = statistics.median(cpu)
                results[f"{key}_ms_{rate // 1000}k"] = (f"{1000 * med:.2f} ms CPU per analysis = "
                                                        f"{100 * med / MIN_INTERVAL_S:.1f} % of a core at 10 Hz")
            w.close()
    return results


if __name__ == "__main__":
    for k, v in run(quick="--quick" in sys.argv).items():
        print(f"{k}: {v}")
