"""Front panel figures: CPU cost of the meter refresh, and encoder decoding against gpiozero's.

``masterbox bench --only panel`` (or ``python bench/bench_panel.py``). Everything runs on
gpiozero mock pins (the same device classes as on the box), so the pin writes cost what
mock pins cost; on the box, lgpio pin writes are of the same order and the MCP3008 is read
over the hardware SPI bus instead of the bit-banged mock bus measured here.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import warnings

os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")


def _readings(n: int):
    """Engine meter readings that move like music (so LEDs and needles really change)."""
    out = []
    for i in range(n):
        s = math.sin(i / 7.0)
        out.append({"seq": i, "state": "running", "out_short_term_lufs": -14.0 + 4 * s,
                    "out_momentary_lufs": -14.0 + 6 * math.sin(i / 3.0), "gr_low_db": 1 + s,
                    "gr_mid_db": 2 + 2 * s, "gr_high_db": 0.5, "gr_limiter_db": 3 + 3 * s,
                    "out_true_peak_dbtp": -1.2 + 0.5 * s, "capturing": False})
    return out


def _cpu_per_call(fn, n: int) -> float:
    c0 = time.thread_time()
    for i in range(n):
        fn(i)
    return (time.thread_time() - c0) / n


def run(quick: bool = False) -> dict:
    warnings.simplefilter("ignore")
    from hw.panel.panel import MeterContext, PanelLoop
    from hw.panel.simulated import SimulatedPanel, miscount
    from hw.panel.spec import DEFAULT_PANEL

    results: dict = {}
    panel = SimulatedPanel()
    ctx = MeterContext(target_lufs=-14.0, ceiling_dbtp=-1.0, status="running")
    n = 2000 if quick else 10000
    readings = _readings(n)
    per_tick = _cpu_per_call(lambda i: panel.show_meters(readings[i], ctx, i / 40.0), n)
    results["meters_cpu_us_per_refresh"] = round(per_tick * 1e6, 1)
    results["meters_cpu_percent_of_a_core_at_40_hz"] = round(per_tick * 40 * 100, 3)
    per_poll = _cpu_per_call(lambda i: panel.poll_pots(), 200 if quick else 1000)
    results["pots_cpu_us_per_poll_5_pots_mock_spi"] = round(per_poll * 1e6, 1)

    try:
        from firmware.meters_shm import MeterReader
        reader = MeterReader()
        per_read = _cpu_per_call(lambda i: reader.read(), 2000)
        results["meter_reader_read_us"] = round(per_read * 1e6, 2)
        results["meter_reader_engine_running"] = reader.read() is not None
    except ImportError:
        results["meter_reader_read_us"] = "firmware.meters_shm not available"

    # the real loop in real time: meters every tick, pots every second tick
    seconds = 2.0 if quick else 5.0
    loop = PanelLoop(panel, lambda: readings[int(time.monotonic() * 40) % n], lambda m: ctx, rate_hz=40.0)
    loop.start()
    time.sleep(seconds)
    loop.stop()
    stats = loop.stats()
    results["loop_rate_hz"] = stats["rate_hz"]
    results["loop_cpu_percent_of_a_core_with_mock_spi_pots"] = stats["cpu_percent"]
    panel.close()
    # the same loop on a panel without potentiometers: what the meters alone cost in real time
    meters_only = SimulatedPanel(dataclasses.replace(DEFAULT_PANEL, knobs=()))
    loop = PanelLoop(meters_only, lambda: readings[int(time.monotonic() * 40) % n], lambda m: ctx, rate_hz=40.0)
    loop.start()
    time.sleep(seconds)
    loop.stop()
    stats = loop.stats()
    results["loop_meters_only_rate_hz"] = stats["rate_hz"]
    results["loop_meters_only_cpu_percent_of_a_core"] = stats["cpu_percent"]
    meters_only.close()

    # encoder decoding: detents miscounted over seeded turning sessions, ours vs stock
    sessions = 8 if quick else 30
    for model, p_late in (("sync", 0.0), ("queued", 0.9), ("coalesced", 0.1), ("coalesced", 0.5)):
        for bounce in (0, 2):
            key = f"encoder_{model}" + (f"_{int(p_late * 100)}pct_late" if p_late else "") + f"_bounce{bounce}"
            ours, total = miscount("ours", model, bounce=bounce, p_late=p_late, sessions=sessions)
            stock, _ = miscount("stock", model, bounce=bounce, p_late=p_late, sessions=sessions)
            results[key] = f"ours {ours}/{total} wrong, gpiozero RotaryEncoder {stock}/{total} wrong"
    return results


if __name__ == "__main__":
    import sys

    for k, v in run(quick="--quick" in sys.argv).items():
        print(f"{k}: {v}")
