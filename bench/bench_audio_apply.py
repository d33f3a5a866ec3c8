"""How long the System page's "Apply" keeps the box silent: engine stop request -> audio moving again.

``python bench/bench_audio_apply.py [--runs 5] [--wait-ready]`` (or ``masterbox bench --only audio_apply
[--quick]``: 5 applies, 2 with ``--quick``) builds the box as ``masterbox run --sim``
does (a real ``masterbox engine --backend sim`` under :class:`firmware.supervisor.Supervisor`) in a
temporary data root, with a real :class:`firmware.control.Control`, and applies alternating periods
(256, 128, ...) through ``Control.apply_audio_settings`` - what ``POST /api/v1/system/audio`` calls.
Each apply is verified (the new engine reports the new period) and three figures are printed per run
and as medians:

* ``audio_back_s``: the stop request to the first status of a new engine that moves audio with the
  new settings (the gap in the audio is this, give or take one status poll of 50 ms);
* ``processed_s``: to the chain processing again (the engine passes audio dry while it loads it);
* ``call_s``: the whole call (the page's wait), state pushed back included.

Without ``--wait-ready`` the engine starts as on the box (dry audio first); with it, as in the
browser test (chain built before the device opens, so audio_back ~ processed).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path


def measure(runs: int = 5, wait_ready: bool = False) -> dict:
    """The figures of ``runs`` applies (a line printed per apply); puts back this process's MASTERBOX_* variables."""
    saved = {k: os.environ.get(k) for k in ("MASTERBOX_HOME", "MASTERBOX_CONFIG", "MASTERBOX_RUN")}
    try:
        return _measure(runs, wait_ready)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _measure(runs: int, wait_ready: bool) -> dict:
    home = Path(tempfile.mkdtemp(prefix="mb-apply-"))
    os.environ["MASTERBOX_HOME"] = str(home / "home")
    os.environ["MASTERBOX_CONFIG"] = str(home / "masterbox.toml")
    os.environ.pop("MASTERBOX_RUN", None)
    (home / "masterbox.toml").write_text('# bench box\n[audio]\nbackend = "sim"\nperiod = 128\n')

    from firmware.control import Control
    from firmware.control_client import EngineClient
    from firmware.supervisor import ChildSpec, Supervisor, masterbox_command
    from firmware.watchdog import meters_heartbeat

    argv = masterbox_command("engine", "--no-realtime", *(["--wait-ready"] if wait_ready else []))
    out = io.StringIO()
    sup = Supervisor([ChildSpec("engine", argv, heartbeat=meters_heartbeat())], out=out, poll=0.05)
    thread = threading.Thread(target=sup.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    client = EngineClient()
    if not client.wait_running(120):
        sup.request_stop()
        raise SystemExit("the engine did not start:\n" + out.getvalue())
    control = Control(engine_supervised=True)
    rows = []
    try:
        for i in range(runs):
            period = 256 if i % 2 == 0 else 128
            t0 = time.monotonic()
            r = control.apply_audio_settings({"period": period})
            call = time.monotonic() - t0
            if not r.get("ok"):
                raise SystemExit(f"apply failed: {r}\n{out.getvalue()}")
            assert client.status()["device"]["period"] == period
            rows.append({"period": period, "audio_back_s": r["audio_back_s"], "processed_s": r.get("processed_s"),
                         "call_s": round(call, 3)})
            print(f"run {i + 1}: period {period}: audio back {r['audio_back_s']:.2f} s, processed "
                  f"{r.get('processed_s') or float('nan'):.2f} s, call {call:.2f} s", flush=True)
            if i + 1 < runs:
                time.sleep(2.0)
    finally:
        control.close()
        sup.request_stop()
        thread.join(30)
        shutil.rmtree(home, ignore_errors=True)

    def med(key):
        vals = [r[key] for r in rows if r[key] is not None]
        return round(statistics.median(vals), 3) if vals else None

    summary = {"runs": runs, "wait_ready": wait_ready, "median_audio_back_s": med("audio_back_s"),
               "median_processed_s": med("processed_s"), "median_call_s": med("call_s"),
               "min_audio_back_s": min(r["audio_back_s"] for r in rows),
               "max_audio_back_s": max(r["audio_back_s"] for r in rows),
               "load_average": os.getloadavg()[0]}
    return summary


def run(quick: bool = False) -> dict:
    """For ``masterbox bench``: 5 applies, 2 with ``quick``."""
    return measure(2 if quick else 5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--wait-ready", action="store_true")
    args = ap.parse_args(argv)
    print(measure(args.runs, args.wait_ready))
    return 0


if __name__ == "__main__":
    sys.exit(main())
