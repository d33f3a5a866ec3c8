"""How close the level-matched bypass lands to the master's loudness, on music.

A level-matched bypass is for hearing what the processing does at equal loudness: the louder
of two versions sounds better, so a bypass a dB quieter than the master flatters the master.
Each programme (the demo music, ``dsp.programme``, -6 dBFS peak, 75 s) runs through the chain
with a preset and a drive; the same chain is bypassed, with ``ab.level_match`` on, for ``T``
seconds (5 by default) from moments 10 s, 12.3 s, ... into it. The figure is the bypassed
output's integrated loudness over those seconds minus the never-bypassed chain's over the same
seconds (``dsp.meter``, LU): rms, 95th percentile, worst and mean over all moments, and rms,
worst and mean per programme. Figures, never pass/fail (``tests/dsp/test_chain.py`` asserts).

    .venv/bin/python bench/bench_level_match.py [--json] [--seconds T] [--quick]
    masterbox bench --only level_match

``--quick``: 2 programmes of 25 s (seconds instead of about a minute; rougher figures).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dsp import schema  # noqa: E402
from dsp.chain import Chain  # noqa: E402
from dsp.meter import LoudnessMeter  # noqa: E402
from dsp.programme import render_programme  # noqa: E402

RATE = 48000
BLOCK = 4096
PROGRAMMES = (("streaming", 8.0, 3), ("loud", 14.0, 3), ("streaming", 8.0, 7), ("loud", 14.0, 11),
              ("podcast", 9.0, 5))


def _lufs(x: np.ndarray) -> float:
    m = LoudnessMeter(RATE, 2, true_peak=False)
    m.process(np.ascontiguousarray(x))
    return m.readings()["integrated_lufs"]


def _chain(settings: dict) -> Chain:
    c = Chain(RATE, max_block=BLOCK)
    c.set_values(settings)
    c.set_output_bits(None)
    return c


def _run(c: Chain, x: np.ndarray, y: np.ndarray) -> None:
    for i in range(0, len(x), BLOCK):
        c.process(x[i:i + BLOCK], y[i:i + BLOCK])


def errors_of(preset: str, drive_db: float, seed: int, seconds: float, bypass_s: float) -> np.ndarray:
    """Bypassed minus master loudness (LU) for each moment of one programme."""
    x = np.ascontiguousarray(render_programme(seconds, RATE, seed=seed, peak_dbfs=-6.0))
    params = json.loads((Path(schema.__file__).parent / "presets" / f"{preset}.json").read_text())["params"]
    settings = params | {"out.drive_db": drive_db, "ab.level_match": True}
    master = np.zeros_like(x)
    _run(_chain(settings), x, master)
    out = []
    for t0 in np.arange(10.0, seconds - bypass_s, 2.3):
        a, b = int(t0 * RATE), int((t0 + bypass_s) * RATE)
        c = _chain(settings)
        _run(c, x[:a], np.zeros((a, 2)))
        c.set_bypass(True)
        y = np.zeros((b - a, 2))
        _run(c, x[a:b], y)
        out.append(_lufs(y) - _lufs(master[a:b]))
    return np.array(out)


def run(quick: bool = False, bypass_s: float = 5.0) -> dict:
    """The figures (``masterbox bench --only level_match`` calls this)."""
    programmes = PROGRAMMES[:2] if quick else PROGRAMMES
    length = 25.0 if quick else 75.0
    per, every = {}, []
    for preset, drive, seed in programmes:
        e = errors_of(preset, drive, seed, length, bypass_s)
        every.append(e)
        per[f"{preset}+{drive:g}dB/seed{seed}"] = {"moments": len(e), "rms_lu": float(np.sqrt(np.mean(e ** 2))),
                                                    "worst_lu": float(np.max(np.abs(e))), "mean_lu": float(e.mean())}
    e = np.concatenate(every)
    return {"bypass_s": bypass_s, "moments": len(e), "rms_lu": float(np.sqrt(np.mean(e ** 2))),
            "p95_lu": float(np.percentile(np.abs(e), 95)), "worst_lu": float(np.max(np.abs(e))),
            "mean_lu": float(e.mean()), "programmes": per}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--seconds", type=float, default=5.0, help="how long each bypass lasts (default 5)")
    ap.add_argument("--quick", action="store_true", help="2 programmes of 25 s")
    args = ap.parse_args(argv)
    figures = run(args.quick, args.seconds)
    per = figures["programmes"]
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for name, f in per.items():
            print(f"{name:28s} {f['moments']:3d} moments  rms {f['rms_lu']:.2f}  worst {f['worst_lu']:.2f}  "
                  f"mean {f['mean_lu']:+.2f} LU")
        print(f"{'all':28s} {figures['moments']:3d} moments  rms {figures['rms_lu']:.2f}  p95 {figures['p95_lu']:.2f}  "
              f"worst {figures['worst_lu']:.2f}  mean {figures['mean_lu']:+.2f} LU (bypassed {args.seconds:g} s "
              "against the master)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
