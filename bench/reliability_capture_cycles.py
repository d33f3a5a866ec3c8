"""Capture start/stop against the audio loop on the JACK-paced rig, A/B interleaved; prints figures.

    python bench/reliability_capture_cycles.py --rounds 6               # cycles vs idle, 6 rounds
    python bench/reliability_capture_cycles.py --rounds 6 --old-tree /tmp/old   # also the code in /tmp/old
    python bench/reliability_capture_cycles.py --rounds 1 --cycles 1 --modes cycles --json   # only to see that it runs

Each run is what ``tests/reliability/test_rel_capture_cycles.py`` does: a fresh JACK dummy server
(48 kHz / 128 frames) and engine (``--periods 2``), then either six (``--cycles``) capture start/stop cycles
(both taps, 1 s recording, 1 s pause) -- ``cycles`` -- or the same 12 s with no capture -- ``idle``, the
control: on a shared machine an xrun in an idle run is the machine, not the captures. The modes
alternate within each round so both see the same background load. ``--old-tree DIR`` adds
``old-cycles``: the same cycles with the engine's Python packages taken from DIR (e.g. the code
before a fix: ``mkdir /tmp/old && git archive d757f09 firmware hw dsp | tar -x -C /tmp/old``).

Per run: xruns, the engine's longest block, the JACK dummy clock's own stalls (late cycles of >= 1 ms
that jackd logged: the machine held the rig's clock too); then per mode: runs, runs with an xrun,
total xruns.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "tests" / "reliability"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

CYCLES = 6


def one_run(mode: str, old_tree: str | None, cycles: int = CYCLES) -> dict:
    from loadrig import kill_group, start_engine, wait_running
    from test_rel_load import rig_env

    from firmware.control_client import EngineClient
    from tests.engine.conftest import AlsaRig, JackServer

    tmp = Path(tempfile.mkdtemp(prefix="mb-capcycles-"))
    (tmp / "home").mkdir()
    os.environ["MASTERBOX_HOME"] = str(tmp / "home")  # this process's meter reader and client find the engine
    os.environ["MASTERBOX_CONFIG"] = str(tmp / "masterbox.toml")
    rig = AlsaRig(tmp / "xdg", tmp / "in.raw", tmp / "out.raw")
    rig.env = {**os.environ, "XDG_CONFIG_HOME": str(rig.root), "PYTHONUNBUFFERED": "1"}
    rig.write()
    jack = JackServer(f"mbcc{os.getpid()}{uuid.uuid4().hex[:6]}", tmp / "jackd.log")
    jack.start()
    try:
        env = rig_env(rig, jack, 30)
        if mode.startswith("old-"):
            env["PYTHONPATH"] = old_tree
        engine = start_engine(30, tmp / "stats.json", env)
        try:
            wait_running(90)
            time.sleep(0.5)
            with EngineClient(timeout=10.0) as c:
                for _ in range(cycles):
                    if mode.endswith("cycles"):
                        c.capture_start(tap="both")
                        time.sleep(1.0)
                        c.capture_stop()
                    else:
                        time.sleep(1.0)
                    time.sleep(1.0)
                c.request("stop")
            engine.communicate(timeout=30)
        finally:
            kill_group(engine)
        stats = json.loads((tmp / "stats.json").read_text())
        return {"mode": mode, "xruns": stats["xruns"], "max_block_us": stats["block_time_us"]["max"],
                "jack_clock_stalls": len(jack.clock_stalls()), "xrun_log": stats["xrun_log"],
                "load1": round(os.getloadavg()[0], 1)}
    finally:
        jack.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)  # ~30 MB of rig files and captures per run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--old-tree", help="a directory holding older firmware/, hw/, dsp/ to compare with")
    ap.add_argument("--json", action="store_true", help="one JSON line per run, then the summary as JSON")
    ap.add_argument("--cycles", type=int, default=CYCLES,
                    help=f"start/stop cycles per run (default {CYCLES}; --rounds 1 --cycles 1 only sees that it runs)")
    ap.add_argument("--modes", default="cycles,idle", help="the runs of each round (default %(default)s; "
                    "--old-tree adds old-cycles)")
    args = ap.parse_args(argv)
    modes = args.modes.split(",") + (["old-cycles"] if args.old_tree else [])
    runs = []
    for r in range(args.rounds):
        for mode in modes:
            try:
                out = one_run(mode, args.old_tree, args.cycles)
            except Exception as e:  # noqa: BLE001 - a run that did not start is reported, the rest go on
                out = {"mode": mode, "error": f"{type(e).__name__}: {e}"}
            out["round"] = r
            runs.append(out)
            if args.json:
                print(json.dumps(out), flush=True)
            elif "error" in out:
                print(f"round {r} {mode:10s} ERROR {out['error']}", flush=True)
            else:
                print(f"round {r} {mode:10s} xruns {out['xruns']:2d}  max block {out['max_block_us']:7.1f} us  "
                      f"jack clock stalls {out['jack_clock_stalls']}  load {out['load1']}", flush=True)
    summary = {}
    for mode in modes:
        xs = [o["xruns"] for o in runs if o["mode"] == mode and "error" not in o]
        summary[mode] = {"runs": len(xs), "runs_with_xruns": sum(1 for x in xs if x), "xruns": sum(xs),
                         "per_run": xs}
    if args.json:
        print(json.dumps({"summary": summary}))
    else:
        for mode, s in summary.items():
            print(f"{mode:10s}: {s['runs']} runs, {s['runs_with_xruns']} with an xrun, {s['xruns']} xruns "
                  f"{s['per_run']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
