"""Storage figures: preset library speed, state persistence latency, capture ``push`` cost.

Run with ``masterbox bench --only storage`` (``--quick`` for fewer repeats), or
``python bench/bench_storage.py``. Figures, never pass/fail; absolute times depend on the load
of the machine they run on.

* ``presets_save_1000_s``: saving 1,000 user presets (each an atomic, fsynced write).
* ``presets_list_cold_no_cache_ms``: the first listing of 1,000 presets by a fresh store with no
  listing cache file (every file parsed and validated); ``..._cold_cached_ms`` the same with the
  cache file (what a boot sees); ``presets_list_warm_ms``: later listings (median).
* ``state_persist_ms``: from ``StateStore.set`` to the new value readable in ``state.json``
  (median; the writer gathers changes for 250 ms by design).
* ``capture_push_us_*``: ``CaptureSession.push`` of 128 frames, both taps, paced at about real
  time with the writer thread draining next to it (median, 99.9th percentile, max).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _presets(tmp: Path, repeats: int) -> dict:
    from dsp import schema
    from firmware.presets import INDEX_FILE, PresetStore

    store = PresetStore(tmp / "user", tmp / "nofactory")
    values = schema.defaults()
    t0 = time.perf_counter()
    for i in range(1000):
        store.save(f"Preset {i:04d} – ü", values)
    save_s = time.perf_counter() - t0
    (tmp / "user" / INDEX_FILE).unlink(missing_ok=True)
    t0 = time.perf_counter()
    PresetStore(tmp / "user", tmp / "nofactory").list()  # writes the cache file
    cold = time.perf_counter() - t0
    fresh = PresetStore(tmp / "user", tmp / "nofactory")
    t0 = time.perf_counter()
    fresh.list()
    cold_cached = time.perf_counter() - t0
    warm = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fresh.list()
        warm.append(time.perf_counter() - t0)
    return {"presets_save_1000_s": round(save_s, 2), "presets_list_cold_no_cache_ms": round(cold * 1e3, 1),
            "presets_list_cold_cached_ms": round(cold_cached * 1e3, 1),
            "presets_list_warm_ms": round(statistics.median(warm) * 1e3, 1)}


def _state(tmp: Path, repeats: int) -> dict:
    from firmware.presets import PresetStore
    from firmware.state import StateStore

    path = tmp / "state.json"
    st = StateStore(path, PresetStore(tmp / "u2", tmp / "nofactory"))
    times = []
    for i in range(repeats):
        value = round(-6.0 + i * 0.5, 2)
        t0 = time.perf_counter()
        st.set({"eq1.gain_db": value})
        while True:
            try:
                if json.loads(path.read_text())["values"]["eq1.gain_db"] == value:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.002)
        times.append(time.perf_counter() - t0)
    st.close()
    return {"state_persist_ms": round(statistics.median(times) * 1e3, 1)}


def _capture(tmp: Path, blocks: int) -> dict:
    import numpy as np

    from firmware.capture_writer import CaptureSession

    s = CaptureSession(tmp / "captures", 48000, 2, taps=("input", "output"), fmt="PCM_24", floor_mb=0,
                       analyze=False)
    x = np.random.default_rng(0).uniform(-1, 1, (128, 2))
    ts = np.empty(blocks)
    t_start = time.perf_counter()
    for i in range(blocks):
        t0 = time.perf_counter_ns()
        s.push(x, x)
        ts[i] = (time.perf_counter_ns() - t0) / 1000
        delay = t_start + (i + 1) * 128 / 48000 - time.perf_counter()
        if delay > 0.002:
            time.sleep(delay)
    st = s.stop()
    return {"capture_push_us_median": round(float(np.median(ts)), 1),
            "capture_push_us_p999": round(float(np.percentile(ts, 99.9)), 1),
            "capture_push_us_max": round(float(ts.max()), 1), "capture_dropped_frames": st["dropped_frames"]}


def run(quick: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        out = _presets(tmp, 5 if quick else 20)
        out.update(_state(tmp, 5 if quick else 15))
        out.update(_capture(tmp, 2000 if quick else 20000))
    return out


if __name__ == "__main__":
    for k, v in run(quick="--quick" in sys.argv).items():
        print(f"{k}: {v}")
