"""The costs of what the engine does after the chain for listening: the reference track (in the audio
loop, and to prepare one) and the listening modes (mono, side, ...).

    python bench/bench_reference.py                  # 3 rounds
    python bench/bench_reference.py --rounds 5 --json
    python bench/bench_reference.py --rounds 1 --seconds 2 --file-seconds 5   # only to see that it runs
    masterbox bench --only reference [--quick]

Figures, never pass/fail.

* **Loop**: what the engine does per 128-frame block at 48 kHz with the reference switched on,
  against the chain alone (the ``streaming`` preset on the demo programme): ``Chain.process``,
  then :func:`dsp.reference_mix.mix` over a prepared reference mapped as the engine maps it.
  A third mode adds :func:`dsp.monitor.listen` in ``mono`` after it (REF heard in mono).
  Block time p50 / p99 / max in microseconds, the modes alternating round by round in one process,
  medians over rounds; and the mix and listen kernels alone in ns per stereo frame.
* **Preparing**: ``python -m firmware.reference`` (the worker the control process starts) on a
  5-minute (``--file-seconds``) 44.1 kHz 24-bit stereo WAV converted to 48 kHz, and on a 48 kHz one (no conversion):
  wall and CPU seconds of the whole process (reading, converting, measuring, the long-term spectrum,
  writing), medians over rounds; and the prepared file's size.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RATE = 48000
BLOCK = 128


def _blocks(x: np.ndarray, ref: np.ndarray | None, mono: bool = False) -> np.ndarray:
    from dsp import monitor, reference_mix, schema
    from dsp.chain import Chain

    chain = Chain(RATE, 2, BLOCK)
    preset = json.loads((ROOT / "dsp" / "presets" / "streaming.json").read_text())["params"]
    chain.set_values(schema.validate({**schema.defaults(), **preset}))
    state = reference_mix.new_state()
    fade = 0.05 * RATE
    mstate = monitor.new_state()
    mode = monitor.MODES.index("mono")
    y = np.zeros((BLOCK, 2))
    n = len(x) // BLOCK
    out = np.empty(n, dtype=np.int64)
    perf = time.perf_counter_ns
    mix = reference_mix.mix
    for k in range(n):
        t0 = perf()
        chain.process(x[k * BLOCK:(k + 1) * BLOCK], y)
        if ref is not None:
            mix(y, ref, state, True, 0.5, fade, 0.01)
        if mono:
            monitor.listen(y, mstate, mode, 960.0, 1.0)
        out[k] = perf() - t0
    return out


def _mix_alone(ref: np.ndarray, seconds: float = 20.0) -> float:
    from dsp import reference_mix

    state = reference_mix.new_state()
    y = np.zeros((BLOCK, 2))
    n = int(seconds * RATE) // BLOCK
    reference_mix.mix(y, ref, state, True, 0.5, 2400.0, 0.01)
    t0 = time.process_time_ns()
    for _ in range(n):
        reference_mix.mix(y, ref, state, True, 0.5, 2400.0, 0.01)
    return (time.process_time_ns() - t0) / (n * BLOCK)


def _listen_alone(seconds: float = 20.0) -> float:
    from dsp import monitor

    state = monitor.new_state()
    y = np.zeros((BLOCK, 2))
    n = int(seconds * RATE) // BLOCK
    monitor.listen(y, state, 1, 960.0, 1.0)
    t0 = time.process_time_ns()
    for _ in range(n):
        monitor.listen(y, state, 1, 960.0, 1.0)
    return (time.process_time_ns() - t0) / (n * BLOCK)


def _prepare(src: Path, dst: Path) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "firmware.reference", str(src), str(dst), str(RATE)], check=True,
                   cwd=str(ROOT), capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _length(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds % 60 == 0 else f"{seconds:g} s"


def measure(rounds: int = 3, seconds: float = 30.0, file_seconds: float = 300.0) -> dict:
    """{"loop": ..., "prepare": ...}: ``seconds`` of audio per loop mode and round, files of
    ``file_seconds`` to prepare."""
    import soundfile as sf

    from dsp.programme import render_programme
    from firmware.reference import open_prepared, prepare

    figures: dict = {"loop": {}, "prepare": {}}
    with tempfile.TemporaryDirectory(prefix="mb-bench-ref-") as tmp:
        tmp = Path(tmp)
        x = render_programme(seconds, RATE, seed=3, peak_dbfs=-6.0)
        long44, long48 = tmp / "record44.wav", tmp / "record48.wav"
        sf.write(str(long44), render_programme(file_seconds, 44100, seed=4, peak_dbfs=-1.0), 44100, subtype="PCM_24")
        sf.write(str(long48), render_programme(file_seconds, RATE, seed=4, peak_dbfs=-1.0), RATE, subtype="PCM_24")
        prepare(long44, tmp / "ref.f32", RATE)
        ref, _ = open_prepared(tmp / "ref.f32", RATE)
        runs: dict[str, list] = {"chain": [], "chain+reference": [], "chain+reference+mono": []}
        for _ in range(rounds):
            for mode in runs:
                ns = _blocks(x, ref if mode != "chain" else None, mono=mode.endswith("mono"))
                runs[mode].append([np.percentile(ns, 50) / 1e3, np.percentile(ns, 99) / 1e3, ns.max() / 1e3])
        for mode, rows in runs.items():
            figures["loop"][mode] = {k: round(statistics.median(r[i] for r in rows), 2)
                                     for i, k in enumerate(("p50_us", "p99_us", "max_us"))}
        figures["loop"]["mix_ns_per_frame"] = round(statistics.median(_mix_alone(ref) for _ in range(rounds)), 2)
        listen = statistics.median(_listen_alone() for _ in range(rounds))
        figures["loop"]["listen_ns_per_frame"] = round(listen, 2)
        length = _length(file_seconds)
        for name, src in ((f"{length} 44.1 kHz -> 48 kHz", long44), (f"{length} 48 kHz", long48)):
            rows = [_prepare(src, tmp / "p.f32") for _ in range(rounds)]
            figures["prepare"][name] = {"wall_s": round(statistics.median(r[0] for r in rows), 2),
                                        "cpu_s": round(statistics.median(r[1] for r in rows), 2),
                                        "file_mb": round((tmp / "p.f32").stat().st_size / 1e6, 1)}
    return figures


def run(quick: bool = False) -> dict:
    """For ``masterbox bench``: 3 rounds of 30 s and 5-minute files, or 1 round of 10 s and 1-minute files
    with ``quick``."""
    return measure(1, 10.0, 60.0) if quick else measure()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=30.0, help="audio per loop mode and round")
    ap.add_argument("--file-seconds", type=float, default=300.0, help="length of the two files prepared")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    figures = measure(args.rounds, args.seconds, args.file_seconds)
    if args.json:
        print(json.dumps(figures))
    else:
        for mode in ("chain", "chain+reference", "chain+reference+mono"):
            f = figures["loop"][mode]
            print(f"{mode:21s} block p50 {f['p50_us']:7.2f} us  p99 {f['p99_us']:7.2f} us  max {f['max_us']:8.1f} us")
        print(f"mix kernel alone: {figures['loop']['mix_ns_per_frame']} ns per stereo frame")
        print(f"listen kernel alone (mono): {figures['loop']['listen_ns_per_frame']} ns per stereo frame")
        for name, f in figures["prepare"].items():
            print(f"prepare {name}: {f['wall_s']} s wall, {f['cpu_s']} s CPU, {f['file_mb']} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
