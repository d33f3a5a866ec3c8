"""Chain figures: kernel realtime factor and block times, and ``masterbox master`` against ffmpeg.

Run with ``masterbox bench --only chain`` (``--quick``: 60 s file, 3 repeats) or
``python bench/bench_chain.py [--quick] [--kernel-seconds S] [--file-seconds S] [--repeats N]``
(``--kernel-seconds 1 --file-seconds 3 --repeats 1`` only to see that it runs). Figures, never
pass/fail. The machine may be shared and loaded: the whole-process comparisons alternate the
programs inside each repeat and quote medians and ratios of CPU time (user + system), which load
disturbs least.

* ``rt_x_block_N``: seconds of 48 kHz stereo audio per CPU second through the full
  ``streaming`` chain (meters included, driven into the limiter) at block size N, one
  ``Chain.process`` call per block from Python, as the engine's audio loop does.
* ``block_us_N_p50/p99/p99.9/max``: wall time of single ``process`` calls at N = 64 and 128,
  and the same as a fraction of the block period (``..._p99.9_of_period``).
* whole processes on the same 5-minute stereo 48 kHz 24-bit WAV (dsp.programme music at
  -6 dBFS peak), median of 5:
  - ``master``: ``masterbox master IN OUT --preset streaming`` (drive search: several passes,
    plus the input and output analysis it prints);
  - ``master_1pass``: the same chain in one pass at a fixed drive (a user preset that is the
    streaming preset with ``level_to_target: false`` and the drive the search found);
  - ``ffmpeg_chain``: ffmpeg graph doing comparable work (FFMPEG_GRAPH: high-pass, 6
    ``equalizer`` bands, ``acrossover`` into 3 bands with an ``acompressor`` each, ``amix``,
    gain, ``alimiter`` at -1 dB);
  - ``x42_limiter``: x42-dpl alone through ffmpeg's lv2 filter (true-peak mode, -1 dB);
  - ``ffmpeg_chain_1thread``, ``x42_limiter_1thread``: the same two on one filter thread
    (``-filter_complex_threads 1`` / ``-filter_threads 1``): ffmpeg's graph threads wait on each
    other through futexes, and on this VM that costs more CPU than the filters themselves, so
    these are the peers' own work (2026-11-24, docs/chain.md);
  - ``master_3s``: ``masterbox master`` (streaming, drive search) on a 3-second file of the same
    music: the fixed cost of a run (Python, numba, loading the kernels);
  - ``master_jit``, ``master_3s_jit``: ``master`` and ``master_3s`` with ``MASTERBOX_AOT=0``, i.e.
    the JIT kernels from numba's cache instead of the ahead-of-time build (``dsp/aot.py``;
    ``aot_built`` says whether a fresh build was there for the other rows to use);
  and each output's true peak by ffmpeg's ebur128 (``tp_*``).
* with ``MASTERBOX_BENCH_BEFORE=DIR`` (a checkout of another commit, its own kernels built by
  ``PYTHONPATH=DIR python -m firmware.warmup``): ``master_before`` and ``master_3s_before``, the
  same two commands run from that checkout (``PYTHONPATH=DIR``), alternating with the others in
  the same repeats: a before/after comparison that the machine's load cannot skew.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RATE = 48000
BLOCKS = (32, 64, 128, 256, 1024)
DRIVE_FOR_KERNEL = 8.0   # dB: the demo music at -6 dBFS peak then sits around -14 LUFS, limiting
X42_URI = r"http\\://gareus.org/oss/lv2/dpl#stereo"
X42_FILTER = f"volume={{gain}}dB,lv2=p={X42_URI}:c=threshold=-1|truepeak=1"
FFMPEG_GRAPH = (
    "[0:a]highpass=f=20:poles=2,"
    "equalizer=f=55:t=q:w=0.7:g=0.8,equalizer=f=280:t=q:w=0.9:g=-1,equalizer=f=3200:t=q:w=0.8:g=0.6,"
    "equalizer=f=1500:t=q:w=0.7:g=0,equalizer=f=9000:t=q:w=0.7:g=1,equalizer=f=14000:t=q:w=0.7:g=0.5,"
    "acrossover=split=150 3500:order=4th[l][m][h];"
    "[l]acompressor=threshold=0.1:ratio=2:attack=30:release=220:knee=2.5[lc];"
    "[m]acompressor=threshold=0.079:ratio=1.7:attack=20:release=160:knee=3.2[mc];"
    "[h]acompressor=threshold=0.05:ratio=2:attack=6:release=90:knee=2.5[hc];"
    "[lc][mc][hc]amix=inputs=3:normalize=0,volume={gain}dB,"
    "alimiter=limit=0.891:attack=1.33:release=60:level=disabled[out]"
)


def _masterbox() -> list[str]:
    exe = Path(sys.executable).with_name("masterbox")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "firmware.cli"]


def _timed_cpu(cmd: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(wall, CPU user+system, stdout) of one run of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc.stdout


def true_peak(path: Path) -> float:
    """True peak of a file by ffmpeg's ebur128 (full precision from its metadata)."""
    proc = subprocess.run(
        ["ffmpeg", "-nostats", "-hide_banner", "-i", str(path), "-af",
         "ebur128=peak=true:metadata=1,ametadata=mode=print:key=lavfi.r128.true_peak:file=-",
         "-f", "null", "-"], capture_output=True, text=True, check=True)
    values = [float(v) for v in re.findall(r"lavfi\.r128\.true_peak=([\d.]+)", proc.stdout)]
    import math

    return round(20 * math.log10(max(values)), 3) if values and max(values) > 0 else float("-inf")


