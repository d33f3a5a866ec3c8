"""Loudness over time for the Captures page, measured in a worker process.

The control process must not import numba, and the capture sidecar holds only the summary,
so the curve (short-term loudness every ``STEP_S`` seconds, BS.1770 via :mod:`dsp.meter`) is
computed by ``python -m webui.curves FILE`` in a subprocess and cached under
``<data root>/web/curves`` keyed by the file's name, size and modification time. One
computation runs at a time; a request that finds one running waits for it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from pathlib import Path

from firmware.atomic import write_atomic

STEP_S = 0.5
MAX_POINTS = 4000  # a long capture is reported at a coarser step
TIMEOUT_S = 300


class CurveError(Exception):
    """The curve cannot be computed (the message says why)."""


class CurveCache:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._lock = threading.Lock()

    def _key(self, wav: Path) -> Path:
        st = wav.stat()
        h = hashlib.sha1(f"{wav.name}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
        return self.directory / f"{h}.json"

    def get(self, wav: Path) -> dict:
        wav = Path(wav)
        with self._lock:
            cached = self._key(wav)
            try:
                return json.loads(cached.read_text())
            except (OSError, ValueError):
                pass
            r = subprocess.run([sys.executable, "-m", "webui.curves", str(wav)], capture_output=True, text=True,
                               timeout=TIMEOUT_S)
            if r.returncode != 0:
                msg = (r.stderr.strip().splitlines() or ["the loudness worker failed"])[-1]
                raise CurveError(msg)
            doc = json.loads(r.stdout)
            self.directory.mkdir(parents=True, exist_ok=True)
            old = sorted(self.directory.glob("*.json"), key=lambda f: f.stat().st_mtime)
            for f in old[:-199]:  # keep the cache small: the newest 200 curves
                f.unlink(missing_ok=True)
            write_atomic(cached, json.dumps(doc))
            return doc


def measure(path: str) -> dict:
    """Short-term (3 s) and momentary (400 ms) loudness every step (runs in the worker)."""
    import numpy as np
    import soundfile as sf

    from dsp.meter import LoudnessMeter

    with sf.SoundFile(path) as snd:
        rate, channels, frames = snd.samplerate, snd.channels, snd.frames
        step = max(STEP_S, frames / rate / MAX_POINTS)
        hop = max(int(round(step * rate)), 1)
        meter = LoudnessMeter(rate, channels, true_peak=False)
        short, momentary = [], []
        while True:
            x = snd.read(hop, dtype="float64", always_2d=True)
            if not len(x):
                break
            meter.process(np.ascontiguousarray(x))
            r = meter.readings()
            short.append(None if r.get("short_term_lufs") is None else round(r["short_term_lufs"], 2))
            momentary.append(None if r.get("momentary_lufs") is None else round(r["momentary_lufs"], 2))
    return {"step_s": hop / rate, "short_term_lufs": short, "momentary_lufs": momentary}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m webui.curves FILE", file=sys.stderr)
        return 2
    try:
        doc = measure(argv[0])
    except Exception as e:  # reported to the web request as a 422 with this message
        print(f"cannot measure {Path(argv[0]).name}: {e}", file=sys.stderr)
        return 1
    json.dump(doc, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
