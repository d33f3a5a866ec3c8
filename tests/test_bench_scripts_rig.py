"""The scripts of ``bench/`` that start jackd, a real-time engine or a SCHED_FIFO thread run, as a person
runs them, and print every figure they promise. Nothing here holds a figure to a speed or counts xruns
(tests/bench_scripts.py): the runs are the scripts' shortest.

This module is in the serial part of ``make test`` (it is not in tests/conftest.py PARALLEL_MODULES): the
first part starts no jackd, no engine and no paced process, and these scripts start all three (a JACK
dummy server whose clock thread runs at SCHED_FIFO 60, ``masterbox engine`` with its audio loop at
SCHED_FIFO 70, the whole box under load, a SCHED_FIFO wake-up probe holding /dev/cpu_dma_latency at 0).
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess

import pytest

from tests.bench_scripts import figure, figures, json_lines, json_out, run_script


def _fifo_allowed() -> bool:
    return shutil.which("chrt") is not None and \
        subprocess.run(["chrt", "-f", "1", "true"], capture_output=True).returncode == 0


def _need_jackd() -> None:
    if shutil.which("jackd") is None:
        pytest.fail("jackd is missing: install Debian jackd2 (debian-packages.txt)")


def test_bench_audio_apply():
    proc = run_script("bench_audio_apply.py")
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("run 1: period 256: audio back "), proc.stdout
    out = ast.literal_eval(lines[-1])     # the summary, as Python prints a dict
    assert out["runs"] == 1 and out["wait_ready"] is False, out
    figures(out, ["median_audio_back_s", "median_call_s", "min_audio_back_s", "max_audio_back_s"])
    assert out["median_processed_s"] is None or figure(out["median_processed_s"], "median_processed_s")


def test_bench_engine():
    _need_jackd()
    out = json_out(run_script("bench_engine.py"))
    p = out["period_128"]
    assert p["seconds"] > 0.5 and p["xruns"] >= 0 and p["io_latency_samples"] == 256, p
    figures(p["block_time_us"], ["p50", "p99", "p999", "max"])
    figures(p, ["max_load", "latency_ms"])
    figure(p["chain_latency_samples"], "chain_latency_samples", positive=False)
    start = out["startup_warm_cache"]
    figure(start["dry_audio_s"], "dry_audio_s")
    assert start["processed_audio_s"] == "not within the run" or figure(start["processed_audio_s"], "processed")
    assert out["startup_cold_cache"] == "not measured with --quick"
    assert out["goal_latency_128x2_le_8ms"].startswith(f"{p['latency_ms']} ms (")


def test_reliability_capture_cycles():
    _need_jackd()
    rows = json_lines(run_script("reliability_capture_cycles.py"))
    runs, summary = rows[:-1], rows[-1]["summary"]
    assert [r.get("mode") for r in runs] == ["cycles"], rows
    for r in runs:
        assert "error" not in r, r
        assert r["xruns"] >= 0 and r["jack_clock_stalls"] >= 0, r
        figure(r["max_block_us"], "max_block_us")
    assert {m: s["runs"] for m, s in summary.items()} == {"cycles": 1}, summary


def test_reliability_load(tmp_path):
    _need_jackd()
    proc = run_script("reliability_load.py", "--json", str(tmp_path / "load.json"))
    assert proc.stdout.rstrip().splitlines()[-1].startswith("engine-traffic "), proc.stdout   # the table
    out = json.loads((tmp_path / "load.json").read_text())
    assert out["seconds"] == 1.0
    r = out["engine-traffic"]
    assert r["blocks"] > 0 and r["xruns"] >= 0 and r["dropouts"] >= 0 and r["window"]["blocks"] > 0, r
    figures(r["block_time_us"], ["p50", "p99", "p999", "max"])
    figures(r, ["max_load", "param_sets_per_s"])
    capture = r["capture"]
    assert capture["reason"] == "stopped" and capture["dropped_frames"] >= 0 and capture["seconds"] > 0, capture


def test_wake_latency():
    if not _fifo_allowed():
        pytest.skip("SCHED_FIFO is not allowed here (wake_latency.py needs root)")
    rows = json_lines(run_script("wake_latency.py"))
    assert [r["cpu_latency_us"] for r in rows] == [-1, 0], rows
    for r in rows:
        assert r["wakeups"] == int(0.5 / (128 / 48000)) and isinstance(r["held"], bool), r
        figures(r, ["p50", "p99", "p999", "max", "over_1ms", "over_2_7ms"], positive=False)