def kernel_figures(seconds: float) -> dict:
    import json as _json

    import numpy as np

    from dsp import schema
    from dsp.chain import Chain
    from dsp.programme import render_programme

    params = _json.loads((Path(schema.__file__).parent / "presets" / "streaming.json").read_text())["params"]
    x = np.ascontiguousarray(render_programme(seconds, RATE, seed=1, peak_dbfs=-6.0))
    y = np.zeros_like(x)
    out: dict = {}
    for block in BLOCKS:
        c = Chain(RATE, max_block=block)
        c.set_values(params | {"out.drive_db": DRIVE_FOR_KERNEL})
        c.set_output_bits(24)
        c.process(x[:block], y[:block])           # compiled / loaded before timing
        c.reset()
        c.set_values(params | {"out.drive_db": DRIVE_FOR_KERNEL})
        times = np.empty(len(x) // block)
        cpu0 = time.process_time()
        for k in range(len(times)):
            i = k * block
            t0 = time.perf_counter_ns()
            c.process(x[i:i + block], y[i:i + block])
            times[k] = time.perf_counter_ns() - t0
        cpu = time.process_time() - cpu0
        out[f"rt_x_block_{block}"] = round(len(times) * block / RATE / cpu, 1)
        if block in (64, 128):
            us = times / 1000.0
            period = block / RATE * 1e6
            for name, q in (("p50", 50), ("p99", 99), ("p99.9", 99.9)):
                out[f"block_us_{block}_{name}"] = round(float(np.percentile(us, q)), 1)
            out[f"block_us_{block}_max"] = round(float(us.max()), 1)
            out[f"block_us_{block}_p99.9_of_period"] = round(float(np.percentile(us, 99.9)) / period, 3)
    out["kernel_seconds_of_audio"] = seconds
    return out


def process_figures(seconds: float, repeats: int) -> dict:
    import numpy as np
    import soundfile as sf

    from dsp.programme import render_programme

    work = Path(tempfile.mkdtemp(prefix="mb-bench-chain-"))
    try:
        src = work / "in.wav"
        music = render_programme(seconds, RATE, seed=3, peak_dbfs=-6.0)
        sf.write(src, music, RATE, subtype="PCM_24")
        short = work / "in_3s.wav"
        sf.write(short, music[:3 * RATE], RATE, subtype="PCM_24")
        outs = {k: work / f"{k}.wav" for k in ("master", "master_1pass", "ffmpeg_chain", "x42_limiter", "master_3s",
                                               "master_jit", "master_3s_jit", "ffmpeg_chain_1thread",
                                               "x42_limiter_1thread")}
        env = dict(os.environ, MASTERBOX_HOME=str(work / "home"))
        env_jit = dict(env, MASTERBOX_AOT="0")
        mb = _masterbox()
        master_cmd = [*mb, "master", str(src), str(outs["master"]), "--preset", "streaming", "--json"]
        # one untimed run: warms the numba cache and finds the drive the single-pass run uses
        doc = json.loads(_timed_cpu(master_cmd, env)[2])
        drive = doc["drive_db"]
        preset = json.loads((Path(__file__).resolve().parents[1] / "dsp" / "presets" / "streaming.json").read_text())
        preset.update(name="bench-fixed-drive", level_to_target=False)
        preset["params"]["out.drive_db"] = drive
        (work / "home" / "presets").mkdir(parents=True, exist_ok=True)
        (work / "home" / "presets" / "bench.json").write_text(json.dumps(preset))
        cmds = {
            "master": master_cmd,
            "master_1pass": [*mb, "master", str(src), str(outs["master_1pass"]), "--preset", "bench-fixed-drive"],
            "ffmpeg_chain": ["ffmpeg", "-nostats", "-hide_banner", "-y", "-i", str(src), "-filter_complex",
                             FFMPEG_GRAPH.format(gain=f"{drive:.2f}"), "-map", "[out]", "-c:a", "pcm_s24le",
                             str(outs["ffmpeg_chain"])],
            "x42_limiter": ["ffmpeg", "-nostats", "-hide_banner", "-y", "-i", str(src), "-af",
                            X42_FILTER.format(gain=f"{drive:.2f}"), "-c:a", "pcm_s24le", str(outs["x42_limiter"])],
            # the same graphs on one filter thread: ffmpeg's graph threads synchronise through
            # futexes, which on this VM cost more CPU than the filters (strace, docs/chain.md)
            "ffmpeg_chain_1thread": ["ffmpeg", "-nostats", "-hide_banner", "-filter_complex_threads", "1", "-y",
                                     "-i", str(src), "-filter_complex", FFMPEG_GRAPH.format(gain=f"{drive:.2f}"),
                                     "-map", "[out]", "-c:a", "pcm_s24le", str(outs["ffmpeg_chain_1thread"])],
            "x42_limiter_1thread": ["ffmpeg", "-nostats", "-hide_banner", "-filter_threads", "1", "-y", "-i",
                                    str(src), "-af", X42_FILTER.format(gain=f"{drive:.2f}"), "-c:a", "pcm_s24le",
                                    str(outs["x42_limiter_1thread"])],
            "master_3s": [*mb, "master", str(short), str(outs["master_3s"]), "--preset", "streaming", "--json"],
            "master_jit": [*mb, "master", str(src), str(outs["master_jit"]), "--preset", "streaming", "--json"],
            "master_3s_jit": [*mb, "master", str(short), str(outs["master_3s_jit"]), "--preset", "streaming",
                              "--json"],
        }
        envs = {k: env_jit if k.endswith("_jit") else env for k in cmds}
        before = os.environ.get("MASTERBOX_BENCH_BEFORE")
        if before:
            env_before = dict(env, PYTHONPATH=before)
            for k in ("master", "master_3s"):
                outs[f"{k}_before"] = work / f"{k}_before.wav"
                cmds[f"{k}_before"] = [*cmds[k][:-4], str(outs[f"{k}_before"]), *cmds[k][-3:]]
                envs[f"{k}_before"] = env_before
            _timed_cpu(cmds["master_3s_before"], env_before)   # untimed: its caches warm too
        _timed_cpu(cmds["master_3s_jit"], env_jit)    # untimed: the JIT kernels' cache warm too
        wall: dict[str, list] = {k: [] for k in cmds}
        cpu: dict[str, list] = {k: [] for k in cmds}
        for _ in range(repeats):
            for k, cmd in cmds.items():
                w, c, _ = _timed_cpu(cmd, envs[k])
                wall[k].append(w)
                cpu[k].append(c)
        out: dict = {"file_seconds": seconds, "repeats": repeats, "drive_db": round(drive, 2),
                     "master_passes": doc["passes"], "master_message": doc["message"]}
        for k in cmds:
            out[f"{k}_wall_s"] = round(statistics.median(wall[k]), 2)
            out[f"{k}_cpu_s"] = round(statistics.median(cpu[k]), 2)
            out[f"tp_{k}_dbtp"] = true_peak(outs[k])
        for ours in [k for k in ("master", "master_1pass", "master_jit", "master_before") if k in cmds]:
            out[f"cpu_ratio_{ours}_vs_ffmpeg_chain"] = round(out[f"{ours}_cpu_s"] / out["ffmpeg_chain_cpu_s"], 3)
            out[f"cpu_ratio_{ours}_vs_x42_limiter"] = round(out[f"{ours}_cpu_s"] / out["x42_limiter_cpu_s"], 3)
            for peer in ("ffmpeg_chain_1thread", "x42_limiter_1thread"):
                out[f"cpu_ratio_{ours}_vs_{peer}"] = round(out[f"{ours}_cpu_s"] / out[f"{peer}_cpu_s"], 3)
        out["commands"] = {k: ("MASTERBOX_AOT=0 " if k.endswith("_jit") else "")
                           + (f"PYTHONPATH={before} " if k.endswith("_before") else "") + " ".join(v)
                           for k, v in cmds.items()}
        out["aot_built"] = _aot_built()
        out["lufs_master"] = doc["output"]["integrated_lufs"]
        del np
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _aot_built() -> bool:
    """Whether a fresh ahead-of-time build exists (what ``master`` then uses)."""
    from dsp import aot

    return aot.load() is not None


def run(quick: bool = False, kernel_seconds: float | None = None, file_seconds: float | None = None,
        repeats: int | None = None) -> dict:
    """Every figure: 60 s through the kernel, a 5-minute file, 5 repeats (``quick``: 10 s, 60 s, 3);
    each of the three can be given instead."""
    figures = {"date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
               "cpu": _cpu_name(), "load_1min": round(os.getloadavg()[0], 2)}
    figures.update(kernel_figures(kernel_seconds or (10.0 if quick else 60.0)))
    figures.update(process_figures(file_seconds or (60.0 if quick else 300.0), repeats or (3 if quick else 5)))
    return figures


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10 s through the kernel, a 60 s file, 3 repeats")
    ap.add_argument("--kernel-seconds", type=float, help="audio through the kernel per block size (default 60)")
    ap.add_argument("--file-seconds", type=float, help="length of the file the whole processes master (default 300)")
    ap.add_argument("--repeats", type=int, help="repeats of the whole processes (default 5)")
    a = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    json.dump(run(a.quick, a.kernel_seconds, a.file_seconds, a.repeats), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
