"""Running the scripts in ``bench/`` as a person would, in their shortest mode, for
``tests/test_bench_scripts.py`` (the offline ones, part 1 of ``make test``) and
``tests/test_bench_scripts_rig.py`` (the ones that start jackd, an engine or a SCHED_FIFO thread, part 2).

These tests say that a script runs and reports what it promises: it exits 0 and prints every figure, each
a finite number (positive where it cannot be anything else). They never hold a figure to a speed: the
figures come from runs far too short to mean anything, on a machine shared with other tests.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"

# Every script in bench/ with the arguments that make it short (each its own --help says what they do).
QUICK_ARGS: dict[str, list[str]] = {
    "bench_audio_apply.py": ["--runs", "1"],
    "bench_chain.py": ["--kernel-seconds", "1", "--file-seconds", "3", "--repeats", "1"],
    "bench_engine.py": ["--quick", "--seconds", "1", "--periods", "128"],
    "bench_glide.py": ["--seconds", "2", "--rounds", "1", "--json"],
    "bench_level_match.py": ["--quick", "--json"],
    "bench_limiter_sound.py": ["--quick", "--json"],
    "bench_meter.py": ["--kernel-seconds", "1", "--file-seconds", "2", "--repeats", "1"],
    "bench_panel.py": ["--quick"],
    "bench_reference.py": ["--rounds", "1", "--seconds", "2", "--file-seconds", "5", "--json"],
    "bench_spectrum.py": ["--quick"],
    "bench_stages.py": ["--seconds", "1", "--repeats", "1"],
    "bench_storage.py": ["--presets", "50", "--repeats", "1", "--blocks", "400", "--megabytes", "4"],
    # its idle runs are its cycles' runs without the captures; the unloaded and loaded runs of reliability_load
    # are tests/reliability/test_rel_load.py's own stream() (that test runs both)
    "reliability_capture_cycles.py": ["--rounds", "1", "--cycles", "1", "--modes", "cycles", "--json"],
    "reliability_load.py": ["--seconds", "1", "--runs", "engine-traffic"],  # + --json PATH
    "reliability_soak.py": ["--seconds", "1", "--check"],
    "wake_latency.py": ["--seconds", "0.5", "--repeats", "1"],
}
# The ones that start jackd, an engine or a SCHED_FIFO thread: tests/test_bench_scripts_rig.py, part 2.
RIG_SCRIPTS = {"bench_audio_apply.py", "bench_engine.py", "reliability_capture_cycles.py", "reliability_load.py",
               "wake_latency.py"}
TIMEOUT_S = 300.0   # a hung script fails the test instead of the suite; no script here is near it


def run_script(name: str, *extra: str, timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess:
    """``python bench/<name> <its quick arguments> <extra>`` from the repository; asserts it exits 0."""
    cmd = [sys.executable, str(BENCH / name), *QUICK_ARGS[name], *extra]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (f"{' '.join(cmd)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}"
                                  f"\n--- stderr\n{proc.stderr[-3000:]}")
    return proc


def json_out(proc: subprocess.CompletedProcess):
    try:
        return json.loads(proc.stdout)
    except ValueError as e:
        raise AssertionError(f"not one JSON document ({e}):\n{proc.stdout[-3000:]}") from None


def json_lines(proc: subprocess.CompletedProcess) -> list:
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def key_values(proc: subprocess.CompletedProcess) -> dict[str, str]:
    """The ``key: value`` lines some scripts print, as strings."""
    out = {}
    for line in proc.stdout.splitlines():
        k, sep, v = line.partition(": ")
        if sep:
            out[k.strip()] = v.strip()
    return out


def number(text: str) -> float:
    """A printed figure (``"12.5"``) as a float."""
    try:
        return float(text)
    except ValueError:
        raise AssertionError(f"not a number: {text!r}") from None


def figure(value, where: str = "", positive: bool = True) -> float:
    """``value`` is a finite number, > 0 (``positive``) or >= 0."""
    assert isinstance(value, int | float) and not isinstance(value, bool), f"{where}: not a number: {value!r}"
    assert math.isfinite(value), f"{where}: {value}"
    assert value > 0 if positive else value >= 0, f"{where}: {value}"
    return value


def figures(d: dict, keys, positive: bool = True) -> None:
    """Each of ``keys`` is in ``d`` and a figure (:func:`figure`)."""
    missing = [k for k in keys if k not in d]
    assert not missing, f"missing {missing} in {sorted(d)}"
    for k in keys:
        figure(d[k], k, positive)
