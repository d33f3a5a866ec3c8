"""Load on the JACK-paced rig, any length (issue 9 "Load"); prints figures, never pass/fail.

    python bench/reliability_load.py --seconds 600            # the issue's 10 minutes, both runs
    python bench/reliability_load.py --seconds 60 --runs unloaded,engine-traffic,loaded

Runs (each ``--seconds`` long, one after the other, on one JACK dummy server at 48 kHz / 128):
* ``unloaded``: the stream alone;
* ``engine-traffic``: the stream plus only what reaches the engine process itself -- parameter
  sets 20/s, bypass toggles ~2/s, a capture -- sent straight to its control socket (no control
  process, no web server): separates the engine's own extra work from the rest of the box's load;
  ``engine-sets`` (the sets and bypass toggles alone) and ``engine-capture`` (the capture alone)
  split it further;
* ``loaded``: the whole box under the load of tests/reliability/loadrig.py (>= 200 API
  requests/s, 10 SSE streams, 20 parameter sets/s through the web and Control, the panel turned,
  a capture).
The test with the same rig and a short default is tests/reliability/test_rel_load.py.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "tests" / "reliability"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))


ENGINE_RUNS = {"engine-traffic": (True, True), "engine-sets": (True, False), "engine-capture": (False, True)}


def engine_traffic_run(env, stats_path: Path, seconds: float, sets_on: bool = True, capture_on: bool = True) -> dict:
    from loadrig import kill_group, start_engine, wait_running
    from test_rel_load import MARGIN_S

    from firmware.control_client import EngineClient
    from firmware.meters_shm import MeterReader

    engine = start_engine(seconds + MARGIN_S, stats_path, env)
    try:
        wait_running(60)
        reader = MeterReader()
        stop = threading.Event()
        sets = [0]

        def traffic():
            rng = random.Random(3)
            with EngineClient(timeout=5.0) as c:
                if capture_on:
                    c.capture_start(tap="both")
                if not sets_on:
                    stop.wait()
                    return c.capture_stop() if capture_on else None
                nxt = time.monotonic()
                k = 0
                while not stop.is_set():
                    c.set_params({"in.trim_db": round(rng.uniform(-3, 3), 2),
                                  "out.drive_db": round(rng.uniform(0, 6), 2),
                                  "eq2.gain_db": round(rng.uniform(-4, 4), 2),
                                  "st.width": round(rng.uniform(80, 120), 2)})
                    sets[0] += 1
                    k += 1
                    if k % 10 == 0:
                        c.bypass(bool(k % 20))
                    nxt += 0.05
                    time.sleep(max(0.0, nxt - time.monotonic()))
                return c.capture_stop() if capture_on else None

        result = {}
        t = threading.Thread(target=lambda: result.setdefault("capture", traffic()), daemon=True)
        m0 = reader.read()
        t.start()
        time.sleep(seconds)
        m1 = reader.read()
        stop.set()
        t.join(10)
        with EngineClient(timeout=5.0) as c:
            c.request("stop")
        engine.communicate(timeout=30)
        return {"stats": json.loads(stats_path.read_text()), "capture": {"engine": {"capture": result.get("capture")}},
                "window": {"xruns": m1["xruns"] - m0["xruns"], "dropouts": m1["dropouts"] - m0["dropouts"],
                           "blocks": m1["blocks"] - m0["blocks"]}, "param_sets_per_s": round(sets[0] / seconds, 1)}
    finally:
        kill_group(engine)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--runs", default="unloaded,loaded")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="mbload"))
    home = work / "home"
    home.mkdir()
    os.environ.update({"MASTERBOX_HOME": str(home), "MASTERBOX_CONFIG": str(work / "masterbox.toml"),
                       "GPIOZERO_PIN_FACTORY": "mock"})
    from test_rel_load import rig_env, stream

    from tests.engine.conftest import AlsaRig, JackServer

    rig = AlsaRig(work / "xdg", work / "in.raw", work / "out.raw")
    rig.env = {**os.environ, "XDG_CONFIG_HOME": str(rig.root), "PYTHONUNBUFFERED": "1"}
    rig.write()
    jack = JackServer(f"mbbench{os.getpid()}{uuid.uuid4().hex[:6]}", work / "jackd.log")
    jack.start()
    figures: dict = {"seconds": args.seconds, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                     "loadavg_before": os.getloadavg()}
    try:
        env = rig_env(rig, jack, args.seconds)
        for run in args.runs.split(","):
            stats = work / f"{run}.json"
            if run in ENGINE_RUNS:
                out = engine_traffic_run(env, stats, args.seconds, *ENGINE_RUNS[run])
            else:
                out = stream(env, stats, args.seconds, loaded=(run == "loaded"))
            s = out["stats"]
            cap = ((out.get("capture") or {}).get("engine") or {}).get("capture") or {}
            figures[run] = {"xruns": s["xruns"], "dropouts": s["dropouts"], "device_errors": s["device_errors"],
                            "blocks": s["blocks"], "block_time_us": s["block_time_us"], "max_load": s["max_load"],
                            "window": out.get("window"), "load": out.get("load"),
                            "param_sets_per_s": out.get("param_sets_per_s"),
                            "capture": ({k: cap.get(k) for k in ("seconds", "dropped_frames", "reason")}
                                        if cap else None)}
            print(json.dumps({run: figures[run]}), flush=True)
    finally:
        jack.cleanup()
    figures["loadavg_after"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    print("\nrun              xruns  dropouts  p50 us  p99 us  p99.9 us  max us  capture dropped")
    for run in args.runs.split(","):
        f = figures[run]
        bt = f["block_time_us"]
        print(f"{run:16s} {f['xruns']:5d}  {f['dropouts']:8d}  {bt['p50']:6.0f}  {bt['p99']:6.0f}  {bt['p999']:8.0f}  "
              f"{bt['max']:6.0f}  {(f['capture'] or {}).get('dropped_frames')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
