"""Soak (issue 9): varied programme through the chain at full speed offline, every parameter at a
random value every 50 ms, random block partition. The chain runs in its own process
(``bench/reliability_soak.py``) which measures its own RSS; this test checks its output stream with
an independent 16x true-peak oversampler (``soakcheck.py``).

Default 30 s of programme; ``MB_SOAK_SECONDS=3600`` for the full hour.
"""

from __future__ import annotations

import json
import os

from soakcheck import run_and_check

SECONDS = float(os.environ.get("MB_SOAK_SECONDS", 30.0))


def test_soak_random_automation_finite_ceiling_held_memory_flat(tmp_path, capsys):
    res = run_and_check(SECONDS, seed=9, tmpdir=tmp_path)
    s, c = res["soak"], res["check"]
    detail = json.dumps({**res, "soak": {k: v for k, v in s.items() if k != "rss_samples"}})
    assert c["steps"] == s["steps"] == int(round(SECONDS * 20)), detail
    assert c["samples_checked"] == s["steps"] * 2400, detail
    assert s["nonfinite_samples"] == 0 and c["nonfinite"] == 0, detail
    assert c["worst_true_peak_over_ceiling_db"] <= 0.1, detail
    # the limiter is at work, not merely quiet: loud stretches reach the ceiling
    assert c["worst_true_peak_over_ceiling_db"] > -1.0 and c["steps_within_1dB_of_ceiling"] > 0, detail
    # several kinds of programme went through (music, silence, torture)
    assert len(s["programme_s"]) >= 4, detail
    assert s["rss_growth_bytes"] <= 1 << 20, detail
    with capsys.disabled():
        print(f"\n    soak {s['seconds']:.0f} s ({s['speed_x_realtime']}x real time, {s['blocks']} blocks): "
              f"worst true peak {c['worst_true_peak_over_ceiling_db']:+.3f} dB vs ceiling, "
              f"RSS growth {s['rss_growth_bytes'] / 1024:.0f} KiB after warm-up, non-finite {c['nonfinite']}")
