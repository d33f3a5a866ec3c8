"""Meter figures: kernel realtime factor, and ``masterbox analyze`` against ffmpeg's ebur128.

Run with ``masterbox bench --only meter`` (``--quick`` for a 60 s file and fewer repeats), or
``python bench/bench_meter.py [--quick] [--kernel-seconds S] [--file-seconds S] [--repeats N]``
(``--kernel-seconds 1 --file-seconds 2 --repeats 1`` only to see that it runs). Figures, never
pass/fail. All timings of one run are taken in the same conditions (alternating the two programs),
so their ratio is meaningful even when the machine is busy; the absolute numbers are not.

* ``kernel_realtime_x``: seconds of 48 kHz stereo audio metered (with true peak) per CPU second,
  calling the kernel once per 1024-frame block from numba code as the chain does; median of 5.
  On the demo mix most true-peak chunks are skipped (they cannot raise the peak);
  ``..._hot_master`` is a clipped loud master where none are (the worst case), and
  ``..._without_true_peak`` the loudness part alone.
* ``analyze_s`` / ``ffmpeg_s``: wall time of the whole ``masterbox analyze FILE --json`` process
  and of ``ffmpeg -nostats -i FILE -af ebur128=peak=true -f null -`` on the same 10-minute
  stereo 48 kHz 24-bit WAV (the dsp.programme demo music); median of 5, and their ratio; the
  ``_cpu_`` figures are the same runs' CPU time (user + system), less sensitive to other load.
* ``analysis_numpy_reader_cpu_s`` / ``analysis_libsndfile_cpu_s``: ``firmware.analysis.analyze_file``
  of the same file in this process, reading it with ``firmware/wav_reader.py`` (what it does) or
  with libsndfile (what it did until 2026-11-24); medians, alternating; the results must be equal.
* ``cold_start_s``: ``masterbox analyze`` of a 1 s file with an empty numba cache
  (``NUMBA_CACHE_DIR`` pointed at a fresh directory: every kernel compiles), ``warm_start_s``
  the same command once that cache is filled.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RATE = 48000
REPEATS = 5


def _masterbox() -> list[str]:
    exe = Path(sys.executable).with_name("masterbox")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "firmware.cli"]


def _timed(cmd: list[str], env: dict | None = None) -> float:
    """Wall seconds of one run of ``cmd``."""
    return _timed_cpu(cmd, env)[0]


def _timed_cpu(cmd: list[str], env: dict | None = None) -> tuple[float, float]:
    """(wall, CPU user+system) seconds of one run of ``cmd``; CPU time is steadier on a busy machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@functools.cache
def _block_loop():
    """The numba loop calling the kernel block by block (compiled once, outside every timing)."""
    from numba import njit

    from dsp.meter import meter_process

    @njit
    def meter_in_blocks(x, f, i, block):
        for start in range(0, x.shape[0], block):
            meter_process(x[start : start + block], f, i)

    return meter_in_blocks


def kernel_realtime(seconds: float, true_peak: bool = True, hot: bool = False, block: int = 1024) -> float:
    """Audio seconds per CPU second of the kernel, called once per ``block`` frames from numba
    code (as the chain calls it); ``hot`` meters a clipped, loud master instead of the mix."""
    import numpy as np

    from dsp.meter import LoudnessMeter
    from dsp.programme import render_programme

    x = render_programme(seconds, RATE, seed=0)
    if hot:
        x = np.clip(4.0 * x, -1.0, 1.0)
    loop = _block_loop()
    m = LoudnessMeter(RATE, 2, true_peak=true_peak)
    loop(x[:block], m.f, m.i, block)  # compile outside the timing
    times = []
    for _ in range(REPEATS):
        m.reset()
        t = time.process_time()
        loop(x, m.f, m.i, block)
        times.append(time.process_time() - t)
    return seconds / statistics.median(times)


def _write_wav(path: Path, seconds: float) -> None:
    import soundfile as sf

    from dsp.programme import render_programme

    sf.write(path, render_programme(seconds, RATE, seed=0), RATE, subtype="PCM_24")


