"""Engine figures on the paced rig: block times, load, xruns, start-up and latency.

The rig is the one the tests use (tests/engine/conftest.py): ``jackd -d dummy`` at 48 kHz with
the period under test, behind ALSA ``type file`` PCMs over a ``type jack`` PCM, and
``masterbox engine --backend alsa`` streaming the ``streaming`` preset through it as a
subprocess, exactly as on the box. Nothing here passes or fails; it prints what it measured.

* per period size (64, 128, 256 frames, 2 periods): block processing time percentiles, max load
  (processing time / period), xruns, and xruns per hour extrapolated from the run length (with
  zero xruns the honest statement is an upper bound: fewer than one per run length);
* round-trip latency = buffers (period x periods) + chain latency, in ms;
* start-up: from spawning the process to the first dry period and to the first processed
  period, with a warm kernel cache and with a cold one (an empty NUMBA_CACHE_DIR: everything
  compiles; not run with --quick).
* ``--pinning``: only the A/B of ``--cpu`` (the loop on the last CPU alone) against no pin, at
  64 frames, runs alternating (:func:`pinning_ab`).

``python bench/bench_engine.py [--quick] [--seconds S] [--periods 64,128,256] [--pinning]`` or ``masterbox
bench --only engine [--quick]``: 60 s per period, 8 s with ``--quick``, ``--seconds`` for any other length
(``--quick --seconds 1 --periods 128`` only sees that it runs: the warm start-up then streams 1 s too).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RATE = 48000
PERIODS = (64, 128, 256)


def _engine(args: list[str], env: dict, timeout: float) -> tuple[dict, float]:
    """Run ``masterbox engine`` with ``args``; return its stats and the spawn time (monotonic)."""
    exe = Path(sys.executable).with_name("masterbox")
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "firmware.cli"]
    stats = Path(env["MASTERBOX_HOME"]) / "stats.json"
    t_spawn = time.monotonic()
    r = subprocess.run([*base, "engine", *args, "--stats-json", str(stats), "--quiet"], env=env,
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"engine failed: {r.stderr[-1500:]}")
    return json.loads(stats.read_text()), t_spawn


def _rig(work: Path, period: int):
    import tests.engine.conftest as rigmod
    from hw.audio.formats import to_bytes
    from tests.engine.conftest import AlsaRig, JackServer, programme

    rigmod.JACK_PERIOD = period  # the JACK dummy driver runs at the period under test
    server = JackServer(f"mbbench{os.getpid()}p{period}", work / f"jackd-{period}.log")
    server.start()
    rig = AlsaRig(work / f"xdg{period}", work / "in.raw", work / f"out{period}.raw")
    rig.write(slave="jack")
    if not rig.infile.exists():
        rig.infile.write_bytes(to_bytes(programme(4.0, RATE, seed=2), "S32_LE"))
    home = work / f"home{period}"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "XDG_CONFIG_HOME": str(rig.root), "MASTERBOX_HOME": str(home),
           "MASTERBOX_CONFIG": str(work / "none.toml")}
    env.update({k: server.env[k] for k in ("JACK_DEFAULT_SERVER", "JACK_NO_AUDIO_RESERVATION", "JACK_NO_START_SERVER")})
    return server, rig, env


def _stream_args(period: int, duration: float, wait_ready: bool = True) -> list[str]:
    args = ["--backend", "alsa", "--capture-device", "mbin", "--playback-device", "mbout", "--rate", str(RATE),
            "--period", str(period), "--periods", "2", "--format", "S32_LE", "--preset", "streaming",
            "--duration", str(duration)]
    return [*args, "--wait-ready"] if wait_ready else args


def _per_period(work: Path, period: int, seconds: float) -> dict:
    server, rig, env = _rig(work, period)
    try:
        s, _ = _engine(_stream_args(period, seconds), env, timeout=seconds + 600)
    finally:
        server.cleanup()
        rig.outfile.unlink(missing_ok=True)
    streamed = s["blocks"] * period / RATE
    per_hour = s["xruns"] * 3600.0 / streamed if streamed else None
    return {
        "seconds": round(streamed, 1),
        "block_time_us": s["block_time_us"],
        "max_load": s["max_load"],
        "xruns": s["xruns"],
        "xruns_per_hour": (round(per_hour, 1) if s["xruns"] else f"0 in {streamed:.0f} s (< {3600 / streamed:.0f}/h)"),
        "xrun_log": s.get("xrun_log", []),
        "latency_ms": round((s["io_latency_samples"] + s["latency_samples"]) * 1000.0 / RATE, 2),
        "io_latency_samples": s["io_latency_samples"],
        "chain_latency_samples": s["latency_samples"],
    }


def _startup(work: Path, cold: bool, seconds: float = 4.0) -> dict:
    server, rig, env = _rig(work, 128)
    if cold:
        env["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="mb-cold-cache-")
    try:
        # a cold compile takes tens of seconds: give the stream long enough to see it finish
        s, t_spawn = _engine(_stream_args(128, 90.0 if cold else seconds, wait_ready=False), env, timeout=900)
    finally:
        server.cleanup()
        rig.outfile.unlink(missing_ok=True)
    st = s["startup_s"]
    base = s["started_monotonic"] - t_spawn  # interpreter start + imports + config
    out = {"dry_audio_s": round(base + st["first_audio_s"], 3)}
    out["processed_audio_s"] = round(base + st["processed_s"], 3) if "processed_s" in st else "not within the run"
    out["xruns_during_startup"] = s["xruns"]
    return out


def pinning_ab(seconds: float = 20.0, repeats: int = 3, period: int = 64) -> dict:
    """``--cpu`` against no pin on the rig at ``period`` frames, runs alternating (``--pinning``).

    The loop pinned to the last CPU, or free to move. On a machine without ``isolcpus`` other
    work still lands on that CPU; what this shows is what pinning alone does to the block times
    and xruns here (the Pi, with a core isolated, is what the option is for).
    """
    cpu = (os.cpu_count() or 1) - 1
    rows: dict[str, list] = {"pinned": [], "free": []}
    with tempfile.TemporaryDirectory(prefix="mb-bench-pin-") as tmp:
        server, rig, env = _rig(Path(tmp), period)
        try:
            for _ in range(repeats):
                for label, extra in (("pinned", ["--cpu", str(cpu)]), ("free", [])):
                    s, _ = _engine([*_stream_args(period, seconds), *extra], env, timeout=seconds + 600)
                    rows[label].append({"p999_us": s["block_time_us"]["p999"], "max_us": s["block_time_us"]["max"],
                                        "xruns": s["xruns"], "cpu": s["cpu"]})
        finally:
            server.cleanup()
            rig.outfile.unlink(missing_ok=True)

    def median(label, key):
        vals = sorted(r[key] for r in rows[label])
        return vals[len(vals) // 2]

    return {"period": period, "seconds_per_run": seconds, "runs_each": repeats, "pinned_cpu": cpu,
            "machine": f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end",
            **{f"{label}_{key}_median": median(label, key) for label in rows for key in ("p999_us", "max_us", "xruns")},
            "runs": rows}


def run(quick: bool = False, seconds: float | None = None, periods: tuple[int, ...] = PERIODS) -> dict:
    """Every figure; ``seconds`` per period (default 60, 8 with ``quick``; below 4 it is also the warm
    start-up's stream, else that is 4 s). The cold start-up is measured only without ``quick``."""
    if seconds is None:
        seconds = 8.0 if quick else 60.0
    out: dict = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "machine": f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start (shared machine)",
        "rig": f"jackd -d dummy -r {RATE} -p <period> (SCHED_FIFO via chrt when allowed), ALSA type file over "
               "type jack, masterbox engine --backend alsa --periods 2 --format S32_LE --preset streaming",
    }
    with tempfile.TemporaryDirectory(prefix="mb-bench-engine-") as tmp:
        work = Path(tmp)
        for period in periods:
            out[f"period_{period}"] = _per_period(work, period, seconds)
        out["startup_warm_cache"] = _startup(work, cold=False, seconds=min(4.0, seconds))
        out["startup_cold_cache"] = "not measured with --quick" if quick else _startup(work, cold=True)
    p128 = out.get("period_128")
    if p128:
        out["goal_latency_128x2_le_8ms"] = (f"{p128['latency_ms']} ms "
                                            f"({'met' if p128['latency_ms'] <= 8.0 else 'missed'})")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="8 s per period, no cold start-up")
    ap.add_argument("--seconds", type=float, help="stream per period (default 60, 8 with --quick); "
                    "e.g. --quick --seconds 1 only to see that it runs")
    ap.add_argument("--periods", default=",".join(map(str, PERIODS)), help="the period sizes streamed (default "
                    "%(default)s)")
    ap.add_argument("--pinning", action="store_true", help="only the A/B of --cpu against no pin (pinning_ab)")
    a = ap.parse_args(argv)
    if a.pinning:
        print(json.dumps(pinning_ab(), indent=2))
    else:
        periods = tuple(int(p) for p in a.periods.split(","))
        print(json.dumps(run(quick=a.quick, seconds=a.seconds, periods=periods), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