def reader_figures(wav: Path, repeats: int) -> dict:
    """CPU seconds of one analysis of ``wav`` read by numpy and by libsndfile, in this process."""
    import soundfile as sf

    from firmware import analysis

    numpy_open = analysis._open
    readers = {"numpy_reader": numpy_open, "libsndfile": lambda p: sf.SoundFile(str(p))}
    analysis.analyze_file(wav)      # kernels loaded outside the timing
    times: dict[str, list[float]] = {k: [] for k in readers}
    results = {}
    try:
        for _ in range(repeats):
            for name, opener in readers.items():
                analysis._open = opener
                t = time.process_time()
                results[name] = analysis.analyze_file(wav)
                times[name].append(time.process_time() - t)
    finally:
        analysis._open = numpy_open
    if results["numpy_reader"] != results["libsndfile"]:
        raise AssertionError(f"the two readers disagree: {results}")
    return {f"analysis_{k}_cpu_s": round(statistics.median(v), 3) for k, v in times.items()}


def run(quick: bool = False, kernel_seconds: float | None = None, file_seconds: float | None = None,
        repeats: int | None = None) -> dict:
    """Every figure: 60 s through the kernel, a 10-minute file, 5 repeats (``quick``: 20 s, 60 s, 3);
    each of the three can be given instead."""
    seconds = file_seconds or (60.0 if quick else 600.0)
    repeats = repeats or (3 if quick else REPEATS)
    out: dict = {}
    kernel_s = kernel_seconds or (20.0 if quick else 60.0)
    out["kernel_realtime_x"] = round(kernel_realtime(kernel_s))
    out["kernel_realtime_x_hot_master"] = round(kernel_realtime(kernel_s, hot=True))
    out["kernel_realtime_x_without_true_peak"] = round(kernel_realtime(kernel_s, true_peak=False))

    work = Path(tempfile.mkdtemp(prefix="bench_meter_"))
    try:
        wav = work / "programme.wav"
        _write_wav(wav, seconds)
        analyze = [*_masterbox(), "analyze", str(wav), "--json"]
        ffmpeg = ["ffmpeg", "-nostats", "-hide_banner", "-i", str(wav), "-af", "ebur128=peak=true", "-f", "null", "-"]
        _timed(analyze)  # page the file in and make sure the numba cache is warm
        _timed(ffmpeg)
        ours, theirs = [], []
        for _ in range(repeats):  # alternate so both see the same machine load
            ours.append(_timed_cpu(analyze))
            theirs.append(_timed_cpu(ffmpeg))
        wall_ours = statistics.median(w for w, _ in ours)
        wall_theirs = statistics.median(w for w, _ in theirs)
        cpu_ours = statistics.median(c for _, c in ours)
        cpu_theirs = statistics.median(c for _, c in theirs)
        out["file"] = f"{seconds:.0f} s stereo {RATE} Hz PCM_24 WAV"
        out["analyze_s"] = round(wall_ours, 3)
        out["ffmpeg_ebur128_s"] = round(wall_theirs, 3)
        out["analyze_over_ffmpeg"] = round(wall_ours / wall_theirs, 3)
        out["analyze_cpu_s"] = round(cpu_ours, 3)
        out["ffmpeg_ebur128_cpu_s"] = round(cpu_theirs, 3)
        out["analyze_over_ffmpeg_cpu"] = round(cpu_ours / cpu_theirs, 3)
        out.update(reader_figures(wav, repeats))

        short = work / "short.wav"
        _write_wav(short, 1.0)
        env = dict(os.environ, NUMBA_CACHE_DIR=str(work / "numba-cache"))
        cmd = [*_masterbox(), "analyze", str(short)]
        wall, cpu = _timed_cpu(cmd, env=env)
        out["cold_start_s"], out["cold_start_cpu_s"] = round(wall, 3), round(cpu, 3)
        warm = [_timed_cpu(cmd, env=env) for _ in range(repeats)]
        out["warm_start_s"] = round(statistics.median(w for w, _ in warm), 3)
        out["warm_start_cpu_s"] = round(statistics.median(c for _, c in warm), 3)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out["repeats"] = repeats
    out["load_average_1min"] = round(os.getloadavg()[0], 2)
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="20 s through the kernel, a 60 s file, 3 repeats")
    ap.add_argument("--kernel-seconds", type=float, help="audio through the kernel (default 60)")
    ap.add_argument("--file-seconds", type=float, help="length of the file analysed (default 600)")
    ap.add_argument("--repeats", type=int, help="repeats of the whole processes (default 5)")
    a = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    print(json.dumps(run(a.quick, a.kernel_seconds, a.file_seconds, a.repeats), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
